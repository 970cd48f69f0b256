"""A token-classification student for task spans: BIO tags over the tokenizer's subword tokens,
aligned to character spans through the offset mapping, and decoded back to character spans.

Every subword of a mention is tagged (B- on its first token, I- on the rest), so a mention split
into word pieces is learnt and decoded as one span; special and padding tokens are -100 (no loss).
A token is inside a span when its first character is. Decoding joins a B- token with the I- tokens
of the same type that follow it (an I- after O or another type starts a span, as conlleval reads
it) and the span runs from the first token's start to the last token's end.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdistill.data.spans import tagged_spans
from synthdistill.students.training import (
    fit,
    item_weights,
    load_classifier,
    pick_device,
    save_model,
    start_training,
)
from synthdistill.tasks.spans import Span, from_json

log = logging.getLogger(__name__)

IGNORED = -100  # the label index torch's cross-entropy skips


def bio_tags(labels: list[str]) -> list[str]:
    """The student's classes: O, then B- and I- of each label in config order."""
    return ["O", *[f"{prefix}-{label}" for label in labels for prefix in ("B", "I")]]


def align(offsets: list[tuple[int, int]], spans: list[Span], tag_ids: dict[str, int]) -> list[int]:
    """The class of every token given its (start, end) character offsets; (0, 0) marks a special token."""
    ordered = sorted(spans)
    classes = []
    opened: set[Span] = set()
    for start, end in offsets:
        if start == end:
            classes.append(IGNORED)
            continue
        inside = next((s for s in ordered if s.start <= start < s.end), None)
        if inside is None:
            classes.append(tag_ids["O"])
        else:
            classes.append(tag_ids[f"{'I' if inside in opened else 'B'}-{inside.label}"])
            opened.add(inside)
    return classes


def decode(offsets: list[tuple[int, int]], classes: list[int], tags: list[str]) -> list[Span]:
    """Character spans of predicted token classes (special tokens skipped)."""
    tagged = ((start, end, tags[cls]) for (start, end), cls in zip(offsets, classes, strict=True) if start != end)
    return tagged_spans(tagged)


class SpanPredictor:
    """Spans of texts from a saved (or in-memory) token-classification model, in batches."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int, batch_size: int = 32) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.batch_size = max_length, batch_size
        config = model.config
        self.tags = [config.id2label[i] for i in range(config.num_labels)]

    @classmethod
    def load(cls, model_dir: str | Path, max_length: int) -> SpanPredictor:
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        model = AutoModelForTokenClassification.from_pretrained(model_dir, use_safetensors=True)
        return cls(model.to(pick_device()).eval(), AutoTokenizer.from_pretrained(model_dir), max_length)

    def classes(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """The predicted class of every token of a padded batch."""
        import torch

        device = next(self.model.parameters()).device
        self.model.eval()
        with torch.inference_mode():
            logits = self.model(
                input_ids=torch.from_numpy(input_ids).to(device),
                attention_mask=torch.from_numpy(attention_mask).to(device),
            ).logits
        return logits.argmax(-1).cpu().numpy()

    def predict(self, texts: list[str]) -> list[list[Span]]:
        out: list[list[Span]] = []
        for begin in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[begin : begin + self.batch_size],
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_offsets_mapping=True,
                return_tensors="np",
            )
            mask = batch["attention_mask"]
            classes = self.classes(batch["input_ids"].astype(np.int64), mask.astype(np.int64)).tolist()
            for row_offsets, row_classes, row_mask in zip(batch["offset_mapping"].tolist(), classes, mask, strict=True):
                kept = [(tuple(o), c) for o, c, m in zip(row_offsets, row_classes, row_mask, strict=True) if m]
                out.append(decode([o for o, _ in kept], [c for _, c in kept], self.tags))
        return out


def _encode(tokenizer: Any, texts: list[str], answers: list[str], tag_ids: dict[str, int], max_length: int) -> Any:
    """Tokenized texts with their aligned class ids (padding positions -100)."""
    import torch

    batch = tokenizer(
        texts, truncation=True, max_length=max_length, padding=True, return_offsets_mapping=True, return_tensors="pt"
    )
    offsets = batch.pop("offset_mapping").tolist()
    classes = [align([tuple(o) for o in row], from_json(a), tag_ids) for row, a in zip(offsets, answers, strict=True)]
    labels = torch.tensor(classes)
    labels[batch["attention_mask"] == 0] = IGNORED
    batch["labels"] = labels
    return batch


def train(
    train_items: pd.DataFrame,
    validation_items: pd.DataFrame,
    labels: list[str],
    model_ref: str,
    hyperparameters: dict[str, Any],
    output_dir: str | Path,
) -> dict[str, Any]:
    """Train on ``train_items`` (text, label: canonical span JSON), choose the epoch by entity F1 on
    ``validation_items``, save the best. The expert test split is never seen here."""
    import torch

    from synthdistill.metrics.spans import entity_scores

    hp, device = start_training(hyperparameters)
    tags = bio_tags(labels)
    tag_ids = {tag: i for i, tag in enumerate(tags)}
    # A spans student never took students.*.trust_remote_code.
    tokenizer, model = load_classifier(
        model_ref, tags, tag_ids, device, trust_remote_code=False, token_classification=True
    )
    texts, answers = train_items["text"].tolist(), train_items["label"].tolist()
    max_length = int(hp["max_length"])
    val_texts = validation_items["text"].tolist()
    val_spans = [from_json(a) for a in validation_items["label"]]
    predictor = SpanPredictor(model, tokenizer, max_length)

    def encode(index: Any) -> tuple[Any, Any]:
        chosen = [int(i) for i in index]
        batch = _encode(tokenizer, [texts[i] for i in chosen], [answers[i] for i in chosen], tag_ids, max_length)
        targets = batch.pop("labels")
        return batch.to(device), targets.to(device)

    def per_item_loss(logits: Any, targets: Any) -> Any:
        # Each text's mean over its tagged tokens, so a long text counts as much as a short one.
        per_token = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), targets, ignore_index=IGNORED, reduction="none"
        )
        tagged = (targets != IGNORED).sum(dim=1).clamp(min=1)
        return per_token.sum(dim=1) / tagged

    def validate(model: Any) -> tuple[float, dict[str, Any], Any]:
        f1 = entity_scores(val_spans, predictor.predict(val_texts), labels)["f1"]
        return f1, {"validation_entity_f1": f1}, None

    fitted = fit(model, encode, per_item_loss, item_weights(train_items), hp, validate if val_texts else None)
    save_model(model, tokenizer, output_dir)
    history, best_epoch, train_seconds = fitted.history, fitted.best_epoch, fitted.seconds
    return {
        "base_model": model_ref,
        "labels": labels,
        "tags": tags,
        "hyperparameters": hp,
        "train_examples": len(texts),
        "train_spans": int(sum(len(from_json(a)) for a in answers)),
        "validation_examples": len(val_texts),
        "best_epoch": best_epoch,
        "history": history,
        "train_seconds": train_seconds,
        "device": device.type,
        "torch_threads": torch.get_num_threads(),
    }
