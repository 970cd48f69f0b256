"""The teacher requests of a prompts frame's items: one per item, or one per label for channel and
per-label prompts, each seeded and shaped by the generation settings."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from synthdistill import SynthDistillError
from synthdistill.annotation.channel import CHANNEL, is_channel
from synthdistill.annotation.prompts import answer_aliases
from synthdistill.annotation.teachers.base import Request

# What a per-label prompt's teacher answers about each label (multi_label label_scores).
YES_NO = ["yes", "no"]


def output_schema(kind: str, labels: list[str], reason_max_chars: int = 120) -> dict[str, Any] | None:
    """The JSON schema an answer must follow when decoding is constrained (None: not JSON)."""
    if kind == "labels_json":
        from synthdistill.annotation.multi_label_parsing import labels_json_schema

        return labels_json_schema(labels)
    if kind == "spans_json":
        from synthdistill.annotation.span_parsing import spans_json_schema

        return spans_json_schema(labels)
    if kind != "cot_json":
        return None
    return {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "maxLength": reason_max_chars},
            "label": {"type": "string", "enum": labels},
        },
        "required": ["reason", "label"],
        "additionalProperties": False,
    }


def item_seed(seed: int, iteration: int, messages: list[dict[str, str]]) -> int:
    """A deterministic 31-bit seed for one item and iteration (servers accept 32-bit seeds)."""
    digest = hashlib.sha256(json.dumps([seed, iteration, messages], sort_keys=True).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def build_request(
    messages: list[dict[str, str]],
    kind: str,
    labels: list[str],
    generation: dict[str, Any],
    iteration: int,
    label_scoring: str | None = None,
) -> Request:
    """One request, seeded per item and per self-consistency iteration.

    One seed shared by every item of an iteration would draw the same random number for each
    of them, so an iteration's samples would lean the same way across all items.
    ``label_scoring`` is the teacher's way of scoring labels (``Teacher.label_scoring``), part of
    the request so that the cache key says how a label_scores answer was computed.
    """
    structured = generation.get("structured", False)
    seed = generation.get("seed")
    if kind == "label_scores":
        # Deterministic scores from forward passes: sampling settings and seeds do not apply. With
        # aliases the teacher scores the letters the prompt lists, and the request says so.
        return Request(
            messages=messages,
            max_tokens=1,
            temperature=0.0,
            top_p=1.0,
            seed=None,
            score_labels=answer_aliases(labels, generation.get("aliases")),
            label_scoring=label_scoring,
        )
    return Request(
        messages=messages,
        max_tokens=int(generation["max_tokens"]),
        temperature=float(generation["temperature"]),
        top_p=float(generation.get("top_p", 1.0)),
        seed=None if seed is None else item_seed(int(seed), iteration, messages),
        json_schema=output_schema(kind, labels) if structured else None,
        choices=list(labels) if structured and kind == "label" else None,
    )


def item_requests(
    messages: str,
    kind: str,
    labels: list[str],
    generation: dict[str, Any],
    iteration: int,
    label_scoring: str | None = None,
) -> list[Request]:
    """The requests of one item (its prompts-file ``messages`` cell): one, or for a per-label prompt
    (``generation["per_label"]``) one yes/no scoring request per label, each cached like any request."""
    chats = json.loads(messages)
    if is_channel(generation) or generation.get("per_label"):
        what = "a channel prompt's" if is_channel(generation) else "a per-label prompt's"
        if not (isinstance(chats, list) and len(chats) == len(labels) and all(isinstance(c, list) for c in chats)):
            raise SynthDistillError(
                f"{what} messages cell must hold one chat per label ({len(labels)}); this prompts "
                "file was built for another prompt or label set: rebuild it (rule build_prompts)"
            )
    if is_channel(generation):
        # The text's log-probability after each label's context: no sampling, no answer tokens.
        return [
            Request(messages=chat, max_tokens=0, temperature=0.0, top_p=1.0, seed=None, label_scoring=CHANNEL)
            for chat in chats
        ]
    if generation.get("per_label"):
        yes_no = {**generation, "aliases": None}
        return [build_request(chat, kind, YES_NO, yes_no, iteration, label_scoring) for chat in chats]
    return [build_request(chats, kind, labels, generation, iteration, label_scoring)]
