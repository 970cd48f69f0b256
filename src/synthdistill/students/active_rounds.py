"""Active distillation in rounds (annotate.strategy: active, docs/active.md): what each round chooses,
pays for and learns, as files a person can open.

A round is three jobs (rules/active.smk). select: round 0 draws a random seed set; a later round asks
the query (students.active) over the scores the previous round's student gave the rest of the pool.
annotate: the chosen texts, every self-consistency iteration, through the engine and the response
cache, so the annotate jobs after the rounds find every answer already paid for. train: the vote over
everything labelled so far, the round's student, its agreement with the teacher on validation and
its scores on the rest of the pool.

The number of rounds is fixed (active.max_rounds) so that every job is known before the run starts
and a killed run resumes where it stopped. Once the stopping rule fires or the budget is spent, a
round chooses nothing, pays nothing and trains nothing: its jobs pass on what the round before left.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.metrics.costs import annotations_usd
from synthdistill.students.active import choose, stopped_after, uncertainty

log = logging.getLogger(__name__)

SEED_QUERY = "seed"
SELECTION_COLUMNS = ["id", "round", "query", "uncertainty", "rank"]
# A round that trained nothing says which round's student it passes on, in its student folder.
SAME_STUDENT_FILE = "same_as_round.json"


def round_size(round_number: int, pool_size: int, settings: dict[str, Any]) -> int:
    """Texts a round labels before the budget: its share of the whole train pool, at least one."""
    share = settings["seed_share"] if round_number == 0 else settings["round_share"]
    return max(1, int(round(share * pool_size)))


def dollar_budget_left(
    history: list[dict[str, Any]], settings: dict[str, Any], costing: dict[str, Any] | None
) -> float | None:
    """active.max_usd minus what the rounds so far cost (None: no dollar budget)."""
    if settings.get("max_usd") is None:
        return None
    spent = annotations_usd([h["annotation"] for h in history if h.get("annotation")], costing or {})
    if spent is None:
        raise SynthDistillError(
            "active.max_usd: this teacher's calls are not priced (give teachers.<name>.price, or a "
            "price_per_hour_usd for a self-hosted teacher's hardware), so a dollar budget cannot be kept"
        )
    return float(settings["max_usd"]) - spent


def check_dollar_budget(costings: dict[str, dict[str, Any]]) -> None:
    """active.max_usd needs every teacher's calls priced: checked before round 0 pays anything."""
    probe = [{"answers": 1, "input_tokens": 1, "output_tokens": 1, "compute_s": 1.0}]
    for name, costing in costings.items():
        if annotations_usd(probe, costing) is None:
            raise SynthDistillError(
                f"active.max_usd: teacher {name}'s calls are not priced (give teachers.{name}.price, or a "
                "price_per_hour_usd for a self-hosted teacher's hardware), so a dollar budget cannot be kept"
            )


def why_stopped(
    labelled: int,
    history: list[dict[str, Any]],
    pool_left: int,
    settings: dict[str, Any],
    dollars_left: float | None = None,
) -> str | None:
    """Why no more texts are labelled (None: go on): a budget, the stopping rule, an empty pool."""
    budget = settings["max_texts"]
    if budget is not None and labelled >= budget:
        return f"budget spent: {labelled} texts labelled, active.max_texts is {budget}"
    if dollars_left is not None and dollars_left <= 0:
        return (
            f"budget spent: ${settings['max_usd'] - dollars_left:.4g} paid, active.max_usd is {settings['max_usd']:g}"
        )
    trained = [h for h in history if h["trained"]]
    after = stopped_after(
        [h["validation_f1_macro"] for h in trained], min_gain=settings["min_gain"], patience=settings["patience"]
    )
    if after is not None:
        return (
            f"stopping rule: the student's F1 macro against the teacher on validation gained no more than "
            f"active.min_gain {settings['min_gain']:g} for active.patience {settings['patience']} round(s), "
            f"up to round {trained[after]['round']}"
        )
    if pool_left == 0:
        return "every text of the train pool is labelled"
    return None


