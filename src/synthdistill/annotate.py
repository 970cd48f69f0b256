"""The annotation engine: prompts in, one row per item out, every answer cached as it arrives."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import pandas as pd

from synthdistill.cache import ResponseCache, cache_key
from synthdistill.errors import SynthDistillError
from synthdistill.parsing import ERROR, parse
from synthdistill.teachers.base import Completion, Request, Teacher

log = logging.getLogger(__name__)

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


def build_request(
    messages: list[dict[str, str]], kind: str, labels: list[str], generation: dict[str, Any], iteration: int
) -> Request:
    """One request; the seed differs per self-consistency iteration so samples differ."""
    structured = generation.get("structured", False)
    seed = generation.get("seed")
    return Request(
        messages=messages,
        max_tokens=int(generation["max_tokens"]),
        temperature=float(generation["temperature"]),
        top_p=float(generation.get("top_p", 1.0)),
        seed=None if seed is None else int(seed) + iteration,
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
    """
    requests = [build_request(json.loads(m), kind, labels, generation, iteration) for m in prompts["messages"]]
    keys = [cache_key(teacher.identity, r.as_dict(), iteration) for r in requests]
    results: list[tuple[Completion | None, float | None, str | None, bool]] = [(None, None, None, False)] * len(
        requests
    )
    progress = Progress(len(requests))
    missing = []
    for index, key in enumerate(keys):
        hit = cache.get(key)
        if hit is None:
            missing.append(index)
        else:
            results[index] = (hit[0], hit[1], None, True)
            progress.update(failed=False, cached=True)

    def call(index: int) -> tuple[int, Completion | None, float, str | None]:
        start = time.perf_counter()
        try:
            completion = teacher.complete(requests[index])
        except Exception as exc:  # recorded per item; the share check below decides the job
            return index, None, time.perf_counter() - start, f"{type(exc).__name__}: {exc}"
        return index, completion, time.perf_counter() - start, None

    with ThreadPoolExecutor(max_workers=max(1, teacher.max_concurrency)) as pool:
        futures = [pool.submit(call, index) for index in missing]
        for future in as_completed(futures):
            index, completion, latency, error = future.result()
            if completion is not None:
                cache.put(keys[index], requests[index].as_dict(), completion, latency)
            results[index] = (completion, latency, error, False)
            progress.update(failed=error is not None, cached=False)

    rows = []
    for (completion, latency, error, cached), (_, item) in zip(results, prompts.iterrows(), strict=True):
        if completion is None:
            label, reason, status, raw = None, None, ERROR, None
        else:
            parsed = parse(kind, completion.text, labels)
            label, reason, status, raw = parsed.label, parsed.reason, parsed.status, completion.text
        rows.append(
            {
                "id": item["id"],
                "split": item["split"],
                "raw_output": raw,
                "label": label,
                "reason": reason,
                "parse_status": status,
                "error": error,
                "latency_s": latency,
                "input_tokens": completion.input_tokens if completion else None,
                "output_tokens": completion.output_tokens if completion else None,
                "cached": cached,
            }
        )
    frame = pd.DataFrame(rows, columns=ANNOTATION_COLUMNS)
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
