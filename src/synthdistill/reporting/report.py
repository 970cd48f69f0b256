"""The decision report: keep calling the LLM teacher, or switch to the student?

Everything is read from the run's artifacts (vote stats, votes, metrics, student metadata, student
benchmarks, paired tests, Snakemake benchmark files); nothing is annotated, trained or measured
here, so regenerating the report is cheap. It is written as Markdown with PNG figures beside it,
as one self-contained HTML page (figures embedded), and as CSV tables.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.costs import break_even, student_cost_row, teacher_cost_row, training_cost
from synthdistill.names import EXPERT
from synthdistill.reporting import figures as report_figures
from synthdistill.run_facts import machine, stage_benchmarks, versions

FIGURES = ("quality", "agreement", "accuracy_by_agreement", "confusion", "pareto")
TABLES = ("quality", "label_quality", "teacher_cost", "student_cost", "break_even", "stages")


def _read_json(path: str | None) -> dict[str, Any] | None:
    return json.loads(Path(path).read_text()) if path else None


def _name(entry: dict[str, Any]) -> str:
    if "student" in entry:
        return f"{entry['student']}/{entry['teacher']}/{entry['prompt']}"
    return f"{entry['teacher']}/{entry['prompt']}"


def _kind(entry: dict[str, Any]) -> str:
    if "student" not in entry:
        return "teacher"
    return "expert baseline" if entry["teacher"] == EXPERT else "student"


def quality_table(teachers: list[dict[str, Any]], students: list[dict[str, Any]]) -> pd.DataFrame:
    """Accuracy and F1 macro with their intervals for every teacher × prompt and every student."""
    rows = []
    for entry in [*teachers, *students]:
        metrics = _read_json(entry.get("metrics"))
        if metrics is None:
            continue
        intervals = metrics["intervals"]
        rows.append(
            {
                "system": _name(entry),
                "kind": _kind(entry),
                "accuracy": metrics["accuracy"],
                "accuracy_low": intervals["accuracy"][0],
                "accuracy_high": intervals["accuracy"][1],
                "f1_macro": metrics["f1_macro"],
                "f1_macro_low": intervals["f1_macro"][0],
                "f1_macro_high": intervals["f1_macro"][1],
                "coverage": metrics["coverage"],
                "test_items": metrics["n"],
            }
        )
    return pd.DataFrame(rows)


def label_quality_table(teachers: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.Series]]:
    """Failures and agreement per teacher × prompt, and accuracy of unanimous against split votes.

    Accuracy by agreement uses every item with an expert label (all splits): the teacher never
    learns from them, so they are all fair ground for judging its labels.
    """
    rows, by_agreement, agreement = [], [], {}
    for entry in teachers:
        stats = _read_json(entry["stats"])
        votes = pd.read_parquet(entry["votes"])
        name = _name(entry)
        agreement[name] = votes["agreement"]
        unanimous = votes["agreement"] == 1.0
        annotation, vote = stats["annotation"], stats["vote"]
        row = {
            "teacher_prompt": name,
            "items": vote["items"],
            "answers": annotation["answers"],
            "parse_failures": annotation["parse_failures"],
            "request_errors": annotation["request_errors"],
            "failure_share": (annotation["parse_failures"] + annotation["request_errors"]) / annotation["answers"],
            "ties_abstained": vote["ties_abstained"],
            "all_failed": vote["all_failed"],
            "unanimous_share": float(unanimous.mean()),
        }
        if "expert_label" in votes and votes["expert_label"].notna().any():
            known = votes.loc[votes["expert_label"].notna()]
            # An abstained item (no label) counts as wrong, as in evaluation.
            correct = known["label"].astype(object).eq(known["expert_label"].astype(object))
            for group, mask in (("unanimous", known["agreement"] == 1.0), ("split", known["agreement"] < 1.0)):
                items = int(mask.sum())
                accuracy = float(correct[mask].mean()) if items else None
                row[f"accuracy_{group}"] = accuracy
                row[f"items_{group}"] = items
                by_agreement.append({"teacher_prompt": name, "agreement": group, "items": items, "accuracy": accuracy})
        rows.append(row)
    return pd.DataFrame(rows), pd.DataFrame(by_agreement), agreement


def teacher_cost_table(teachers: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"teacher_prompt": _name(e), **teacher_cost_row(_read_json(e["stats"]), e.get("price") or {})}
            for e in teachers
        ]
    )


def student_cost_table(students: list[dict[str, Any]], hardware: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for entry in students:
        meta = _read_json(entry["metadata"])
        benchmark = _read_json(entry["benchmark"])
        train_usd = training_cost(meta["train_seconds"], hardware)
        rows.append(
            {
                "student": _name(entry),
                "kind": _kind(entry),
                **student_cost_row(benchmark, hardware),
                "train_examples": meta["train_examples"],
                "train_seconds": meta["train_seconds"],
                "train_usd": train_usd,
            }
        )
    return pd.DataFrame(rows)


def break_even_table(
    students: list[dict[str, Any]], student_costs: pd.DataFrame, teacher_costs: pd.DataFrame
) -> pd.DataFrame:
    """For each student of a teacher: its fixed cost (that teacher's annotation + training) and break-even."""
    rows = []
    teachers = teacher_costs.set_index("teacher_prompt")
    costs = student_costs.set_index("student")
    for entry in students:
        if entry["teacher"] == EXPERT:
            continue  # the expert labels' cost is not known to the pipeline
        source = f"{entry['teacher']}/{entry['prompt']}"
        teacher, student = teachers.loc[source], costs.loc[_name(entry)]
        annotation_usd = float(teacher["cost_usd"])
        train_usd = student["train_usd"]
        fixed = None if pd.isna(train_usd) else annotation_usd + float(train_usd)
        student_per_text = None if pd.isna(student["usd_per_1m_texts"]) else student["usd_per_1m_texts"] / 1e6
        result = break_even(fixed, float(teacher["usd_per_1m_texts"]) / 1e6, student_per_text)
        rows.append(
            {
                "student": _name(entry),
                "teacher_prompt": source,
                "annotation_usd": annotation_usd,
                "train_usd": train_usd,
                "fixed_usd": fixed,
                "teacher_usd_per_1m_texts": float(teacher["usd_per_1m_texts"]),
                "student_usd_per_1m_texts": student["usd_per_1m_texts"],
                "break_even_texts": result["texts"],
                "how": result["note"],
            }
        )
    return pd.DataFrame(rows)


# --- rendering -------------------------------------------------------------------------------


def _format(value: Any, digits: int = 3) -> str:
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


def _interval(value: float, low: float, high: float) -> str:
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _display(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The chosen columns, renamed for readers, every number formatted one way."""
    shown = frame[list(columns)].rename(columns=columns)
    return shown.astype(object).map(_format)


@dataclass
class Section:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # ("text", str) ("table", df) ("figure", name)

    def text(self, value: str) -> Section:
        self.blocks.append(("text", value))
        return self

    def table(self, frame: pd.DataFrame) -> Section:
        self.blocks.append(("table", frame))
        return self

    def figure(self, name: str, alt: str) -> Section:
        self.blocks.append(("figure", (name, alt)))
        return self


def _markdown(title: str, intro: str, sections: list[Section], figure_dir: str) -> str:
    out = [f"# {title}", "", intro, ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for kind, value in section.blocks:
            if kind == "text":
                out += [value, ""]
            elif kind == "table":
                out += [value.to_markdown(index=False, disable_numparse=True) if len(value) else "(none)", ""]
            else:
                name, alt = value
                out += [f"![{alt}]({figure_dir}/{name}.png)", ""]
    return "\n".join(out)


def _html(title: str, intro: str, sections: list[Section], figures: dict[str, str]) -> str:
    page = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
        "img{max-width:100%;display:block;margin:1em 0}p.method{color:#555;font-size:90%}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(intro)}</p>",
    ]
    for section in sections:
        page.append(f"<h2>{html.escape(section.title)}</h2>")
        for kind, value in section.blocks:
            if kind == "text":
                page.append(f"<p>{html.escape(value)}</p>")
            elif kind == "table":
                page.append(value.to_html(index=False, escape=True) if len(value) else "<p>(none)</p>")
            else:
                name, alt = value
                data = base64.b64encode(Path(figures[name]).read_bytes()).decode()
                page.append(f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>")
    page.append("</body></html>")
    return "\n".join(page)


def _placeholder(path: str, message: str) -> None:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 1.5))
    axis.axis("off")
    axis.text(0.5, 0.5, message, ha="center", va="center")
    figure.savefig(path, dpi=report_figures.DPI)
    plt.close(figure)


def _decision(
    quality: pd.DataFrame, teacher_costs: pd.DataFrame, student_costs: pd.DataFrame, breaks: pd.DataFrame
) -> list[str]:
    """One plain sentence per student of a teacher: quality difference, cost ratio, break-even."""
    lines = []
    scores = quality.set_index("system") if len(quality) else None
    teachers = teacher_costs.set_index("teacher_prompt")
    for _, row in breaks.iterrows():
        parts = [f"{row['student']} (learned from {row['teacher_prompt']}):"]
        if scores is not None and row["student"] in scores.index and row["teacher_prompt"] in scores.index:
            diff = scores.loc[row["student"], "f1_macro"] - scores.loc[row["teacher_prompt"], "f1_macro"]
            parts.append(f"F1 macro {diff:+.3f} against its teacher;")
        student_usd = row["student_usd_per_1m_texts"]
        teacher_usd = teachers.loc[row["teacher_prompt"], "usd_per_1m_texts"]
        if student_usd is not None and not pd.isna(student_usd):
            parts.append(f"${_format(float(student_usd))} against ${_format(float(teacher_usd))} per 1M texts;")
        if row["break_even_texts"] is not None and not pd.isna(row["break_even_texts"]):
            parts.append(f"cheaper than the teacher after {int(row['break_even_texts']):,} texts.")
        else:
            parts.append(f"break-even: {row['how']}.")
        lines.append(" ".join(parts))
    return lines


def build(
    summary_path: str,
    teachers: list[dict[str, Any]],
    students: list[dict[str, Any]],
    evaluated: bool,
    hardware: dict[str, Any],
    outputs: dict[str, Any],
    paired_path: str | None = None,
    benchmarks_dir: str | None = None,
    config_hash: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Write the report's Markdown, HTML, figures and CSV tables; return the tables.

    ``outputs`` has ``markdown``, ``html``, ``figures`` (name -> PNG path) and ``tables``
    (name -> CSV path) for the names in FIGURES and TABLES.
    """
    summary = _read_json(summary_path)
    quality = quality_table(teachers, students) if evaluated else pd.DataFrame()
    label_quality, by_agreement, agreement = label_quality_table(teachers)
    teacher_costs = teacher_cost_table(teachers)
    student_costs = student_cost_table(students, hardware)
    breaks = break_even_table(students, student_costs, teacher_costs)
    stages = stage_benchmarks(benchmarks_dir) if benchmarks_dir and Path(benchmarks_dir).is_dir() else pd.DataFrame()
    tables = {
        "quality": quality,
        "label_quality": label_quality,
        "teacher_cost": teacher_costs,
        "student_cost": student_costs,
        "break_even": breaks,
        "stages": stages,
    }
    for name, frame in tables.items():
        frame.to_csv(outputs["tables"][name], index=False)

    figures = outputs["figures"]
    if evaluated and len(quality):
        report_figures.quality_bars(quality, figures["quality"])
        matrices = {
            _name(e): _read_json(e["metrics"])["confusion_matrix"] for e in [*teachers, *students] if e.get("metrics")
        }
        report_figures.confusion_matrices(matrices, figures["confusion"])
        report_figures.accuracy_by_agreement(by_agreement, figures["accuracy_by_agreement"])
    else:
        for name in ("quality", "confusion", "accuracy_by_agreement"):
            _placeholder(figures[name], "not evaluated: the dataset has no expert labels")
    report_figures.agreement_histogram(agreement, figures["agreement"])
    points = pd.concat(
        [
            pd.DataFrame(
                {
                    "system": teacher_costs["teacher_prompt"],
                    "kind": "teacher",
                    "cost": teacher_costs["usd_per_1m_texts"],
                }
            ),
            pd.DataFrame(
                {
                    "system": student_costs["student"],
                    "kind": student_costs["kind"],
                    "cost": student_costs["usd_per_1m_texts"],
                }
            ),
        ],
        ignore_index=True,
    ).rename(columns={"cost": "usd_per_1m_texts"})
    if len(quality):
        points = points.merge(quality[["system", "f1_macro"]], on="system", how="left")
    else:
        points["f1_macro"] = None
    points["usd_per_1m_texts"] = pd.to_numeric(points["usd_per_1m_texts"], errors="coerce")
    points["f1_macro"] = pd.to_numeric(points["f1_macro"], errors="coerce")
    report_figures.pareto(points, figures["pareto"])

    sections = _sections(
        summary, evaluated, hardware, tables, paired_path, config_hash, students, breaks, quality, teacher_costs
    )
    title = "synthdistill decision report: keep calling the LLM, or switch to the student?"
    intro = (
        "Scores are on the frozen expert test split (an abstained item counts as wrong); 95% intervals by bootstrap."
        if evaluated
        else "Evaluation skipped: the dataset has no expert labels (dataset.label_column is null)."
    )
    figure_dir = Path(figures["quality"]).parent.relative_to(Path(outputs["markdown"]).parent).as_posix()
    Path(outputs["markdown"]).write_text(_markdown(title, intro, sections, figure_dir))
    Path(outputs["html"]).write_text(_html(title, intro, sections, figures))
    return tables


def _sections(
    summary, evaluated, hardware, tables, paired_path, config_hash, students, breaks, quality, teacher_costs
) -> list[Section]:
    sections = []
    decision = Section("Decision")
    for line in _decision(quality, teacher_costs, tables["student_cost"], breaks):
        decision.text(line)
    decision.text(
        "Break-even: the student's fixed cost is its teacher's annotation of the whole dataset (the tokens "
        "the API reported × the price table) plus its training time × the student hardware's price per hour; "
        "after that it costs its measured best-batch time × the price per hour per text. "
        "The expert-label baseline has no break-even: the pipeline does not know what expert labels cost."
    )
    decision.figure("pareto", "cost per 1M texts against F1 macro")
    decision.table(
        _display(
            breaks,
            {
                "student": "student",
                "teacher_prompt": "teacher / prompt",
                "annotation_usd": "annotation $",
                "train_usd": "training $",
                "teacher_usd_per_1m_texts": "teacher $ / 1M texts",
                "student_usd_per_1m_texts": "student $ / 1M texts",
                "break_even_texts": "break-even (texts)",
                "how": "how",
            },
        )
        if len(breaks)
        else breaks
    )
    sections.append(decision)

    if evaluated and len(quality):
        shown = pd.DataFrame(
            {
                "system": quality["system"],
                "kind": quality["kind"],
                "accuracy [95% CI]": [
                    _interval(r.accuracy, r.accuracy_low, r.accuracy_high) for r in quality.itertuples()
                ],
                "F1 macro [95% CI]": [
                    _interval(r.f1_macro, r.f1_macro_low, r.f1_macro_high) for r in quality.itertuples()
                ],
                "coverage": quality["coverage"].map(_format),
                "test items": quality["test_items"].map(_format),
            }
        )
        section = Section("Quality").text(
            "Accuracy and F1 macro on the frozen expert test split, with 95% bootstrap intervals. "
            "The expert baseline, the student trained on expert labels (upper bound), shows what distillation "
            "could reach with perfect labels."
        )
        section.table(shown).figure("quality", "accuracy and F1 macro per system")
        if paired_path and Path(paired_path).exists():
            paired = pd.read_csv(paired_path)
            section.text(
                "Paired tests on the same test items: exact McNemar p-value and the paired-bootstrap 95% "
                "interval of the F1 macro difference (a − b)."
            )
            section.table(
                _display(
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
        sections.append(section)
    else:
        sections.append(Section("Quality").text("Not evaluated: the dataset has no expert labels."))

    label = Section("Label quality").text(
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
    if "accuracy_unanimous" in tables["label_quality"]:
        columns.update(
            {
                "accuracy_unanimous": "accuracy (unanimous)",
                "items_unanimous": "items (unanimous)",
                "accuracy_split": "accuracy (split)",
                "items_split": "items (split)",
            }
        )
    label.table(_display(tables["label_quality"], columns))
    label.figure("agreement", "agreement histogram")
    if evaluated:
        label.figure("accuracy_by_agreement", "accuracy by agreement level")
        label.figure("confusion", "confusion matrices")
    sections.append(label)

    teacher = Section("Teacher cost").text(
        "Per teacher × prompt: the input and output tokens the API reported over every self-consistency "
        "iteration (chain-of-thought output included), the latency of one call, and dollars per 1M texts "
        "= (input tokens × input price + output tokens × output price) / texts × 1M. The price table is "
        "`teachers.<name>.price` in the config. A batch teacher (`openai_batch`, `anthropic_batch`) is charged "
        "at batch prices (the table's batch prices, else the real-time prices less `batch_discount`, 50% by "
        "default); the pricing column says which prices were used and the next column what the same tokens "
        "cost at real-time prices."
    )
    shown = _display(
        tables["teacher_cost"],
        {
            "teacher_prompt": "teacher / prompt",
            "texts": "texts",
            "iterations": "iterations",
            "calls": "calls",
            "input_tokens": "input tokens",
            "output_tokens": "output tokens",
            "output_tokens_per_text": "output tokens / text",
            "latency_p50_s": "latency p50 (s)",
            "latency_p95_s": "latency p95 (s)",
            "pricing": "pricing",
            "cost_usd": "spent $",
            "cost_usd_at_real_time_prices": "$ at real-time prices",
            "usd_per_1m_texts": "$ / 1M texts",
            "method": "method",
        },
    )
    # Small sums keep 4 significant digits: cents matter at a few thousand calls.
    shown["spent $"] = tables["teacher_cost"]["cost_usd"].map(lambda v: f"{v:.4g}")
    teacher.table(shown)
    sections.append(teacher)

    costs = tables["student_cost"]
    preset = f" (preset `{hardware['preset']}`)" if hardware.get("preset") else ""
    student = Section("Student cost").text(
        f"Student hardware{preset}: {hardware.get('name') or 'unnamed'}; price "
        f"{_format(hardware.get('price_per_hour_usd'))} $/h, power {_format(hardware.get('power_w'))} W, grid "
        f"{_format(hardware.get('grid_kg_co2_per_kwh'))} kg CO2/kWh (`costs.student_hardware`; the preset "
        "`t4_reference` holds the reference case's assumptions: T4 at $0.6/h, 70 W, 0.37 kg CO2/kWh). "
        "Latency is one text at a time (batch 1); throughput is end to end from text at the best of the "
        "benchmarked batch sizes; both measured by the benchmark_student rule with the serving path "
        "(load_predictor)."
    )
    if len(costs):
        devices = ", ".join(sorted(set(costs["device"])))
        student.text(
            f"Speed was measured on {devices}; dollars and power are those configured for "
            f"{hardware.get('name') or 'the student hardware'}. Where the two differ, the figures say what that "
            "hardware would cost running at the speed measured here, not what it would achieve itself."
        )
    student.table(
        _display(
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
    methods = costs[["student", "cost_method", "energy_method", "co2_method"]] if len(costs) else costs
    student.text("How each number was obtained:")
    student.table(
        methods.rename(
            columns={"cost_method": "$ method", "energy_method": "energy method", "co2_method": "CO2 method"}
        )
    )
    sections.append(student)

    facts = Section("Run facts")
    facts.text(f"config sha256: {config_hash or '–'}")
    facts.text(
        "data: "
        + ", ".join(f"{split} {count}" for split, count in summary["per_split"].items())
        + f" items; {summary['rows_dropped']} rows dropped"
    )
    report_machine = machine()
    bench = _read_json(students[0]["benchmark"])["machine"] if students else None
    for label_, facts_ in (("report machine", report_machine), ("student benchmark machine", bench)):
        if facts_:
            facts.text(
                f"{label_}: {facts_['cpu']}, {facts_['cpu_cores']} cores, {facts_.get('memory_gb')} GB RAM, "
                f"GPU {facts_.get('gpu') or 'none'}; {facts_['platform']}, Python {facts_['python']}"
            )
    facts.text("libraries: " + ", ".join(f"{k} {v}" for k, v in versions().items() if v))
    facts.text("Wall time and peak resident memory per stage, from Snakemake's benchmark files:")
    facts.table(
        _display(
            tables["stages"],
            {
                "rule": "rule",
                "jobs": "jobs",
                "wall_s_total": "wall time, all jobs (s)",
                "wall_s_max": "longest job (s)",
                "peak_rss_mb": "peak memory (MB)",
            },
        )
        if len(tables["stages"])
        else tables["stages"]
    )
    sections.append(facts)
    return sections