def select_round(
    round_number: int,
    train: pd.DataFrame,
    chosen: pd.DataFrame,
    scores: pd.DataFrame | None,
    history: list[dict[str, Any]],
    settings: dict[str, Any],
    costing: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(the texts round ``round_number`` labels, with why, and the round's status).

    ``chosen``: the selections of the rounds before; ``scores``: the previous round's student's
    uncertainty per pool text (None for round 0); ``history``: the rounds' round.json before this one;
    ``costing``: how the teacher is costed (metrics.costs.teacher_costing), for active.max_usd.
    """
    pool = train.loc[~train["id"].isin(chosen["id"])].reset_index(drop=True)
    status: dict[str, Any] = {"round": round_number, "pool": len(train), "labelled_before": len(chosen)}
    dollars_left = dollar_budget_left(history, settings, costing)
    stopped = why_stopped(len(chosen), history, len(pool), settings, dollars_left)
    if stopped:
        log.info("round %d chooses nothing: %s", round_number, stopped)
        return pd.DataFrame(columns=SELECTION_COLUMNS), {**status, "chosen": 0, "stopped": stopped}
    size = round_size(round_number, len(train), settings)
    if settings["max_texts"] is not None:
        size = min(size, settings["max_texts"] - len(chosen))
    if dollars_left is not None and len(chosen):
        # What a train text cost so far (round 0's validation calls counted in: an overestimate).
        per_text = (float(settings["max_usd"]) - dollars_left) / max(1, len(chosen))
        if per_text > 0:
            size = min(size, int(dollars_left // per_text))
        if size <= 0:
            why = f"budget: ${dollars_left:.4g} left of active.max_usd, less than a text costs (${per_text:.4g})"
            return pd.DataFrame(columns=SELECTION_COLUMNS), {**status, "chosen": 0, "stopped": why}
    size = min(size, len(pool))
    rng = np.random.default_rng([settings["seed"], round_number])
    if round_number == 0:
        positions = rng.choice(len(pool), size=size, replace=False)
        query, values = SEED_QUERY, np.full(len(pool), np.nan)
    else:
        if scores is None:
            raise SynthDistillError(f"active round {round_number}: no scores from round {round_number - 1}'s student")
        values = scores.set_index("id")["uncertainty"].reindex(pool["id"]).to_numpy(dtype=float)
        if np.isnan(values).any():
            raise SynthDistillError(
                f"active round {round_number}: round {round_number - 1}'s scores miss "
                f"{int(np.isnan(values).sum())} texts of the pool; rerun that round (snakemake -R active_train)"
            )
        query = settings["query"]
        embeddings = labelled = None
        if query == "diversity":
            from synthdistill.annotation.embeddings import embed

            done = train.loc[train["id"].isin(chosen["id"]), "text"].tolist()
            vectors = embed(pool["text"].tolist() + done, settings["embedding_model"])
            embeddings, labelled = vectors[: len(pool)], vectors[len(pool) :]
        positions = choose(
            query,
            size,
            scores=values,
            rng=rng,
            embeddings=embeddings,
            labelled_embeddings=labelled,
            candidates_per_pick=settings["candidates_per_pick"],
        )
    selection = pd.DataFrame(
        {
            "id": pool["id"].to_numpy()[positions],
            "round": round_number,
            "query": query,
            "uncertainty": values[positions],
            "rank": np.arange(len(positions)),
        }
    )
    log.info("round %d chooses %d of %d pool texts (%s)", round_number, len(selection), len(pool), query)
    return selection, {**status, "chosen": len(selection), "stopped": None}


def round_prompts(prompts: pd.DataFrame, chosen_ids: pd.Series, round_number: int) -> pd.DataFrame:
    """The prompt rows a round annotates: its chosen train texts, the validation split in round 0 (the
    round students validate on the teacher's labels), and any calibration row (label_scores)."""
    keep = prompts["id"].isin(chosen_ids) & (prompts["split"] == "train")
    keep |= prompts["split"] == "calibration"
    if round_number == 0:
        keep |= prompts["split"] == "validation"
    return prompts.loc[keep].reset_index(drop=True)


def active_prompts(prompts: pd.DataFrame, chosen_ids: pd.Series) -> pd.DataFrame:
    """What the annotate jobs after the rounds label: the chosen train texts and every other split."""
    return prompts.loc[(prompts["split"] != "train") | prompts["id"].isin(chosen_ids)].reset_index(drop=True)


def annotate_round(
    prompts: pd.DataFrame,
    selection: pd.DataFrame,
    round_number: int,
    iterations: int,
    annotate_iteration: Any,
) -> pd.DataFrame:
    """Every iteration's answers for the round's texts (an ``iteration`` column says which);
    ``annotate_iteration(prompts, iteration)`` is annotation.engine.annotate with the run's teacher,
    cache and settings bound. A round that chose nothing makes no call."""
    if selection.empty and round_number > 0:
        return pd.DataFrame(columns=["id", "split", "label", "iteration"])
    rows = round_prompts(prompts, selection["id"], round_number)
    return pd.concat([annotate_iteration(rows, i).assign(iteration=i) for i in range(iterations)], ignore_index=True)


def agreement_f1(truth: pd.Series, predicted: pd.Series, labels: list[str], multi_label: bool) -> float:
    """F1 macro of ``predicted`` against ``truth`` (teacher votes or expert labels); a multi_label answer
    is a JSON label set, scored label by label."""
    from sklearn.metrics import f1_score

    if multi_label:
        from synthdistill.tasks.multi_label import indicator_matrix

        truth_matrix, predicted_matrix = indicator_matrix(truth, labels), indicator_matrix(predicted, labels)
        return float(f1_score(truth_matrix, predicted_matrix, average="macro", zero_division=0))
    from synthdistill.metrics.single_label import score

    return float(score(truth, predicted, labels)["f1_macro"])


def pass_on(previous: dict[str, Any], round_number: int, outputs: dict[str, str], previous_scores: str) -> None:
    """A round that chose nothing: the previous round's figures and scores, no student trained (its
    student folder names the round whose student stands)."""
    student_round = {"student_of_round": previous["student_of_round"]}
    for folder in (outputs["model"], Path(outputs["votes"]).parent):
        Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(outputs["model"]) / SAME_STUDENT_FILE).write_text(json.dumps(student_round) + "\n")
    Path(outputs["metadata"]).write_text(json.dumps(student_round) + "\n")
    shutil.copyfile(previous_scores, outputs["scores"])
    figures = {**previous, "round": round_number, "trained": False, "new_texts": 0, "annotation": None}
    Path(outputs["figures"]).write_text(json.dumps(figures, indent=2) + "\n")


def train_round(
    round_number: int,
    *,
    annotation_paths: list[str],
    selection_paths: list[str],
    split_paths: dict[str, str],
    previous: tuple[str, str] | None,
    task: str,
    teacher: str,
    prompt: str,
    student_name: str,
    student: dict[str, Any],
    labels: list[str],
    vote_settings: dict[str, Any],
    measure: str,
    threads: int,
    outputs: dict[str, str],
) -> dict[str, Any]:
    """The round's student on every text labelled up to this round, and its figures (round.json):
    its F1 macro against the teacher's labels on validation (what the stopping rule reads), against
    the expert labels on test when there are any (reported only), and its uncertainty over the rest
    of the pool (what the next round's query reads). ``previous``: the round before's (round.json,
    scores); ``split_paths``: train, validation and test.
    """
    from synthdistill.labels.vote_files import annotation_stats
    from synthdistill.tasks import MULTI_LABEL, get_task

    selections = [pd.read_parquet(p) for p in selection_paths]
    if round_number > 0 and selections[-1].empty:
        if previous is None:
            raise SynthDistillError(f"active round {round_number}: the round before left no figures")
        pass_on(json.loads(Path(previous[0]).read_text()), round_number, outputs, previous[1])
        return {}
    annotations = [pd.read_parquet(p) for p in annotation_paths]
    chosen_ids = pd.concat([s["id"] for s in selections], ignore_index=True)
    train = pd.read_parquet(split_paths["train"])
    labelled = train.loc[train["id"].isin(chosen_ids)]
    vote_labelled(annotations, labelled, split_paths["validation"], task, labels, vote_settings, outputs)
    get_task(task).step("train_student")(
        [outputs["votes"]],
        teacher=teacher,
        prompt=prompt,
        student=student,
        labels=labels,
        model_dir=outputs["model"],
        metadata_path=outputs["metadata"],
        threads=threads,
        name=student_name,
    )
    multi_label = task == MULTI_LABEL
    figures = {
        "round": round_number,
        "trained": True,
        "student_of_round": round_number,
        "student": student_name,
        "texts": int(len(chosen_ids)),
        "new_texts": int(len(selections[-1])),
        # Round 0's calls include the validation split, labelled once for every round's student.
        "annotation": annotation_stats([frame for _, frame in annotations[-1].groupby("iteration", sort=True)]),
        **student_figures(outputs, split_paths["test"], labels, multi_label, student["max_length"]),
    }
    pool = train.loc[~train["id"].isin(chosen_ids)]
    pool_scores(outputs["model"], pool, labels, measure, multi_label, student["max_length"]).to_parquet(
        outputs["scores"], index=False
    )
    Path(outputs["figures"]).write_text(json.dumps(figures, indent=2) + "\n")
    log.info(
        "round %d: %d texts labelled, validation F1 macro against the teacher %.3f",
        round_number,
        figures["texts"],
        figures["validation_f1_macro"],
    )
    return figures


def vote_labelled(
    annotations: list[pd.DataFrame],
    labelled: pd.DataFrame,
    validation_path: str,
    task: str,
    labels: list[str],
    vote_settings: dict[str, Any],
    outputs: dict[str, str],
) -> None:
    """The run's vote over every answer so far (the labelled train texts and validation), written as the
    vote job writes it, with the iteration files and the train split it read, into the round's labels/."""
    from synthdistill.tasks import get_task

    answered = pd.concat([a for a in annotations if len(a)], ignore_index=True)
    labels_dir = Path(outputs["votes"]).parent
    labels_dir.mkdir(parents=True, exist_ok=True)
    iteration_paths = []
    for number, frame in answered.groupby("iteration", sort=True):
        path = labels_dir / f"iter{number}.parquet"
        frame.drop(columns="iteration").to_parquet(path, index=False)
        iteration_paths.append(str(path))
    labelled_path = labels_dir / "train.parquet"
    labelled.to_parquet(labelled_path, index=False)
    get_task(task).step("vote")(
        iteration_paths=iteration_paths,
        split_paths=[str(labelled_path), validation_path],
        labels=labels,
        settings=vote_settings,
        outputs={key: outputs[key] for key in ("votes", "train_csv", "stats")},
    )


def student_figures(
    outputs: dict[str, str], test_path: str, labels: list[str], multi_label: bool, max_length: int
) -> dict[str, Any]:
    """The round student's F1 macro against the teacher's votes on validation and, where the test split
    has expert labels, against them."""
    votes = pd.read_parquet(outputs["votes"])
    validation = votes.loc[(votes["split"] == "validation") & votes["label"].notna()]
    figures: dict[str, Any] = {
        "validation_items": int(len(validation)),
        "validation_f1_macro": _f1_of(outputs["model"], validation, "label", labels, multi_label, max_length),
        "test_f1_macro": None,
    }
    test = pd.read_parquet(test_path)
    if "expert_label" in test and test["expert_label"].notna().any():
        expert = test.loc[test["expert_label"].notna()]
        figures["test_f1_macro"] = _f1_of(outputs["model"], expert, "expert_label", labels, multi_label, max_length)
        figures["test_items"] = int(len(expert))
    return figures


def pool_scores(
    model_dir: str, pool: pd.DataFrame, labels: list[str], measure: str, multi_label: bool, max_length: int
) -> pd.DataFrame:
    """The round student's probabilities and uncertainty for every text still in the pool."""
    from synthdistill.students.inference import predict_frame

    if pool.empty:
        return pd.DataFrame({"id": pd.Series(dtype=object), "uncertainty": pd.Series(dtype=float)})
    predicted = predict_frame(model_dir, pool, max_length)
    probabilities = predicted[[f"prob_{label}" for label in labels]].to_numpy()
    return predicted.assign(uncertainty=uncertainty(probabilities, measure=measure, multi_label=multi_label))


def _f1_of(
    model_dir: str, items: pd.DataFrame, truth: str, labels: list[str], multi_label: bool, max_length: int
) -> float:
    """F1 macro of the student in ``model_dir`` on ``items`` against their column ``truth``."""
    from synthdistill.students.inference import predict_frame

    if items.empty:
        raise SynthDistillError(
            "active rounds: no validation text has a teacher label to measure the round's student on"
        )
    predicted = predict_frame(model_dir, items, max_length)
    return agreement_f1(items[truth].reset_index(drop=True), predicted["label"], labels, multi_label)


def write_pool(
    prompts_path: str,
    train_path: str,
    selection_paths: list[str],
    figure_paths: list[str],
    iterations: int,
    outputs: dict[str, str],
) -> pd.DataFrame:
    """After the last round: the prompts the annotate jobs label (the chosen train texts and every
    other split), the train split the vote reads, every round's selection in one file, and the
    rounds table (rounds.csv: texts, calls and student figures per round, the report's curve)."""
    selection = pd.concat([pd.read_parquet(p) for p in selection_paths], ignore_index=True)
    if selection.empty:
        raise SynthDistillError("active rounds chose no text at all: nothing for the teacher to label")
    active_prompts(pd.read_parquet(prompts_path), selection["id"]).to_parquet(outputs["prompts"], index=False)
    train = pd.read_parquet(train_path)
    train.loc[train["id"].isin(selection["id"])].to_parquet(outputs["train"], index=False)
    selection.to_parquet(outputs["selection"], index=False)
    table = rounds_table([json.loads(Path(p).read_text()) for p in figure_paths], len(train), iterations)
    table.to_csv(outputs["rounds"], index=False)
    return table


def rounds_table(figures: list[dict[str, Any]], pool_size: int, iterations: int) -> pd.DataFrame:
    """One row per round: what it labelled and paid for (calls made, tokens, teacher busy time, all
    cumulative, as the report costs them), and its student's F1 macro."""
    rows = []
    calls = input_tokens = output_tokens = compute_s = 0.0
    for round_figures in figures:
        annotation = round_figures.get("annotation") or {}
        calls += annotation.get("answers", 0)
        input_tokens += annotation.get("input_tokens", 0)
        output_tokens += annotation.get("output_tokens", 0)
        compute_s += annotation.get("compute_s", 0.0)
        rows.append(
            {
                "round": round_figures["round"],
                "trained": round_figures["trained"],
                "student_of_round": round_figures["student_of_round"],
                "texts": round_figures["texts"],
                "pool_share": round_figures["texts"] / pool_size if pool_size else float("nan"),
                "new_texts": round_figures["new_texts"],
                "calls": int(calls),
                "input_tokens": int(input_tokens),
                "output_tokens": int(output_tokens),
                "compute_s": compute_s,
                "validation_f1_macro": round_figures["validation_f1_macro"],
                "test_f1_macro": round_figures.get("test_f1_macro"),
                "pool_texts": pool_size,
                "iterations": iterations,
            }
        )
    return pd.DataFrame(rows)
