"""The report's matplotlib figures, written as PNG files (the HTML embeds them)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg")  # no display on a cluster node or in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TEACHER_COLOR, STUDENT_COLOR, EXPERT_COLOR = "#d95f02", "#1b9e77", "#7570b3"
DPI = 120
Draw = TypeVar("Draw", bound=Callable[..., None])


def plain_text(draw: Draw) -> Draw:
    """Run a figure function with mathtext and usetex off. Labels and names are the user's text: a '$'
    would start matplotlib's mathtext (labels "$", "$$" or "under $5^$ deal" raise ValueError when the
    figure is drawn) and usetex would hand them to LaTeX. A text reads these settings when it is
    created, so every text of the figure is drawn exactly as written."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        with plt.rc_context({"text.parse_math": False, "text.usetex": False}):
            draw(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _save(figure, path: str | Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def _grouped_bars(values: dict[str, list[float]], ticks: list[str]) -> tuple[Any, Any, list[Any]]:
    """A figure with one bar per name side by side at each tick (the group 0.8 wide); the bars by name."""
    x = np.arange(len(ticks))
    width = 0.8 / max(1, len(values))
    figure, axis = plt.subplots(figsize=(7, 4.2))
    bars = [axis.bar(x - 0.4 + width * (i + 0.5), v, width, label=name) for i, (name, v) in enumerate(values.items())]
    axis.set_xticks(x, ticks)
    return figure, axis, bars


def _save_grouped_bars(figure: Any, axis: Any, path: str | Path, ylabel: str, title: str) -> None:
    """The y label, title, legend and grid lines of a grouped-bar figure, then its file."""
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    _save(figure, path)


def _panels(count: int, most_columns: int, size: tuple[float, float], used: int) -> tuple[Any, np.ndarray]:
    """A figure of ``count`` panels of ``size`` inches, at most ``most_columns`` to a row; the panels
    after the first ``used`` (the last row's spare places) hidden."""
    columns = min(most_columns, count)
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False)
    for axis in list(axes.flat)[used:]:
        axis.axis("off")
    return figure, axes


def _color(kind: str) -> str:
    return {"teacher": TEACHER_COLOR, "student": STUDENT_COLOR, "expert baseline": EXPERT_COLOR}[kind]


@plain_text
def quality_bars(quality: pd.DataFrame, path: str | Path) -> None:
    """Accuracy and F1 macro with their intervals, teachers and students side by side; the majority-class
    baseline's accuracy as a dashed line."""
    baselines = quality.loc[quality["kind"] == "baseline"]
    quality = quality.loc[quality["kind"] != "baseline"]
    names = quality["system"].tolist()
    x = np.arange(len(names))
    width = 0.38
    figure, axis = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2), 4.8))
    for offset, metric, hatch in ((-width / 2, "accuracy", ""), (width / 2, "f1_macro", "//")):
        values = quality[metric].astype(float).to_numpy()
        low = values - quality[f"{metric}_low"].astype(float).to_numpy()
        high = quality[f"{metric}_high"].astype(float).to_numpy() - values
        axis.bar(
            x + offset,
            values,
            width,
            yerr=[low, high],
            capsize=3,
            color=[_color(kind) for kind in quality["kind"]],
            hatch=hatch,
            edgecolor="white",
        )
        # The value above its interval, where no bar or whisker can hide it.
        for xi, value, top in zip(x + offset, values, values + high, strict=True):
            axis.text(xi, top + 0.015, f"{value:.2f}", ha="center", va="bottom", fontsize=7)
    axis.set_xticks(x, names, rotation=25, ha="right", fontsize=9)
    axis.set_ylim(0, 1.1)
    axis.set_ylabel("score on the expert test split (0–1)")
    axis.set_title("Quality: accuracy (plain) and F1 macro (hatched), 95% bootstrap intervals")
    handles: list[Any] = [
        plt.Rectangle((0, 0), 1, 1, color=_color(kind), label=kind)
        for kind in ("teacher", "student", "expert baseline")
        if kind in set(quality["kind"])
    ]
    majority = baselines.loc[baselines["system"].str.startswith("baseline: majority")]
    if len(majority):
        accuracy = float(majority["accuracy"].iloc[0])
        handles.append(
            axis.axhline(accuracy, color="black", linestyle="--", linewidth=1, label="majority-class accuracy")
        )
    handles += [
        plt.Rectangle((0, 0), 1, 1, facecolor="grey", label="accuracy"),
        plt.Rectangle((0, 0), 1, 1, facecolor="grey", hatch="//", edgecolor="white", label="F1 macro"),
    ]
    axis.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.grid(axis="y", alpha=0.3)
    _save(figure, path)


