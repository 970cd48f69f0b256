"""Sentence embeddings for choosing few-shot examples: a Hugging Face encoder, mean pooling over
the tokens that are not padding, unit length (so a dot product is the cosine similarity)."""

from __future__ import annotations

import numpy as np

from synthdistill.data.model_refs import resolve_model_ref


def embed(texts: list[str], model: str, batch_size: int = 64, max_length: int = 128) -> np.ndarray:
    """One unit-length row per text; ``model`` is a hub id, a folder or ``package://module/path``."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_ref(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path).eval()
    # Sorted by length so that a batch pads little; rows go back to the input order at the end.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out
