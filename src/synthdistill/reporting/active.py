"""The report's Active distillation section (annotate.strategy: active): per teacher × prompt and round,
what the teacher was paid for so far and how good the round's student was, and what the rounds saved
against labelling the whole train pool."""

from __future__ import annotations

from typing import Any

import pandas as pd

from synthdistill.metrics.costs import annotations_usd, break_even
from synthdistill.reporting.sections import Section, display_table, format_value


def _spent(row: pd.Series, costing: dict[str, Any]) -> float | None:
    """Dollars for the calls made up to this round (the rounds table's cumulative figures)."""
    totals = {key: row[key] for key in ("input_tokens", "output_tokens", "compute_s", "iterations")}
    return annotations_usd([{**totals, "answers": int(row["calls"])}], costing)


def rounds_frame(teachers: list[dict[str, Any]]) -> pd.DataFrame:
    """Every active labeller's rounds.csv, with its name and the dollars spent up to each round."""
    frames = []
    for entry in teachers:
        if not entry.get("active_rounds"):
            continue
        rounds = pd.read_csv(entry["active_rounds"])
        rounds.insert(0, "labeller", f"{entry['teacher']}/{entry['prompt']}")
        rounds["usd"] = [_spent(row, entry.get("costing") or {}) for _, row in rounds.iterrows()]
        frames.append(rounds)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def saved(rounds: pd.DataFrame) -> tuple[int, float | None]:
    """The calls labelling the rest of the train pool would have taken, and their dollars at this run's
    cost per call (None: not priced)."""
    last = rounds.iloc[-1]
    calls = int((last["pool_texts"] - last["texts"]) * last["iterations"])
    per_call = last["usd"] / last["calls"] if pd.notna(last["usd"]) and last["calls"] else None
    return calls, None if per_call is None else calls * per_call


def saving_line(rounds: pd.DataFrame) -> str:
    """What one labeller's rounds labelled, and the calls and dollars they did not spend."""
    last = rounds.iloc[-1]
    pool = int(last["pool_texts"])
    calls, usd = saved(rounds)
    saved_usd = f" (about ${format_value(usd)} at this run's cost per call)" if usd else ""
    stopped = "" if bool(last["trained"]) else f"; the rounds stopped after round {int(last['student_of_round'])}"
    return (
        f"{last['labeller']}: the teacher labelled {int(last['texts']):,} of the {pool:,} train texts "
        f"({last['texts'] / pool:.0%}) in {int(rounds['trained'].sum())} trained round(s){stopped}. Labelling "
        f"every train text would have taken {calls:,} more calls{saved_usd}. The students after the rounds "
        "learned from these texts, and the decision's break-even counts only what was paid."
    )


def break_even_lines(rounds: pd.DataFrame, breaks: pd.DataFrame) -> list[str]:
    """Per student of this labeller: its break-even, and where labelling the whole pool would have put it."""
    _, usd = saved(rounds)
    lines = []
    for _, row in breaks.loc[breaks["teacher_prompt"] == rounds.iloc[0]["labeller"]].iterrows():
        if usd is None or pd.isna(row["fixed_usd"]) or pd.isna(row["break_even_texts"]):
            continue
        per_text = [row[f"{who}_usd_per_1m_texts"] / 1e6 for who in ("teacher", "student")]
        whole = break_even(row["fixed_usd"] + usd, *per_text)["texts"]
        lines.append(
            f"{row['student']}: pays for itself after {int(row['break_even_texts']):,} texts; with every train "
            f"text labelled it would have after {whole:,}."
        )
    return lines


def active_section(*, teachers: list[dict[str, Any]], breaks: pd.DataFrame | None = None) -> Section | None:
    """The section, or None when no labeller ran active rounds; ``breaks`` (the break-even table) adds
    where each student would have broken even with the whole pool labelled."""
    rounds = rounds_frame(teachers)
    if rounds.empty:
        return None
    section = Section("Active distillation")
    section.text(
        "annotate.strategy active: the teacher labelled the train pool in rounds, round 0 a random seed set and "
        "each later round the texts the previous round's student was least sure of (active.query). Per round: "
        "train texts labelled so far, teacher calls and dollars spent so far (round 0's include the validation "
        "split, labelled once for every round's student), and the round's student's F1 macro against the "
        "teacher's labels on validation (what the stopping rule reads) and against the expert labels on test "
        "(reported only, never used to choose)."
    )
    for _, labeller in rounds.groupby("labeller", sort=False):
        section.text(saving_line(labeller))
        for line in break_even_lines(labeller, breaks) if breaks is not None and len(breaks) else []:
            section.text(line)
    shown = rounds.assign(
        student=[
            "trained" if trained else f"round {int(of)}'s"
            for trained, of in zip(rounds["trained"], rounds["student_of_round"], strict=True)
        ]
    )
    columns = {
        "labeller": "Labeller",
        "round": "Round",
        "texts": "Texts labelled",
        "pool_share": "Share of pool",
        "calls": "Calls so far",
        "usd": "$ so far",
        "validation_f1_macro": "F1 macro vs teacher (validation)",
        "test_f1_macro": "F1 macro vs experts (test)",
        "student": "Student",
    }
    section.table(display_table(shown, columns))
    return section
