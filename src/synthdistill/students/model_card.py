"""A model card (README.md) for every trained student, and the opt-in push to the Hugging Face Hub."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from synthdistill.costs import training_energy
from synthdistill.errors import SynthDistillError
from synthdistill.names import EXPERT


def _read(path: str | None) -> dict[str, Any] | None:
    return json.loads(Path(path).read_text()) if path else None


def _metric_line(metrics: dict[str, Any], name: str) -> str:
    low, high = metrics["intervals"][name]
    return f"| {name} | {metrics[name]:.3f} | {low:.3f} – {high:.3f} |"


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
    source = (
        "the expert labels of the dataset (upper-bound baseline, not distilled)"
        if metadata["teacher"] == EXPERT
        else f"synthetic labels from teacher `{metadata['teacher']}` with prompt `{metadata['prompt']}`"
    )
    hp = metadata["hyperparameters"]
    lines = [
        f"# {metadata.get('name', 'synthdistill student')}",
        "",
        f"A text classifier fine-tuned from `{base}` on {source}, trained with "
        "synthdistill to replace calls to an LLM.",
        "",
        "## Labels",
        "",
        "| id | label |",
        "|---|---|",
        *(f"| {i} | {label} |" for label, i in metadata["label2id"].items()),
        "",
        "## Training",
        "",
        f"- training items: {metadata['train_examples']}, validation items: {metadata['validation_examples']}"
        " (validation labels come from the same source; the expert test split was never used to train or select)",
        f"- label options: {metadata.get('label_options') or 'none'}",
        f"- learning rate {hp['learning_rate']}, batch size {hp['batch_size']}, max length {hp['max_length']},"
        f" warmup {hp['warmup_ratio']}, weight decay {hp['weight_decay']}, seed {hp['seed']}",
        f"- best epoch {metadata['best_epoch']} of {len(metadata['history'])} run"
        " (early stopping on validation F1 macro)",
        f"- training time {metadata['train_seconds']:.0f} s on {metadata['device']}"
        f" ({metadata['train_examples_per_second']:.1f} examples/s)",
    ]
    energy = training_energy(metadata["train_seconds"], hardware)
    if energy:
        co2 = f", {energy['kg_co2'] * 1000:.2f} g CO2" if energy["kg_co2"] is not None else ""
        lines.append(f"- training energy {energy['kwh'] * 1000:.2f} Wh{co2} ({energy['method']})")
    else:
        lines.append("- training energy: not estimated (no device power configured)")
    lines += ["", "## Evaluation on the frozen expert test split", ""]
    if metrics:
        level = int(metrics["intervals"]["level"] * 100)
        lines += [
            f"{metrics['n']} items; {level}% intervals by {metrics['intervals']['method']}.",
            "",
            f"| metric | value | {level}% interval |",
            "|---|---|---|",
            _metric_line(metrics, "accuracy"),
            _metric_line(metrics, "f1_macro"),
            "",
            "| label | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
            *(
                f"| {label} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
                for label, c in metrics["per_class"].items()
            ),
        ]
    else:
        lines.append("Not evaluated: the dataset has no expert labels.")
    if onnx_check and onnx_check.get("accuracy_difference_points") is not None:
        lines += [
            "",
            "## ONNX int8 export",
            "",
            f"`onnx/model.int8.onnx` ({onnx_check['size_mb']} MB) gives the same label as the torch model"
            f" on {onnx_check['same_label_share']:.1%} of the test items; accuracy"
            f" {onnx_check['accuracy_onnx_int8']:.3f} against {onnx_check['accuracy_torch']:.3f}"
            f" ({onnx_check['accuracy_difference_points']:+.1f} points).",
        ]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        'classify = pipeline("text-classification", model="<this folder or repo>")',
        "```",
        "",
        "or, for large files: `synthdistill-predict <folder> texts.parquet predictions.parquet`.",
    ]
    # ModelCard parses the YAML header back, so a malformed card fails here and not on the Hub.
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"))


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
