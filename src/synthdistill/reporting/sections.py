"""The report's sections: one function per section, each taking only what it shows (keyword arguments).

A section is a title and a list of blocks (text, table, figure) that render.py turns into Markdown
and HTML alike; numbers are formatted here, once, so both outputs show the same digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


def format_value(value: Any, digits: int = 3) -> str:
    """One way of showing every number in the report's tables and sentences."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.{digits}g}" if abs(value) < 100 else f"{value:.1f}"
        return f"{value:.{digits}f}" if abs(value) >= 0.01 else f"{value:.3g}"
    return str(value)


def score_with_interval(value: float, interval: Sequence[float] | None) -> str:
    """A score with its 95% interval, as every kind's report shows it; an expectation has no interval."""
    if interval is None:
        return f"{value:.3f}"
    low, high = interval
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _interval(value: float, low: float, high: float) -> str:
    return score_with_interval(value, None if _missing(low) or _missing(high) else (low, high))


def _interval_column(frame: pd.DataFrame, metric: str) -> list[str]:
    """A metric with its interval per row, from the ``metric``, ``metric_low``, ``metric_high`` columns."""
    return [_interval(*row) for row in frame[[metric, f"{metric}_low", f"{metric}_high"]].itertuples(index=False)]


def _scored_table(
    frame: pd.DataFrame, names: dict[str, str], scores: dict[str, str], counts: dict[str, str]
) -> pd.DataFrame:
    """Columns (each dict: column -> header) as they are, then scores with intervals, then counts formatted."""
    return pd.DataFrame(
        {
            **{header: frame[column] for column, header in names.items()},
            **{header: _interval_column(frame, metric) for metric, header in scores.items()},
            **{header: frame[column].map(format_value) for column, header in counts.items()},
        }
    )