@plain_text
def agreement_histogram(agreement: dict[str, pd.Series], path: str | Path) -> None:
    """How many items got each agreement level, per teacher × prompt."""
    levels = sorted({round(float(v), 3) for series in agreement.values() for v in series.dropna()})
    shares = {}
    for name, series in agreement.items():
        counts = series.round(3).value_counts()
        shares[name] = [100 * counts.get(level, 0) / len(series) for level in levels]
    figure, axis, _ = _grouped_bars(shares, [f"{level:.2f}" for level in levels])
    axis.set_xlabel("agreement (winning votes / iterations)")
    _save_grouped_bars(figure, axis, path, "share of items (%)", "Self-consistency agreement per teacher × prompt")


@plain_text
def accuracy_by_agreement(table: pd.DataFrame, path: str | Path) -> None:
    """Accuracy of the voted label against the expert label, unanimous against split votes."""
    groups = ["unanimous", "split"]
    rows = {s: table.loc[table["teacher_prompt"] == s].set_index("agreement") for s in table["teacher_prompt"].unique()}
    accuracy = {system: [100 * by["accuracy"].get(g, np.nan) for g in groups] for system, by in rows.items()}
    figure, axis, bars = _grouped_bars(accuracy, ["unanimous votes", "split votes"])
    for by, system_bars in zip(rows.values(), bars, strict=True):
        for bar, count in zip(system_bars, [int(by["items"].get(g, 0)) for g in groups], strict=True):
            height = bar.get_height()
            axis.text(
                bar.get_x() + bar.get_width() / 2,
                (0 if np.isnan(height) else height) + 1,
                f"n={count}",
                ha="center",
                fontsize=8,
            )
    axis.set_ylim(0, 110)
    title = "Label quality by agreement (all items with an expert label)"
    _save_grouped_bars(figure, axis, path, "accuracy of the voted label (%)", title)


@plain_text
def confusion_matrices(matrices: dict[str, dict], path: str | Path) -> None:
    """One confusion matrix per system (rows: expert label; columns: predicted, abstain last)."""
    figure, axes = _panels(len(matrices), 3, (4.3, 3.9), len(matrices))
    for axis, (name, matrix) in zip(axes.flat, matrices.items(), strict=False):
        counts = np.array(matrix["counts"])
        axis.imshow(counts, cmap="Blues")
        # The last column is the abstentions (metrics.ABSTAIN), in italics so that no label can look like it;
        # the labels themselves are shown as written ("<5" stays "<5").
        axis.set_xticks(range(counts.shape[1]), [*matrix["columns_predicted"][:-1], "abstain"], rotation=30)
        axis.get_xticklabels()[-1].set_fontstyle("italic")
        axis.set_yticks(range(counts.shape[0]), matrix["rows_expert"])
        axis.set_xlabel("predicted label (items)", fontsize=9)
        axis.set_ylabel("expert label", fontsize=9)
        axis.set_title(name, fontsize=10)
        threshold = counts.max() / 2 if counts.size else 0
        for (i, j), value in np.ndenumerate(counts):
            axis.text(j, i, str(value), ha="center", va="center", color="white" if value > threshold else "black")
    _save(figure, path)


