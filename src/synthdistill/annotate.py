"""The annotation engine: prompts in, one row per item out, every answer cached as it arrives."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import numpy as np
import pandas as pd

from synthdistill.cache import ResponseCache, cache_key
from synthdistill.errors import SynthDistillError
from synthdistill.parsing import ERROR, OK, parse
from synthdistill.teachers.base import Completion, Request, Teacher

log = logging.getLogger(__name__)

CALIBRATION_SPLIT = "calibration"
CONTENT_FREE_TEXT = "N/A"
ANNOTATION_COLUMNS = [
    "id",
    "split",
    "raw_output",
    "label",
    "reason",
    "parse_status",
    "error",
    "latency_s",
    "input_tokens",
    "output_tokens",
    "cached",
]


def output_schema(kind: str, labels: list[str], reason_max_chars: int = 120) -> dict[str, Any] | None:
    """The JSON schema a ``cot_json`` answer must follow when decoding is constrained."""
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
    messages: list[dict[str, str]], kind: str, labels: list[str], generation: dict[str, Any], iteration: int
) -> Request:
    """One request, seeded per item and per self-consistency iteration.

    One seed shared by every item of an iteration would draw the same random number for each
    of them, so an iteration's samples would lean the same way across all items.
    """
    structured = generation.get("structured", False)
    seed = generation.get("seed")
    if kind == "label_scores":
        # One deterministic forward pass: sampling settings and seeds do not apply.
        return Request(
            messages=messages, max_tokens=1, temperature=0.0, top_p=1.0, seed=None, score_labels=list(labels)
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


class Progress:
    """done/total, rate, failures and cache hits, logged at most every ``every_s`` seconds."""

    def __init__(self, total: int, every_s: float = 10.0) -> None:
        self.total, self.every_s = total, every_s
        self.done = self.failed = self.cached = 0
        self.start = self.last = time.monotonic()

    def update(self, failed: bool, cached: bool) -> None:
        self.done += 1
        self.failed += failed
        self.cached += cached
        now = time.monotonic()
        if now - self.last >= self.every_s or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            log.info(
                "annotated %d/%d (%.1f items/s), request failures %d, cache hits %d",
                self.done,
                self.total,
                rate,
                self.failed,
                self.cached,
            )


Outcome = tuple[Completion | None, float | None, str | None, bool]  # completion, latency, error, cached


def _collect(requests: list[Request], keys: list[str], teacher: Teacher, cache: ResponseCache) -> list[Outcome]:
    """Answers for every request: from the cache, else from the teacher, stored as they arrive."""
    results: list[Outcome] = [(None, None, None, False)] * len(requests)
    progress = Progress(len(requests))
    missing = []
    for index, key in enumerate(keys):
        hit = cache.get(key)
        if hit is None:
            missing.append(index)
        else:
            results[index] = (hit[0], hit[1], None, True)
            progress.update(failed=False, cached=True)

    batch_size = getattr(teacher, "batch_size", 1) if hasattr(teacher, "complete_batch") else 1

    def call(indices: list[int]) -> list[tuple[int, Completion | None, float, str | None]]:
        start = time.perf_counter()
        try:
            if batch_size > 1:
                completions = teacher.complete_batch([requests[i] for i in indices])
            else:
                completions = [teacher.complete(requests[indices[0]])]
        except Exception as exc:  # recorded per item; the share check in annotate() decides the job
            error = f"{type(exc).__name__}: {exc}"
            return [(i, None, time.perf_counter() - start, error) for i in indices]
        latency = (time.perf_counter() - start) / len(indices)
        return [(i, c, latency, None) for i, c in zip(indices, completions, strict=True)]

    chunks = [missing[i : i + batch_size] for i in range(0, len(missing), batch_size)]
    with ThreadPoolExecutor(max_workers=max(1, teacher.max_concurrency)) as pool:
        for future in as_completed([pool.submit(call, chunk) for chunk in chunks]):
            for index, completion, latency, error in future.result():
                if completion is not None:
                    cache.put(keys[index], requests[index].as_dict(), completion, latency)
                results[index] = (completion, latency, error, False)
                progress.update(failed=error is not None, cached=False)
    return results


def label_probabilities(completion: Completion, labels: list[str], prior: np.ndarray | None) -> np.ndarray:
    """Normalised label probabilities, divided by the content-free prior when calibrating."""
    logprobs = np.array([completion.extra["label_logprobs"][label] for label in labels])
    probs = np.exp(logprobs - logprobs.max())
    if prior is not None:
        probs = probs / prior
    return probs / probs.sum()


def annotate(
    prompts: pd.DataFrame,
    teacher: Teacher,
    cache: ResponseCache,
    *,
    kind: str,
    labels: list[str],
    generation: dict[str, Any],
    iteration: int,
    max_failure_share: float = 0.1,
) -> pd.DataFrame:
    """Label every prompt once (one self-consistency iteration).

    Cached answers are reused; new ones are stored as soon as they arrive, so a killed job
    resumes with only the missing requests. A request that fails is recorded with its error;
    if more than ``max_failure_share`` fail, the job stops after storing all the others.
    For ``label_scores`` prompts a row with split ``calibration`` (the content-free input) gives
    the prior that contextual calibration divides by; it is not part of the output.
    """
    requests = [build_request(json.loads(m), kind, labels, generation, iteration) for m in prompts["messages"]]
    keys = [cache_key(teacher.identity, r.as_dict(), iteration) for r in requests]
    results = _collect(requests, keys, teacher, cache)

    is_calibration = (prompts["split"] == CALIBRATION_SPLIT).to_numpy()
    prior = None
    if kind == "label_scores" and is_calibration.any():
        completion = results[int(np.flatnonzero(is_calibration)[0])][0]
        if completion is None:
            raise SynthDistillError("the content-free calibration request failed; rerun to retry it")
        prior = label_probabilities(completion, labels, None)
        log.info("calibration prior %s", dict(zip(labels, prior.round(3).tolist(), strict=True)))

    rows = []
    for (completion, latency, error, cached), item, calibration in zip(
        results, prompts.to_dict("records"), is_calibration, strict=True
    ):
        if calibration:
            continue
        row = {"id": item["id"], "split": item["split"], "error": error, "latency_s": latency, "cached": cached}
        if completion is None:
            row.update(raw_output=None, label=None, reason=None, parse_status=ERROR)
        elif kind == "label_scores":
            probs = label_probabilities(completion, labels, prior)
            raw = json.dumps(completion.extra["label_logprobs"])
            row.update(raw_output=raw, label=labels[int(probs.argmax())], reason=None, parse_status=OK)
            row.update({f"prob_{label}": float(p) for label, p in zip(labels, probs, strict=True)})
        else:
            parsed = parse(kind, completion.text, labels)
            row.update(raw_output=completion.text, label=parsed.label, reason=parsed.reason, parse_status=parsed.status)
        row["input_tokens"] = completion.input_tokens if completion else None
        row["output_tokens"] = completion.output_tokens if completion else None
        rows.append(row)
    prob_columns = [f"prob_{label}" for label in labels] if kind == "label_scores" else []
    frame = pd.DataFrame(rows, columns=ANNOTATION_COLUMNS + prob_columns)
    for column in ("input_tokens", "output_tokens"):
        frame[column] = frame[column].astype("Int64")
    failed = int((frame["parse_status"] == ERROR).sum())
    if failed > max_failure_share * len(frame):
        first = frame.loc[frame["parse_status"] == ERROR, "error"].iloc[0]
        raise SynthDistillError(
            f"{failed} of {len(frame)} requests failed (more than max_failure_share={max_failure_share}); "
            f"the {len(frame) - failed} answers received are in the cache {cache.path}. First error: {first}"
        )
    return frame
