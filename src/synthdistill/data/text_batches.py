"""Token ids in batches of similar length: the one batching loop behind every model that reads
texts (the student's torch and ONNX predictors, the review's sentence embeddings)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# The first cut of encode_prefixes, in characters per token of max_length: English runs about 4 to 5
# characters per WordPiece/BPE token, so most texts fill max_length from their first cut.
FIRST_CUT_CHARS_PER_TOKEN = 8
_WHITESPACE = " \t\n\r"


class LengthSortedBatches:
    """Token ids for a list of texts, cut into batches of similar length, padded per batch."""

    def __init__(self, tokenizer, max_length: int, batch_size: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.pad_id = tokenizer.pad_token_id or 0

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    def encode_prefixes(self, texts: list[str]) -> list[list[int]]:
        """The ids ``encode`` gives, tokenizing only as much of each text as max_length tokens can use.

        A tokenizer truncates after tokenizing the whole text, so a 78,000-character text costs as much
        as 300 of 256 tokens (and its memory). Each text is cut at a whitespace, max_length x
        FIRST_CUT_CHARS_PER_TOKEN characters in; a cut text whose prefix does not fill max_length is
        encoded again from a prefix four times as long, until it fills or is whole. Cut at a whitespace
        the prefix's tokens are the text's first tokens, so the ids equal ``encode``'s (a text with no
        whitespace in the second half of its cut is cut inside that run, at the limit).
        """
        ids: list[list[int]] = [[] for _ in texts]
        todo = list(range(len(texts)))
        limit = self.max_length * FIRST_CUT_CHARS_PER_TOKEN
        while todo:
            prefixes = [_prefix(texts[i], limit) for i in todo]
            left = []
            for i, prefix, sequence in zip(todo, prefixes, self.encode(prefixes), strict=True):
                if len(sequence) >= self.max_length or len(prefix) == len(texts[i]):
                    ids[i] = sequence
                else:
                    left.append(i)
            todo, limit = left, limit * 4
        return ids

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


def _prefix(text: str, limit: int) -> str:
    """The text up to its last whitespace before ``limit`` characters (or cut at the limit when the
    second half holds none), or the whole text when it is no longer."""
    if len(text) <= limit:
        return text
    cut = max(text.rfind(space, limit // 2, limit + 1) for space in _WHITESPACE)
    return text[: cut if cut > 0 else limit]
