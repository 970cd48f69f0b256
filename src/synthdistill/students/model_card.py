"""A model card (README.md) for every trained student, and the opt-in push to the Hugging Face Hub."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from synthdistill.costs import training_energy
from synthdistill.errors import SynthDistillError
from synthdistill.names import EXPERT


def _read(path: str | None) -> Any:
    return json.loads(Path(path).read_text()) if path else None


# The card's prose lives in this template next to the code (as in setfit), filled from the run's data.
TEMPLATE = Path(__file__).with_name("model_card.md.jinja")


def _render(**values: Any) -> str:
    import jinja2

    # trim_blocks/lstrip_blocks: a line holding only a {% tag %} prints nothing; the template's last
    # newline is the card's last newline.
    environment = jinja2.Environment(
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )
    return environment.from_string(TEMPLATE.read_text(encoding="utf-8")).render(**values)


def card_text(
    metadata: dict[str, Any],
    metrics: dict[str, Any] | None,
    hardware: dict[str, Any],
    onnx_check: dict[str, Any] | None = None,
) -> str:
    """The card's Markdown, with YAML metadata the Hub reads (pipeline tag, base model, tags)."""
    from huggingface_hub import ModelCard, ModelCardData

    base = metadata["base_model"]
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["synthdistill", "knowledge-distillation", "synthetic-labels"],
        # Only a hub id is a base model the Hub can link; a local or packaged path is not.
        base_model=base if "://" not in base and not Path(base).exists() else None,
    )
    if metadata["teacher"] == EXPERT:
        source = "the expert labels of the dataset (upper-bound baseline, not distilled)"
    elif metadata.get("labeller"):  # students_learn_from: best
        source = f"synthetic labels from `{metadata['labeller']}`, the labeller ranked first on the gold dev split"
    else:
        source = f"synthetic labels from teacher `{metadata['teacher']}` with prompt `{metadata['prompt']}`"
    text = _render(
        card_data=data.to_yaml(),
        name=metadata.get("name", "synthdistill student"),
        base_model=base,
        source=source,
        label2id=metadata["label2id"],
        train_examples=metadata["train_examples"],
        validation_examples=metadata["validation_examples"],
        label_options=metadata.get("label_options"),
        hp=metadata["hyperparameters"],
        best_epoch=metadata["best_epoch"],
        epochs_run=len(metadata["history"]),
        train_seconds=metadata["train_seconds"],
        device=metadata["device"],
        train_examples_per_second=metadata["train_examples_per_second"],
        energy=training_energy(metadata["train_seconds"], hardware),
        metrics=metrics,
        level=int(metrics["intervals"]["level"] * 100) if metrics else None,
        # The ONNX section only when the check compared accuracies.
        onnx=onnx_check if onnx_check and onnx_check.get("accuracy_difference_points") is not None else None,
    )
    # ModelCard parses the YAML header back, so a malformed card fails here and not on the Hub.
    return str(ModelCard(text))


def write_card(
    metadata_path: str,
    metrics_path: str | None,
    hardware: dict[str, Any],
    output_path: str,
    onnx_check_path: str | None = None,
    name: str | None = None,
) -> str:
    metadata = _read(metadata_path)
    if name:
        metadata["name"] = name
    text = card_text(metadata, _read(metrics_path), hardware, _read(onnx_check_path))
    Path(output_path).write_text(text)
    return text


def push_student(
    model_dir: str, card_path: str, repo_id: str, token_env: str = "HF_TOKEN", private: bool = True
) -> dict[str, Any]:
    """Upload the model folder with its card as README.md to a Hub model repo (created if needed)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    token = os.environ.get(token_env)
    if not token:
        raise SynthDistillError(f"hub push of {repo_id}: environment variable {token_env} holds no Hugging Face token")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    operations = [
        CommitOperationAdd(path_in_repo=str(path.relative_to(model_dir)), path_or_fileobj=str(path))
        for path in sorted(Path(model_dir).rglob("*"))
        if path.is_file() and path.name != "README.md"
    ]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card_path))
    commit = api.create_commit(repo_id, operations=operations, commit_message="Upload synthdistill student")
    return {"repo_id": repo_id, "commit_url": commit.commit_url, "files": len(operations)}