def display_table(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The chosen columns, renamed for readers, every number formatted one way."""
    shown = frame[list(columns)].rename(columns=columns)
    return shown.astype(object).map(format_value)


@dataclass
class Section:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # ("text", str) ("table", df) ("figure", (name, alt))

    def text(self, value: str) -> Section:
        self.blocks.append(("text", value))
        return self

    def table(self, frame: pd.DataFrame) -> Section:
        self.blocks.append(("table", frame))
        return self

    def figure(self, name: str, alt: str) -> Section:
        self.blocks.append(("figure", (name, alt)))
        return self


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _flag(value: Any) -> bool | None:
    """A yes/no column's value as a bool, None where it is unknown (None or NaN)."""
    return None if _missing(value) else bool(value)


def decision_lines(*, quality: pd.DataFrame, teacher_costs: pd.DataFrame, breaks: pd.DataFrame) -> list[str]:
    """One plain sentence per student of a teacher: quality difference, cost ratio, break-even."""
    lines = []
    scores = quality.set_index("system") if len(quality) else None
    teachers = teacher_costs.set_index("teacher_prompt")
    for _, row in breaks.iterrows():
        parts = [f"{row['student']} (learned from {row['teacher_prompt']}):"]
        if scores is not None and row["student"] in scores.index and row["teacher_prompt"] in scores.index:
            diff = scores.loc[row["student"], "f1_macro"] - scores.loc[row["teacher_prompt"], "f1_macro"]
            parts.append(f"F1 macro {diff:+.3f} against its teacher;")
            student = scores.loc[row["student"]]
            if _flag(student.get("collapsed")):
                parts.append(f"COLLAPSED ({student['validation_top_share']:.0%} of validation answers one class);")
            if _flag(student.get("beats_majority")) is False:
                parts.append("no better than always answering the majority class;")
        student_usd = row["student_usd_per_1m_texts"]
        teacher_usd = teachers.loc[row["teacher_prompt"], "usd_per_1m_texts"]
        teacher_co2 = teachers.loc[row["teacher_prompt"], "kg_co2_per_1m_texts"]
        if teacher_usd is None or pd.isna(teacher_usd):
            parts.append("the teacher's $ per 1M texts is not estimated;")
        elif student_usd is not None and not pd.isna(student_usd):
            parts.append(
                f"${format_value(float(student_usd))} against ${format_value(float(teacher_usd))} per 1M texts;"
            )
        student_co2 = row.get("student_kg_co2_per_1m_texts")
        if not _missing(teacher_co2) and not _missing(student_co2):
            parts.append(
                f"{format_value(float(student_co2))} against {format_value(float(teacher_co2))} kg CO2 per 1M texts;"
            )
        if row["break_even_texts"] is not None and not pd.isna(row["break_even_texts"]):
            parts.append(f"cheaper than the teacher after {int(row['break_even_texts']):,} texts.")
        else:
            parts.append(f"break-even: {row['how']}.")
        lines.append(" ".join(parts))
    return lines


BREAK_EVEN_TEXT = (
    "Break-even: the student's fixed cost is its teacher's annotation of the whole dataset (an API "
    "teacher's reported tokens × its price table, a self-hosted teacher's measured busy time × its "
    "hardware's price per hour; see Teacher cost) plus its training time × the student hardware's price "
    "per hour; after that it costs its measured best-batch time × the price per hour per text. "
    "A teacher whose cost is not estimated has no break-even. "
    "The expert-label baseline has no break-even: the pipeline does not know what expert labels cost."
)


def _break_even_display(breaks: pd.DataFrame) -> pd.DataFrame:
    if not len(breaks):
        return breaks
    return display_table(
        breaks,
        {
            "student": "student",
            "teacher_prompt": "teacher / prompt",
            "annotation_usd": "annotation $",
            "train_usd": "training $",
            "teacher_usd_per_1m_texts": "teacher $ / 1M texts",
            "student_usd_per_1m_texts": "student $ / 1M texts",
            "teacher_kg_co2_per_1m_texts": "teacher kg CO2 / 1M texts",
            "student_kg_co2_per_1m_texts": "student kg CO2 / 1M texts",
            "break_even_texts": "break-even (texts)",
            "how": "how",
        },
    )


def decision_section(*, quality: pd.DataFrame, teacher_costs: pd.DataFrame, breaks: pd.DataFrame) -> Section:
    section = Section("Decision")
    for line in decision_lines(quality=quality, teacher_costs=teacher_costs, breaks=breaks):
        section.text(line)
    section.text(BREAK_EVEN_TEXT)
    section.figure("pareto", "cost per 1M texts against F1 macro")
    return section.table(_break_even_display(breaks))


def break_even_section(*, teacher_costs: pd.DataFrame, breaks: pd.DataFrame) -> Section:
    """Each student's cost against its teacher's and when it pays off, for a kind whose report has no
    single-label quality table to weigh it against (its quality is in its own section)."""
    section = Section("Break-even")
    for line in decision_lines(quality=pd.DataFrame(), teacher_costs=teacher_costs, breaks=breaks):
        section.text(line)
    section.text(BREAK_EVEN_TEXT)
    return section.table(_break_even_display(breaks))


def quality_flags(quality: pd.DataFrame) -> list[str]:
    """Sentences naming every system that does not beat the majority class and every collapsed student."""
    lines = []
    majority = quality.loc[quality["system"].str.startswith("baseline: majority")]
    if len(majority) and "beats_majority" in quality:
        row = majority.iloc[0]
        lines.append(
            f"Trivial baselines on the same test split: always answering the train pool's majority class "
            f"({row['system'].split('(', 1)[-1].rstrip(')')}) scores accuracy {row['accuracy']:.3f}, F1 macro "
            f"{row['f1_macro']:.3f}; answering at random with the train pool's label shares is expected to score "
            "the prior-random row (accuracy = Σ p_train(c) · p_test(c))."
        )
        losers = quality.loc[quality["beats_majority"].eq(False), "system"].tolist()
        if losers:
            lines.append(
                "Not better than always answering the majority class (accuracy at or below it): "
                + ", ".join(losers)
                + "."
            )
    if "collapsed" in quality:
        for row in quality.loc[quality["collapsed"].eq(True)].itertuples():
            lines.append(
                f"Collapsed: {row.system} answers {row.validation_top_label!r} for "
                f"{row.validation_top_share:.0%} of the validation split (more than 95%): it has learned one class."
            )
    return lines


def quality_section(*, quality: pd.DataFrame, evaluated: bool, paired_path: str | None = None) -> Section:
    if not (evaluated and len(quality)):
        return Section("Quality").text("Not evaluated: the dataset has no expert labels.")
    shown = _scored_table(
        quality,
        {"system": "system", "kind": "kind"},
        {"accuracy": "accuracy [95% CI]", "f1_macro": "F1 macro [95% CI]"},
        {"coverage": "coverage", "test_items": "test items"},
    )
    if "beats_majority" in quality:
        shown["beats majority"] = [
            "–" if kind == "baseline" or _missing(beats) else ("yes" if beats else "NO")
            for kind, beats in zip(quality["kind"], quality["beats_majority"], strict=True)
        ]
    if "collapsed" in quality:
        shown["collapsed"] = [
            "–" if _missing(flag) or flag is None else ("YES" if flag else "no") for flag in quality["collapsed"]
        ]
    section = Section("Quality").text(
        "Accuracy and F1 macro on the frozen expert test split, with 95% bootstrap intervals. "
        "The expert baseline, the student trained on expert labels (upper bound), shows what distillation "
        "could reach with perfect labels."
    )
    for line in quality_flags(quality):
        section.text(line)
    section.table(shown).figure("quality", "accuracy and F1 macro per system")
    if paired_path and Path(paired_path).exists():
        paired = pd.read_csv(paired_path)
        section.text(
            "Paired tests on the same test items: exact McNemar p-value and the paired-bootstrap 95% "
            "interval of the F1 macro difference (a − b)."
        )
        section.table(
            display_table(
                paired,
                {
                    "a": "a",
                    "b": "b",
                    "accuracy_a": "accuracy a",
                    "accuracy_b": "accuracy b",
                    "only_a_right": "only a right",
                    "only_b_right": "only b right",
                    "mcnemar_p": "McNemar p",
                    "f1_diff_low": "F1 diff low",
                    "f1_diff_high": "F1 diff high",
                },
            )
        )
    return section


def selection_section(*, choice: dict[str, Any], ranking: pd.DataFrame, learn_from_best: bool) -> Section:
    """The labeller ranking on the gold dev split and what was chosen (select_labeller)."""
    best = choice["labeller"]
    lines = [
        f"Labellers ranked on the {choice['ranked_on']} (95% bootstrap intervals); "
        "the test split plays no part in the choice. "
        f"Ranked first: {best}."
    ]
    runner = choice.get("versus_runner_up")
    if runner:
        low, high = runner["f1_macro_difference_interval"]
        lines.append(
            f"Against the runner-up {runner['runner_up']} on the same gold dev items: F1 macro difference "
            f"[{format_value(low)}, {format_value(high)}], McNemar p {format_value(runner['mcnemar_p'])}."
        )
    if learn_from_best:
        lines.append(
            f"students_learn_from: best: the students named */best/on_gold_dev learned from {best}'s labels; "
            "their break-even counts only its annotation, not that of the labellers ranked here."
        )
    section = Section("Labeller selection").text(" ".join(lines))
    shown = _scored_table(
        ranking,
        {"rank": "rank", "labeller": "labeller"},
        {"f1_macro": "F1 macro [95% CI]", "accuracy": "accuracy [95% CI]"},
        {"coverage": "coverage", "n": "gold dev items"},
    )
    return section.table(shown)


def label_quality_section(*, label_quality: pd.DataFrame, evaluated: bool) -> Section:
    section = Section("Label quality").text(
        "Agreement is the winning label's votes over all self-consistency iterations (failures count "
        "against it). Accuracy by agreement compares the voted label with the expert label on every item "
        "that has one (all splits; the teacher learns from none of them); an abstained item counts as wrong."
    )
    columns = {
        "teacher_prompt": "teacher / prompt",
        "items": "items",
        "answers": "answers",
        "parse_failures": "parse failures",
        "request_errors": "request errors",
        "failure_share": "failure share",
        "ties_abstained": "ties abstained",
        "all_failed": "all failed",
        "unanimous_share": "unanimous share",
    }
    if "accuracy_unanimous" in label_quality:
        columns.update(
            {
                "accuracy_unanimous": "accuracy (unanimous)",
                "items_unanimous": "items (unanimous)",
                "accuracy_split": "accuracy (split)",
                "items_split": "items (split)",
            }
        )
    section.table(display_table(label_quality, columns))
    section.figure("agreement", "agreement histogram")
    if evaluated:
        section.figure("accuracy_by_agreement", "accuracy by agreement level")
        section.figure("confusion", "confusion matrices")
    return section


def teacher_cost_section(*, teacher_costs: pd.DataFrame) -> Section:
    section = Section("Teacher cost").text(
        "Per teacher × prompt, over every self-consistency iteration: the tokens reported, the latency of one "
        "call, and dollars, energy and CO2 per 1M texts. An API teacher is charged its tokens × its price table "
        "(`teachers.<name>.price`; a batch backend at batch prices, the table's or the real-time prices less "
        "`batch_discount`, 50% by default); its energy is an estimate from `energy_wh_per_1k_tokens` when one is "
        "given, as no API reports energy. A self-hosted teacher (`llama_cpp`, `transformers`, or "
        "`self_hosted: true` on a server of your own) is charged its measured busy time × its hardware's price "
        "per hour and power (`costs.teacher_hardware`, `teachers.<name>.hardware`). Busy time is measured when "
        "each answer is paid for and stored with it in the response cache, so a rerun from the cache reports "
        "the same figure; with several requests in flight each gets an equal share of the time they overlap, "
        "so concurrent requests are not counted twice. CO2 is energy × the hardware's grid intensity. A figure "
        "that cannot be estimated is shown as – with the reason, never as 0."
    )
    shown = display_table(
        teacher_costs,
        {
            "teacher_prompt": "teacher / prompt",
            "texts": "texts",
            "iterations": "iterations",
            "calls": "calls",
            "input_tokens": "input tokens",
            "output_tokens": "output tokens",
            "output_tokens_per_text": "output tokens / text",
            "latency_p50_s": "latency p50 (s)",
            "compute_s_per_text": "busy s / text",
            "pricing": "pricing",
            "cost_usd": "spent $",
            "cost_usd_at_real_time_prices": "$ at real-time prices",
            "usd_per_1m_texts": "$ / 1M texts",
            "kwh_per_1m_texts": "kWh / 1M texts",
            "kg_co2_per_1m_texts": "kg CO2 / 1M texts",
        },
    )
    # Small sums keep 4 significant digits: cents matter at a few thousand calls.
    for column, source in (("spent $", "cost_usd"), ("$ at real-time prices", "cost_usd_at_real_time_prices")):
        shown[column] = teacher_costs[source].map(lambda v: "–" if v is None or pd.isna(v) else f"{v:.4g}")
    section.table(shown)
    section.text("How each number was obtained:")
    return section.table(_methods(teacher_costs, {"teacher_prompt": "teacher / prompt", "method": "$ method"}))


def _methods(costs: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """How each cost figure was obtained: the ``names`` columns (system and $ method) and the energy and
    CO2 methods, renamed for readers; an empty table as it is."""
    columns = {**names, "energy_method": "energy method", "co2_method": "CO2 method"}
    return (costs[list(columns)] if len(costs) else costs).rename(columns=columns)


def student_cost_section(*, student_costs: pd.DataFrame, hardware: dict[str, Any]) -> Section:
    costs = student_costs
    preset = f" (preset `{hardware['preset']}`)" if hardware.get("preset") else ""
    section = Section("Student cost").text(
        f"Student hardware{preset}: {hardware.get('name') or 'unnamed'}; price "
        f"{format_value(hardware.get('price_per_hour_usd'))} $/h, power {format_value(hardware.get('power_w'))} W, "
        f"grid {format_value(hardware.get('grid_kg_co2_per_kwh'))} kg CO2/kWh (`costs.student_hardware`; the preset "
        "`t4_reference` holds the reference case's assumptions: T4 at $0.6/h, 70 W, 0.37 kg CO2/kWh). "
        "Latency is one text at a time (batch 1); throughput is end to end from text at the best of the "
        "benchmarked batch sizes; both measured by the benchmark_student rule with the serving path "
        "(load_predictor)."
    )
    if len(costs):
        devices = ", ".join(sorted(set(costs["device"])))
        section.text(
            f"Speed was measured on {devices}; dollars and power are those configured for "
            f"{hardware.get('name') or 'the student hardware'}. Where the two differ, the figures say what that "
            "hardware would cost running at the speed measured here, not what it would achieve itself."
        )
    section.table(
        display_table(
            costs,
            {
                "student": "student",
                "backend": "backend",
                "device": "device",
                "latency_batch1_p50_ms": "latency p50 (ms, batch 1)",
                "latency_batch1_p95_ms": "latency p95 (ms, batch 1)",
                "throughput_texts_per_s": "texts/s (best batch)",
                "best_batch_size": "best batch",
                "usd_per_1m_texts": "$ / 1M texts",
                "kwh_per_1m_texts": "kWh / 1M texts",
                "kg_co2_per_1m_texts": "kg CO2 / 1M texts",
                "train_seconds": "training (s)",
                "train_usd": "training $",
            },
        )
    )
    section.text("How each number was obtained:")
    return section.table(_methods(costs, {"student": "student", "cost_method": "$ method"}))


@dataclass
class RunFacts:
    """What the run-facts section reports besides the stage table."""

    config_hash: str | None
    per_split: dict[str, int]
    rows_dropped: int
    report_machine: dict[str, Any] | None
    benchmark_machine: dict[str, Any] | None
    versions: dict[str, str | None]


def run_facts_section(*, facts: RunFacts, stages: pd.DataFrame) -> Section:
    section = Section("Run facts")
    section.text(f"config sha256: {facts.config_hash or '–'}")
    section.text(
        "data: "
        + ", ".join(f"{split} {count}" for split, count in facts.per_split.items())
        + f" items; {facts.rows_dropped} rows dropped"
    )
    for label, where in (
        ("report machine", facts.report_machine),
        ("student benchmark machine", facts.benchmark_machine),
    ):
        if where:
            section.text(
                f"{label}: {where['cpu']}, {where['cpu_cores']} cores, {where.get('memory_gb')} GB RAM, "
                f"GPU {where.get('gpu') or 'none'}; {where['platform']}, Python {where['python']}"
            )
    section.text("libraries: " + ", ".join(f"{k} {v}" for k, v in facts.versions.items() if v))
    section.text("Wall time and peak resident memory per stage, from Snakemake's benchmark files:")
    section.table(
        display_table(
            stages,
            {
                "rule": "rule",
                "jobs": "jobs",
                "wall_s_total": "wall time, all jobs (s)",
                "wall_s_max": "longest job (s)",
                "peak_rss_mb": "peak memory (MB)",
            },
        )
        if len(stages)
        else stages
    )
    return section


def _scored(frame: pd.DataFrame, system: str, metric: str) -> list[str]:
    return [
        "–"
        if pd.isna(r[f"{system}_{metric}"])
        else _interval(r[f"{system}_{metric}"], r[f"{system}_{metric}_low"], r[f"{system}_{metric}_high"])
        for _, r in frame.iterrows()
    ]


def cascade_section(*, cascades: pd.DataFrame) -> Section:
    section = Section("Cascade").text(
        "The student answers a text when its confidence (`cascade.confidence`, after temperature scaling "
        "fitted on the validation split against the teacher's labels) reaches the threshold, and the "
        "teacher answers the rest. The threshold is chosen on the validation split only (`cascade.target`); "
        "the frozen expert test split only measures it. Deferred test items take the label the teacher gave "
        "them in this run, so scoring the cascade made no new LLM call. Cost per 1M texts = the student on "
        "every text + the teacher on the deferred share of the test texts."
    )
    if not len(cascades):
        return section.text("No cascade in this run (every student learned from expert labels).")
    for _, row in cascades.iterrows():
        section.text(f"{row['cascade']}: **{row['decision']}**: {row['why']}.")
    section.figure("cascade", "cascade quality against cost for every threshold")
    section.text("Operating point, chosen on the validation split:")
    point = display_table(
        cascades,
        {
            "cascade": "cascade",
            "confidence": "confidence",
            "temperature": "temperature",
            "threshold": "threshold",
            "target": "target",
            "validation_deferred_share": "deferred (validation)",
            "validation_agreement": "agreement with teacher (validation)",
            "test_deferred_share": "deferred (test)",
            "test_agreement": "agreement with teacher (test)",
        },
    )
    # Thresholds differ in the third decimal (1.001 defers everything): more digits than elsewhere.
    point["threshold"] = cascades["threshold"].map(lambda v: f"{v:.4f}")
    section.table(point)
    if cascades["test_items"].notna().any():
        section.text(
            "On the frozen expert test split, with 95% bootstrap intervals; the paired test compares the "
            "cascade with the teacher on the same items (exact McNemar p, paired-bootstrap interval of the F1 "
            "macro difference cascade − teacher)."
        )
        quality = pd.DataFrame(
            {
                "cascade": cascades["cascade"],
                "student F1 macro": _scored(cascades, "student", "f1_macro"),
                "cascade F1 macro": _scored(cascades, "cascade", "f1_macro"),
                "teacher F1 macro": _scored(cascades, "teacher", "f1_macro"),
                "cascade accuracy": _scored(cascades, "cascade", "accuracy"),
                "McNemar p (cascade vs teacher)": cascades["cascade_vs_teacher_mcnemar_p"].map(format_value),
                "F1 diff low": cascades["cascade_vs_teacher_f1_diff_low"].map(format_value),
                "F1 diff high": cascades["cascade_vs_teacher_f1_diff_high"].map(format_value),
            }
        )
        section.table(quality)
    section.text("Cost per 1M texts (– where a price or an energy estimate is missing on either side):")
    section.table(
        display_table(
            cascades,
            {
                "cascade": "cascade",
                "student_usd_per_1m_texts": "student $",
                "cascade_usd_per_1m_texts": "cascade $",
                "teacher_usd_per_1m_texts": "teacher $",
                "student_kg_co2_per_1m_texts": "student kg CO2",
                "cascade_kg_co2_per_1m_texts": "cascade kg CO2",
                "teacher_kg_co2_per_1m_texts": "teacher kg CO2",
            },
        )
    )
    return section
