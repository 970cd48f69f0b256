"""Fine-tune a sequence-classification student on (synthetic) labels and predict with it."""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from synthdistill.paths import resolve_model_ref
from synthdistill.schema import with_defaults
from synthdistill.students.inference import TorchPredictor
from synthdistill.students.targets import class_weight_vector, one_hot, soft_cross_entropy, target_columns

log = logging.getLogger(__name__)

# Student settings that choose the data or the code, not the optimisation (see students.files).
NOT_HYPERPARAMETERS = ("model", "trust_remote_code", "min_agreement", "agreement_weighting", "targets")


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def train(
    train_items: pd.DataFrame,
    validation_items: pd.DataFrame,
    labels: list[str],
    model_ref: str,
    hyperparameters: dict[str, Any],
    output_dir: str | Path,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Train on ``train_items`` (text, label), select the epoch on ``validation_items``, save the best.

    The student learns towards the ``target_<label>`` distributions when ``train_items`` has them
    (students.targets), else towards the one-hot label. The validation split (its hard labels)
    chooses the epoch and stops training early; the expert test split is never seen here.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    hp = {k: v for k, v in with_defaults(hyperparameters, "students", "*").items() if k not in NOT_HYPERPARAMETERS}
    seed_everything(int(hp["seed"]))
    device = torch.device(pick_device())
    label2id = {label: i for i, label in enumerate(labels)}
    path = resolve_model_ref(model_ref)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
        ignore_mismatched_sizes=True,
    ).to(device)

    texts = train_items["text"].tolist()
    soft = target_columns(labels)
    target_array = (
        train_items[soft].to_numpy(dtype="float32")
        if set(soft) <= set(train_items)
        else one_hot(train_items["label"], labels)
    )
    targets = torch.tensor(target_array)
    class_weights = torch.tensor(class_weight_vector(target_array, hp.get("class_weights")))
    # Optional per-item weights (vote agreement): a split vote teaches less than a unanimous one.
    weights = torch.tensor(
        train_items["weight"].to_numpy(dtype="float32") if "weight" in train_items else np.ones(len(texts), "float32")
    )
    generator = torch.Generator().manual_seed(int(hp["seed"]))
    batch_size = int(hp["batch_size"])
    steps_per_epoch = max(1, -(-len(texts) // batch_size))
    epochs = int(hp["epochs"])
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=float(hp["learning_rate"]), weight_decay=float(hp["weight_decay"])
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(float(hp["warmup_ratio"]) * steps_per_epoch * epochs), steps_per_epoch * epochs
    )
    val_texts = validation_items["text"].tolist()
    val_targets = [label2id[label] for label in validation_items["label"]]

    best_f1, best_state, best_epoch, stale = -1.0, None, 0, 0
    history = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        permutation = torch.randperm(len(texts), generator=generator)
        total_loss = 0.0
        for step in range(steps_per_epoch):
            index = permutation[step * batch_size : (step + 1) * batch_size]
            batch = tokenizer(
                [texts[i] for i in index],
                truncation=True,
                max_length=int(hp["max_length"]),
                padding=True,
                return_tensors="pt",
            ).to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(**batch).logits
            per_item = soft_cross_entropy(logits, targets[index].to(device), class_weights.to(device))
            batch_weights = weights[index].to(device)
            loss = (per_item * batch_weights).sum() / batch_weights.sum()
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total_loss += loss.item()
        entry: dict[str, Any] = {"epoch": epoch, "train_loss": total_loss / steps_per_epoch}
        if val_texts:
            predictor = TorchPredictor.from_model(model, tokenizer, int(hp["max_length"]))
            predictions = predictor.predict_proba(val_texts).argmax(axis=1)
            entry["validation_f1_macro"] = float(
                f1_score(val_targets, predictions, average="macro", labels=list(range(len(labels))), zero_division=0)
            )
            # What the student answers on validation: the report flags one class for nearly every item.
            counts = np.bincount(predictions, minlength=len(labels))
            entry["validation_prediction_shares"] = {
                label: float(counts[i] / len(predictions)) for i, label in enumerate(labels)
            }
        history.append(entry)
        log.info("epoch %d: %s", epoch, entry)
        score = entry.get("validation_f1_macro", float(epoch))
        if score > best_f1:
            best_f1, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            stale += 1
            if stale >= int(hp["early_stopping_patience"]):
                log.info("early stop after epoch %d; best epoch %d", epoch, best_epoch)
                break
    train_seconds = time.perf_counter() - start
    model.load_state_dict(best_state)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    examples_seen = len(texts) * len(history)
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
        "train_seconds": train_seconds,
        "train_examples_per_second": examples_seen / train_seconds if train_seconds else None,
        "device": device.type,
        "torch_threads": torch.get_num_threads(),
    }


def write_metadata(metadata: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
