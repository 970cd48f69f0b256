"""Fine-tune a sequence-classification student on (synthetic) labels and predict with it."""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from synthdistill.data.model_refs import resolve_model_ref
from synthdistill.schema import with_defaults
from synthdistill.students.inference import TorchPredictor
from synthdistill.students.targets import class_weight_vector, one_hot, soft_cross_entropy, target_columns

log = logging.getLogger(__name__)

# Student settings that choose the data or the code, not the optimisation (see students.files).
NOT_HYPERPARAMETERS = ("model", "trust_remote_code", "min_agreement", "agreement_weighting", "targets")


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def hyperparameters_of(settings: dict[str, Any]) -> dict[str, Any]:
    """The student settings its trainer takes: all but those choosing the model, code or labels."""
    return {k: v for k, v in settings.items() if k not in NOT_HYPERPARAMETERS}


def start_training(hyperparameters: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """What every kind's trainer starts from: its settings (the schema's defaults filled in, those that
    are no hyperparameters left out) and its device, with the random generators seeded from the settings
    before the model's head is drawn."""
    import torch

    hp = hyperparameters_of(with_defaults(hyperparameters, "students", "*"))
    seed = int(hp["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return hp, torch.device(pick_device())


@dataclass
class Fitted:
    """What ``fit`` leaves: the per-epoch history, the kept epoch and what its validation returned."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_extra: Any
    seconds: float


def fit(
    model: Any,
    encode: Callable[[Any], tuple[Any, Any]],
    per_item_loss: Callable[[Any, Any], Any],
    weights: Any,
    hp: dict[str, Any],
    validate: Callable[[Any], tuple[float, dict[str, Any], Any]] | None,
) -> Fitted:
    """The training loop every student kind shares: AdamW with linear warmup and decay, shuffled
    batches (seeded), loss weighted per item, the best epoch by the validation score kept (and
    loaded back into ``model``), early stopping after ``early_stopping_patience`` worse epochs once
    ``min_steps`` optimizer steps are done (the epochs raised to reach them).

    ``encode(indices)`` gives a batch's model inputs and targets on the model's device;
    ``per_item_loss(logits, targets)`` one loss per item; ``validate(model)`` the epoch's score
    (higher is better), history entries, and anything to keep with the best epoch (thresholds).
    Without validation items the last epoch is kept.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    device = next(model.parameters()).device
    n = len(weights)
    generator = torch.Generator().manual_seed(int(hp["seed"]))
    batch_size = int(hp["batch_size"])
    steps_per_epoch = max(1, -(-n // batch_size))
    # A small train set (an active round) gets too few steps from its epochs to move off the majority
    # answer: min_steps raises the epochs, and early stopping waits until that many steps are done.
    min_steps = int(hp.get("min_steps") or 0)
    epochs = max(int(hp["epochs"]), -(-min_steps // steps_per_epoch))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=float(hp["learning_rate"]), weight_decay=float(hp["weight_decay"])
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(float(hp["warmup_ratio"]) * steps_per_epoch * epochs), steps_per_epoch * epochs
    )
    best_score, best_state, best_epoch, best_extra, stale = -float("inf"), None, 0, None, 0
    history = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        permutation = torch.randperm(n, generator=generator)
        total_loss = 0.0
        for step in range(steps_per_epoch):
            index = permutation[step * batch_size : (step + 1) * batch_size]
            inputs, targets = encode(index)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(**inputs).logits
            per_item = per_item_loss(logits.float(), targets)
            batch_weights = weights[index].to(device)
            loss = (per_item * batch_weights).sum() / batch_weights.sum()
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total_loss += loss.item()
        entry: dict[str, Any] = {"epoch": epoch, "train_loss": total_loss / steps_per_epoch}
        score, extra = float(epoch), None
        if validate is not None:
            score, details, extra = validate(model)
            entry.update(details)
        history.append(entry)
        log.info("epoch %d: %s", epoch, entry)
        if score > best_score:
            best_score, best_epoch, best_extra, stale = score, epoch, extra, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            stale += 1
            if stale >= int(hp["early_stopping_patience"]) and epoch * steps_per_epoch >= min_steps:
                log.info("early stop after epoch %d; best epoch %d", epoch, best_epoch)
                break
    seconds = time.perf_counter() - start
    model.load_state_dict(best_state)
    return Fitted(history, best_epoch, best_extra, seconds)


def item_weights(items: pd.DataFrame) -> Any:
    """Per-item loss weights: the ``weight`` column (vote agreement) when there is one, else ones."""
    import torch

    weights = items["weight"].to_numpy(dtype="float32") if "weight" in items else np.ones(len(items), "float32")
    return torch.tensor(weights)


def save_model(model: Any, tokenizer: Any, output_dir: str | Path) -> None:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)


def load_classifier(
    model_ref: str,
    labels: list[str],
    label2id: dict[str, int],
    device: Any,
    trust_remote_code: bool,
    problem_type: str | None = None,
    token_classification: bool = False,
) -> tuple[Any, Any]:
    """The tokenizer and a fresh classification head of ``len(labels)`` outputs on the base model
    (``problem_type`` ``multi_label_classification``: one sigmoid output per label;
    ``token_classification``: one output per token, for the spans student's tags)."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

    path = resolve_model_ref(model_ref)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if token_classification and not getattr(tokenizer, "is_fast", False):
        # Tags are aligned to character spans through the offset mapping, which only a fast tokenizer gives.
        raise ValueError(f"student {model_ref}: token classification needs a fast tokenizer (offset mapping)")
    auto_class = AutoModelForTokenClassification if token_classification else AutoModelForSequenceClassification
    model = auto_class.from_pretrained(
        path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
        problem_type=problem_type,
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
        ignore_mismatched_sizes=True,
    ).to(device)
    return tokenizer, model


def fit_texts(
    model: Any,
    tokenizer: Any,
    train_items: pd.DataFrame,
    targets: np.ndarray,
    per_item_loss: Callable[[Any, Any], Any],
    hp: dict[str, Any],
    validate: Callable[[Any], tuple[float, dict[str, Any], Any]] | None,
) -> Fitted:
    """``fit`` of a sequence-classification student: the texts of ``train_items`` (tokenized, padded,
    truncated to ``max_length``) towards the rows of ``targets`` (items × labels), each item's loss
    weighted by its ``weight`` column if it has one."""
    import torch

    device = next(model.parameters()).device
    texts, target_rows, max_length = train_items["text"].tolist(), torch.tensor(targets), int(hp["max_length"])

    def encode(index: Any) -> tuple[Any, Any]:
        batch = tokenizer(
            [texts[i] for i in index], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        ).to(device)
        return batch, target_rows[index].to(device)

    return fit(model, encode, per_item_loss, item_weights(train_items), hp, validate)


def _validator(
    tokenizer: Any, max_length: int, val_texts: list[str], val_targets: list[int], labels: list[str]
) -> Callable[[Any], tuple[float, dict[str, Any], Any]]:
    """What :func:`fit` selects the epoch by: macro F1 on the validation split's hard labels."""

    def validate(model: Any) -> tuple[float, dict[str, Any], Any]:
        predictions = TorchPredictor.from_model(model, tokenizer, max_length).predict_proba(val_texts).argmax(axis=1)
        f1 = float(
            f1_score(val_targets, predictions, average="macro", labels=list(range(len(labels))), zero_division=0)
        )
        # What the student answers on validation: the report flags one class for nearly every item.
        counts = np.bincount(predictions, minlength=len(labels))
        shares = {label: float(counts[i] / len(predictions)) for i, label in enumerate(labels)}
        return f1, {"validation_f1_macro": f1, "validation_prediction_shares": shares}, None

    return validate


def train(
    train_items: pd.DataFrame,
    validation_items: pd.DataFrame,
    labels: list[str],
    model_ref: str,
    hyperparameters: dict[str, Any],
    output_dir: str | Path,
    *,
    trust_remote_code: bool,
) -> dict[str, Any]:
    """Train on ``train_items`` (text, label), select the epoch on ``validation_items``, save the best.

    The student learns towards the ``target_<label>`` distributions when ``train_items`` has them
    (students.targets), else towards the one-hot label. The validation split (its hard labels)
    chooses the epoch and stops training early; the expert test split is never seen here.
    """
    import torch

    hp, device = start_training(hyperparameters)
    label2id = {label: i for i, label in enumerate(labels)}
    tokenizer, model = load_classifier(model_ref, labels, label2id, device, trust_remote_code)

    texts = train_items["text"].tolist()
    soft = target_columns(labels)
    target_array = (
        train_items[soft].to_numpy(dtype="float32")
        if set(soft) <= set(train_items)
        else one_hot(train_items["label"], labels)
    )
    class_weights = torch.tensor(class_weight_vector(target_array, hp.get("class_weights"))).to(device)
    max_length = int(hp["max_length"])
    val_texts = validation_items["text"].tolist()
    val_targets = [label2id[label] for label in validation_items["label"]]
    validate = _validator(tokenizer, max_length, val_texts, val_targets, labels)

    loss = partial(soft_cross_entropy, class_weights=class_weights)
    fitted = fit_texts(model, tokenizer, train_items, target_array, loss, hp, validate if val_texts else None)
    save_model(model, tokenizer, output_dir)
    history, best_epoch = fitted.history, fitted.best_epoch
    return {
        "base_model": model_ref,
        "labels": labels,
        "label2id": label2id,
        "hyperparameters": hp,
        "targets": "soft" if set(soft) <= set(train_items) else "hard",
        "class_weight_values": dict(zip(labels, class_weights.tolist(), strict=True)),
        "train_examples": len(texts),
        "validation_examples": len(val_texts),
        "best_epoch": best_epoch,
        "history": history,
        "validation_prediction_shares": (
            history[best_epoch - 1].get("validation_prediction_shares") if best_epoch else None
        ),
        "train_seconds": fitted.seconds,
        "train_examples_per_second": len(texts) * len(history) / fitted.seconds if fitted.seconds else None,
        "device": device.type,
        "torch_threads": torch.get_num_threads(),
    }


def write_metadata(metadata: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
