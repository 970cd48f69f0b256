"""A model card (README.md) for every trained student, whatever its task kind, and the opt-in push to the
Hugging Face Hub."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthdistill import SynthDistillError
from synthdistill.metrics.costs import training_energy
from synthdistill.metrics.run_facts import read_json
from synthdistill.tasks import get_task
from synthdistill.tasks.names import EXPERT

if TYPE_CHECKING:
    from huggingface_hub import ModelCardData


# The card's prose lives in this template next to the code (as in setfit), filled from the run's data.
TEMPLATE = Path(__file__).with_name("model_card.md.jinja")


# What starts or ends inline Markdown (code, emphasis, links, strike-through, the Hub's $ math), made
# literal by a backslash; HTML's < > & become entities. Labels never start a line of the card, so the
# block markers (#, -, 1.) need nothing, and "Sci/Tech" or "U.S." stay as they read.
_MARKDOWN_PUNCTUATION = frozenset("\\`*_[]$~")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def markdown_text(value: Any) -> str:
    """``value`` as literal text inside a line of Markdown: a label such as ``<img src=x onerror=alert(1)>``,
    ``**x**`` or ``$5^$`` shows as written, never as HTML, emphasis, a link or math."""
    text = str(value)
    out = []
    for i, char in enumerate(text):
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
            # CommonMark never reads an underscore inside a word as emphasis: feature_request stays as written.
            out.append(char)
        elif char in _MARKDOWN_PUNCTUATION:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _render(**values: Any) -> str:
    import jinja2

    # trim_blocks/lstrip_blocks: a line holding only a {% tag %} prints nothing; the template's last
    # newline is the card's last newline. Labels are the user's text: the template prints each through
    # the md filter, so that none is read as Markdown or HTML.
    environment = jinja2.Environment(
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )
    environment.filters["md"] = markdown_text
    return environment.from_string(TEMPLATE.read_text(encoding="utf-8")).render(**values)


def _source(metadata: dict[str, Any]) -> str:
    if metadata["teacher"] == EXPERT:
        return "the expert labels of the dataset (upper-bound baseline, not distilled)"
    if metadata.get("labeller"):  # students_learn_from: best
        return f"synthetic labels from `{metadata['labeller']}`, the labeller ranked first on the gold dev split"
    return f"synthetic labels from teacher `{metadata['teacher']}` with prompt `{metadata['prompt']}`"


def card_data(metadata: dict[str, Any], task: str, widget_texts: list[str] | None) -> ModelCardData:
    """The card's YAML header: what the Hub's widget, search and base-model link read."""
    from huggingface_hub import ModelCardData

    base = metadata["base_model"]
    return ModelCardData(
        library_name="transformers",
        pipeline_tag=get_task(task).card.pipeline_tag,
        tags=["synthdistill", "knowledge-distillation", "synthetic-labels", *get_task(task).card.tags],
        # Only a hub id is a base model the Hub can link; a local or packaged path is not.
        base_model=base if "://" not in base and not Path(base).exists() else None,
        # Example inputs of the Hub's inference widget: only texts the user chose to publish.
        widget=[{"text": text} for text in widget_texts] if widget_texts else None,
    )


def card_text(
    metadata: dict[str, Any],
    metrics: dict[str, Any] | None,
    hardware: dict[str, Any],
    onnx_check: dict[str, Any] | None,
    task: str,
    widget_texts: list[str] | None,
) -> str:
    """The card's Markdown for a student of any task kind, with YAML metadata the Hub reads."""
    from huggingface_hub import ModelCard

    card = get_task(task).card  # an unknown task stops here, naming the kinds there are
    compared = onnx_check.get(card.onnx_compared) if onnx_check else None
    text = _render(
        card_data=card_data(metadata, task, widget_texts).to_yaml(),
        task=task,
        name=metadata.get("name", "synthdistill student"),
        base_model=metadata["base_model"],
        source=_source(metadata),
        distilled=metadata["teacher"] != EXPERT,
        labels=metadata["labels"],
        label2id=metadata.get("label2id"),
        thresholds=metadata.get("label_thresholds"),
        tags=metadata.get("tags"),
        train_examples=metadata["train_examples"],
        train_spans=metadata.get("train_spans"),
        validation_examples=metadata["validation_examples"],
        corrections=metadata.get("reviewed_corrections"),
        label_options=metadata.get("label_options"),
        hp=metadata["hyperparameters"],
        best_epoch=metadata["best_epoch"],
        epochs_run=len(metadata["history"]),
        selection_metric=card.selection_metric,
        train_seconds=metadata["train_seconds"],
        device=metadata["device"],
        train_examples_per_second=metadata.get("train_examples_per_second"),
        energy=training_energy(metadata["train_seconds"], hardware),
        metrics=metrics,
        level=int(metrics["intervals"]["level"] * 100) if metrics else None,
        # The ONNX section only when the check compared the two models on expert labels.
        onnx=onnx_check if compared is not None else None,
    )
    # ModelCard parses the YAML header back, so a malformed card fails here and not on the Hub.
    return str(ModelCard(text))


def write_card(
    metadata_path: str,
    metrics_path: str | None,
    hardware: dict[str, Any],
    output_path: str,
    onnx_check_path: str | None,
    name: str | None,
    task: str,
    widget_texts: list[str] | None,
) -> str:
    """The write_model_card rule: a student's README.md from its metadata, test metrics and ONNX check."""
    metadata = read_json(metadata_path)
    if name:
        metadata["name"] = name
    text = card_text(metadata, read_json(metrics_path), hardware, read_json(onnx_check_path), task, widget_texts)
    Path(output_path).write_text(text)
    return text


def push_student(model_dir: str, card_path: str, repo_id: str, token_env: str, private: bool) -> dict[str, Any]:
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