@plain_text
def pareto(points: pd.DataFrame, path: str | Path) -> None:
    """Dollars per 1M texts against F1 macro, with the Pareto front (cheaper and better wins)."""
    frame = points.dropna(subset=["usd_per_1m_texts", "f1_macro"]).copy()
    figure, axis = plt.subplots(figsize=(9, 4.8))
    # A system without a cost estimate is named under the chart, never drawn as free.
    unpriced = points.loc[points["usd_per_1m_texts"].isna() & points["f1_macro"].notna(), "system"].tolist()
    if unpriced:
        figure.text(0.01, 0.01, "cost not estimated, not shown: " + ", ".join(unpriced), fontsize=7, color="grey")
    if frame.empty:
        axis.text(0.5, 0.5, "no system has both a cost and an F1 figure", ha="center", transform=axis.transAxes)
        _save(figure, path)
        return
    positive = frame["usd_per_1m_texts"] > 0
    floor = frame.loc[positive, "usd_per_1m_texts"].min() / 10 if positive.any() else 1e-3
    if positive.all():
        axis.set_xscale("log")
    else:
        # A teacher priced at $0 on purpose cannot sit on a log axis; symlog keeps it visible at 0.
        axis.set_xscale("symlog", linthresh=floor)
    for kind, group in frame.groupby("kind"):
        axis.scatter(group["usd_per_1m_texts"], group["f1_macro"], s=60, color=_color(kind), label=kind, zorder=3)
    # Alternate label offsets along the cost axis so neighbours with similar scores stay readable.
    offsets = [(7, 5), (7, -13), (7, 15), (7, -23)]
    for i, (_, row) in enumerate(frame.sort_values("usd_per_1m_texts").iterrows()):
        axis.annotate(
            row["system"],
            (row["usd_per_1m_texts"], row["f1_macro"]),
            textcoords="offset points",
            xytext=offsets[i % len(offsets)],
            fontsize=8,
        )
    front = frame.sort_values(["usd_per_1m_texts", "f1_macro"], ascending=[True, False])
    best, line = -np.inf, []
    for _, row in front.iterrows():
        if row["f1_macro"] > best:
            best = row["f1_macro"]
            line.append((row["usd_per_1m_texts"], row["f1_macro"]))
    line.append((frame["usd_per_1m_texts"].max(), best))  # nothing dearer does better
    xs, ys = zip(*line, strict=True)
    axis.step(xs, ys, where="post", color="grey", linestyle="--", label="Pareto front", zorder=2)
    axis.set_xlabel("cost per 1M texts (USD)")
    axis.set_ylabel("F1 macro on the expert test split")
    axis.set_ylim(max(-0.05, frame["f1_macro"].min() - 0.1), min(1.08, frame["f1_macro"].max() + 0.1))
    low, high = frame["usd_per_1m_texts"].min(), frame["usd_per_1m_texts"].max()
    if positive.all():
        axis.set_xlim(low / 3, high * 6)  # room for the labels right of the dearest point
    axis.set_title("Cost against quality (up and to the left is better)")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.grid(alpha=0.3, which="both")
    _save(figure, path)


@plain_text
def cascade_curves(curves: dict[str, pd.DataFrame], cascades: pd.DataFrame, path: str | Path) -> None:
    """Quality against cost for every threshold of each cascade, with the student alone, the teacher
    and the chosen operating point marked. Dollars on the x axis where both prices are known and the
    teacher costs something; otherwise the share of texts sent to the teacher."""
    figure, axes = _panels(max(1, len(curves)), 2, (6.2, 4.4), len(curves))
    if not curves:
        axes[0, 0].axis("off")
        axes[0, 0].text(0.5, 0.5, "no cascade in this run", ha="center", va="center")
    for axis, (name, curve), (_, row) in zip(axes.flat, curves.items(), cascades.iterrows(), strict=False):
        tested = "test_f1_macro" in curve
        share = curve["test_deferred_share" if tested else "validation_deferred_share"]
        y = curve["test_f1_macro" if tested else "validation_agreement"]
        teacher_usd = row["teacher_usd_per_1m_texts"]
        by_cost = curve["usd_per_1m_texts"].notna().all() and teacher_usd is not None and teacher_usd > 0
        x = curve["usd_per_1m_texts"] if by_cost else share
        axis.plot(x, y, color="grey", marker=".", markersize=3, linewidth=1, label="every threshold")
        chosen = curve.index[curve["chosen"]][0]
        axis.scatter(x[0], y[0], s=70, color=STUDENT_COLOR, zorder=3, label="student alone")
        teacher_x = teacher_usd if by_cost else 1.0
        teacher_y = row["teacher_f1_macro"] if tested else 1.0
        axis.scatter(teacher_x, teacher_y, s=70, color=TEACHER_COLOR, zorder=3, label="teacher")
        axis.scatter(x[chosen], y[chosen], s=110, marker="*", color="black", zorder=4, label="chosen (validation)")
        axis.set_xlabel("cost per 1M texts (USD)" if by_cost else "share of texts sent to the teacher")
        axis.set_ylabel("F1 macro on the expert test split" if tested else "agreement with the teacher (validation)")
        axis.set_title(name, fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="best")
    figure.suptitle("Cascade: quality against cost per threshold (test curve shown, threshold chosen on validation)")
    _save(figure, path)
