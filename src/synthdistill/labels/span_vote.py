"""Self-consistency vote for task spans: a span (start, end, label) is kept when at least
``vote.min_share`` of the iterations that answered found it.

Kept spans that overlap (two iterations read "Acme Bank" and "Acme" as two entities, each often
enough) cannot both be BIO tags for a student, so the one more iterations found stays, then the
longer, then the earlier; the dropped one is listed with its agreement like every candidate.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import partial
from typing import Any

import pandas as pd

from synthdistill.labels.vote import ALL_FAILED, VOTED, iteration_answers, vote_frame
from synthdistill.labels.vote_files import Voted, vote_step
from synthdistill.tasks.spans import Span, from_json, to_json


def without_overlaps(kept: list[Span], counts: Counter[Span]) -> list[Span]:
    """The kept spans minus those overlapping a span with more votes (then longer, then earlier)."""
    chosen: list[Span] = []
    for span in sorted(kept, key=lambda s: (-counts[s], -(s.end - s.start), s.start, s.label)):
        if all(span.end <= other.start or other.end <= span.start for other in chosen):
            chosen.append(span)
    return sorted(chosen)


def vote_one(answers: list[str | None], min_share: float) -> dict[str, Any]:
    """The voted spans of one item from its iterations' canonical answers (None: the iteration failed).

    ``agreement`` is the share of all iterations whose answer is exactly the voted set (a failed
    answer counts as dissent, as in the single-label vote); ``spans`` lists every span any
    iteration found with the share of the answering iterations that found it, and whether it was kept.
    """
    answered = [set(from_json(a)) for a in answers if a is not None]
    if not answered:
        return {"label": None, "status": ALL_FAILED, "agreement": 0.0, "spans": [], "answered": 0}
    counts: Counter[Span] = Counter(span for spans in answered for span in spans)
    share = {span: count / len(answered) for span, count in counts.items()}
    # A small tolerance so that 1 of 2 iterations passes min_share 0.5 whatever the float rounding.
    passing = [span for span in counts if share[span] >= min_share - 1e-9]
    voted = without_overlaps(passing, counts)
    detail = [
        {"start": s.start, "end": s.end, "label": s.label, "agreement": share[s], "kept": s in voted}
        for s in sorted(counts)
    ]
    same = sum(1 for spans in answered if spans == set(voted))
    return {
        "label": to_json(voted),
        "status": VOTED,
        "agreement": same / len(answers),
        "spans": detail,
        "answered": len(answered),
    }


def vote(iterations: list[pd.DataFrame], items: pd.DataFrame, min_share: float) -> pd.DataFrame:
    """One row per item: the voted spans (``label``), agreement, per-span agreement, failures."""
    columns = [answers.tolist() for answers in iteration_answers(iterations, items["id"].tolist())]
    out = vote_frame(items)
    results = [vote_one([None if pd.isna(a) else a for a in row], min_share) for row in zip(*columns, strict=True)]
    out["label"] = [r["label"] for r in results]
    out["vote_status"] = [r["status"] for r in results]
    out["agreement"] = [r["agreement"] for r in results]
    out["span_agreement"] = [json.dumps(r["spans"]) for r in results]
    out["n_answered"] = [r["answered"] for r in results]
    out["n_failed"] = len(iterations) - out["n_answered"]
    out["n_iterations"] = len(iterations)
    return out


def vote_summary(votes: pd.DataFrame) -> dict[str, Any]:
    """What the report and a reader of stats.json look at: labelled items, spans kept per type."""
    details = [span for cell in votes["span_agreement"] for span in json.loads(cell)]
    kept = [span for span in details if span["kept"]]
    return {
        "items": len(votes),
        "labelled": int(votes["label"].notna().sum()),
        "all_failed": int((votes["vote_status"] == ALL_FAILED).sum()),
        "unanimous_share": float((votes["agreement"] == 1.0).mean()) if len(votes) else 0.0,
        "spans_kept": len(kept),
        "spans_kept_per_label": dict(sorted(Counter(span["label"] for span in kept).items())),
        "candidate_spans_dropped": len(details) - len(kept),
        "items_without_spans": int((votes["label"] == "[]").sum()),
    }


def _span_vote(
    iterations: list[pd.DataFrame], items: pd.DataFrame, labels: list[str], settings: dict[str, Any]
) -> Voted:
    """The vote job's files: votes (Parquet), the train split's voted spans as text,label CSV, stats.
    ``settings``: config vote, whose min_share it reads."""
    votes = vote(iterations, items, settings["min_share"])
    return Voted(votes, {"vote": vote_summary(votes), "min_share": settings["min_share"]})


write_votes = partial(vote_step, kind_vote=_span_vote)
