"""Token ids in batches of similar length: the one batching loop behind every model that reads
texts (the student's torch and ONNX predictors, the review's sentence embeddings)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class LengthSortedBatches:
    """Token ids for a list of texts, cut into batches of similar length, padded per batch."""

    def __init__(self, tokenizer, max_length: int, batch_size: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.pad_id = tokenizer.pad_token_id or 0

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    def batches(self, ids: list[list[int]]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(positions in the input, input_ids, attention_mask) per batch."""
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            width = int(lengths[index].max())
            input_ids = np.full((len(index), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(index), width), dtype=np.int64)
            for row, position in enumerate(index):
                sequence = ids[position]
                input_ids[row, : len(sequence)] = sequence
                mask[row, : len(sequence)] = 1
            yield index, input_ids, mask
