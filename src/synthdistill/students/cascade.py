"""The student-first cascade: the student answers what it is sure of, the teacher the rest.

Everything that sets the operating point (the temperature, the threshold) is fitted on the
validation split against the teacher's voted labels; the frozen expert test split only measures
the result. The teacher's labels for validation and test items already exist in its votes, so
the cascade is scored without a single new LLM call: a deferred item gets the label the teacher
gave it in the pipeline run.

Why the teacher's labels and not expert labels: the cascade's job is to stand in for the teacher
(agreement with it is what the user is asked to trade against cost), the student learned to
imitate it, and teacher labels exist for every dataset, expert-labelled or not. The validation
split's expert labels, where they exist, are not read at all.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.metrics.single_label import score
from synthdistill.metrics.stats import _accuracy_f1, _codes, bootstrap_intervals, compare
from synthdistill.students.cascade_policy import CascadePolicy, temperature_scale

log = logging.getLogger(__name__)

# Temperatures outside this range mean the fit ran away on a tiny or degenerate validation split.
TEMPERATURE_BOUNDS = (0.05, 20.0)
# Above every confidence (both kinds are at most 1): the curve's "teacher answers everything" end.
DEFER_ALL = 1.001


def fit_temperature(probabilities: np.ndarray, target_codes: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of the target labels (Guo et al. 2017)."""
    from scipy.optimize import minimize_scalar

    known = target_codes >= 0
    if known.sum() < 2:
        return 1.0  # nothing to fit against: leave the student's probabilities as they are
    probabilities, targets = probabilities[known], target_codes[known]

    def nll(log_t: float) -> float:
        scaled = temperature_scale(probabilities, float(np.exp(log_t)))
        return float(-np.log(np.clip(scaled[np.arange(len(targets)), targets], 1e-12, None)).mean())

    result = minimize_scalar(nll, bounds=tuple(np.log(TEMPERATURE_BOUNDS)), method="bounded")
    return float(np.exp(result.x))


def nll(probabilities: np.ndarray, target_codes: np.ndarray) -> float | None:
    known = target_codes >= 0
    if not known.any():
        return None
    picked = probabilities[known][np.arange(int(known.sum())), target_codes[known]]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


def candidate_thresholds(confidences: np.ndarray) -> np.ndarray:
    """Every distinct operating point on these confidences: 0 (defer nothing), the midpoints between
    consecutive distinct values (so a threshold never sits exactly on an item), and DEFER_ALL."""
    values = np.unique(confidences)
    return np.concatenate([[0.0], (values[:-1] + values[1:]) / 2, [DEFER_ALL]])


def agreement_curve(
    confidences: np.ndarray, student: np.ndarray, teacher: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Deferred share (of all items: what the teacher is paid for) and agreement of the cascade's
    answer with the teacher's, per threshold.

    Codes are label indexes. Agreement leaves out the items the teacher abstained on (code -1):
    there is no teacher answer to agree with.
    """
    deferred = confidences[None, :] < thresholds[:, None]
    known = teacher >= 0
    if not known.any():
        return deferred.mean(axis=1), np.full(len(thresholds), np.nan)
    agrees = deferred[:, known] | (student[known] == teacher[known])[None, :]
    return deferred.mean(axis=1), agrees.mean(axis=1)


def choose_threshold(curve: pd.DataFrame, target: dict[str, float]) -> int:
    """Row of the validation curve at the operating point ``target`` asks for.

    min_agreement: the least deferral whose agreement with the teacher reaches it (deferring
    everything always does). max_deferred: the most agreement within that deferred share
    (deferring nothing always qualifies). Ties go to the lower threshold.
    """
    share, agreement = curve["validation_deferred_share"], curve["validation_agreement"]
    if "min_agreement" in target:
        feasible = curve.index[agreement >= target["min_agreement"] - 1e-12]
        return int(min(feasible, key=lambda i: (share[i], curve.at[i, "threshold"])))
    if "max_deferred" in target:
        feasible = curve.index[share <= target["max_deferred"] + 1e-12]
        return int(min(feasible, key=lambda i: (-agreement[i], share[i], curve.at[i, "threshold"])))
    raise SynthDistillError(f"cascade.target: expected min_agreement or max_deferred, got {sorted(target)}")


def _probabilities(predictions: pd.DataFrame, labels: list[str], source: str) -> np.ndarray:
    columns = [f"prob_{label}" for label in labels]
    missing = [c for c in columns if c not in predictions]
    if missing:
        raise SynthDistillError(f"{source}: the student has no {', '.join(missing)}; was it trained on other labels?")
    return predictions[columns].to_numpy(dtype=np.float64)


def _teacher_labels(votes: pd.DataFrame, items: pd.DataFrame, votes_path: str, split: str) -> pd.Series:
    """The teacher's own answers: a votes file's ``label``, or a reviewed labels file's ``voted_label``
    (what the teacher said before any correction: a deferred text gets the teacher's answer)."""
    column = "voted_label" if "voted_label" in votes else "label"
    by_id = votes.drop_duplicates("id").set_index("id")[column]
    missing = items.loc[~items["id"].isin(by_id.index), "id"]
    if len(missing):
        raise SynthDistillError(
            f"{votes_path}: no teacher vote for {len(missing)} {split} item(s) (first: {missing.iloc[0]!r}); "
            "were the votes made from another split?"
        )
    return by_id.reindex(items["id"]).reset_index(drop=True)


def _scores(expert: pd.Series, predicted: pd.Series, labels: list[str]) -> dict[str, Any]:
    metrics = score(expert, predicted, labels)
    return {key: metrics[key] for key in ("n", "accuracy", "f1_macro", "coverage")} | {
        "intervals": bootstrap_intervals(expert, predicted, labels)
    }


def build_cascade(
    validation: pd.DataFrame,
    test: pd.DataFrame,
    student_predictions: pd.DataFrame,
    votes: pd.DataFrame,
    labels: list[str],
    confidence: str,
    target: dict[str, float],
    *,
    votes_path: str = "votes",
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """The cascade's summary, its curve (one row per threshold) and its per-item table.

    ``student_predictions`` has id and prob_<label> for every validation and test item.
    """
    parts = _parts(validation, test, student_predictions, votes, labels, votes_path)
    val = parts["validation"]
    temperature = fit_temperature(val["probs"], val["teacher_codes"])
    _add_student_answers(parts, CascadePolicy(confidence, temperature, 0.0))

    thresholds = candidate_thresholds(val["confidence"])
    curve = _validation_curve(val, thresholds, votes_path)
    chosen = choose_threshold(curve, target)
    policy = CascadePolicy(confidence, temperature, float(thresholds[chosen]))
    curve["chosen"] = curve.index == chosen
    summary = _summary(val, curve, chosen, policy, labels, target)
    items_table = _items_table(parts, labels, policy.threshold)

    test_part = parts["test"]
    items = test_part["items"]
    if len(items) and "expert_label" in items and items["expert_label"].notna().all():
        summary["test"] = _test_summary(test_part, items["expert_label"].reset_index(drop=True), labels, thresholds)
        curve = curve.join(summary["test"].pop("curve"))
        summary["test"]["agreement_with_teacher"] = float(curve.at[chosen, "test_agreement"])
    return summary, curve, items_table


def _parts(
    validation: pd.DataFrame,
    test: pd.DataFrame,
    student_predictions: pd.DataFrame,
    votes: pd.DataFrame,
    labels: list[str],
    votes_path: str,
) -> dict[str, dict[str, Any]]:
    """Per split: its items, the student's probabilities and the teacher's voted labels (and their codes)."""
    predictions = student_predictions.drop_duplicates("id").set_index("id")
    parts = {}
    for split, items in (("validation", validation), ("test", test)):
        items = items.reset_index(drop=True)
        if not len(items) and split == "validation":
            raise SynthDistillError("cascade: the validation split is empty; set split.validation_size above 0")
        probs = _probabilities(predictions.reindex(items["id"]), labels, "student predictions")
        teacher = _teacher_labels(votes, items, votes_path, split)
        parts[split] = {"items": items, "probs": probs, "teacher": teacher, "teacher_codes": _codes(teacher, labels)}
    return parts


def _add_student_answers(parts: dict[str, dict[str, Any]], policy: CascadePolicy) -> None:
    """Each split's confidences (under the fitted temperature) and the student's label codes."""
    for part in parts.values():
        part["confidence"] = policy.confidences(part["probs"]) if len(part["probs"]) else np.zeros(0)
        part["student_codes"] = part["probs"].argmax(axis=1) if len(part["probs"]) else np.zeros(0, dtype=np.int64)


def _validation_curve(val: dict[str, Any], thresholds: np.ndarray, votes_path: str) -> pd.DataFrame:
    """Per threshold, the validation share deferred and the cascade's agreement with the teacher."""
    curve = pd.DataFrame({"threshold": thresholds})
    share, agreement = agreement_curve(val["confidence"], val["student_codes"], val["teacher_codes"], thresholds)
    curve["validation_deferred_share"], curve["validation_agreement"] = share, agreement
    if np.isnan(agreement).all():
        raise SynthDistillError(f"{votes_path}: the teacher labelled no validation item; nothing to fit the cascade on")
    return curve


def _summary(
    val: dict[str, Any],
    curve: pd.DataFrame,
    chosen: int,
    policy: CascadePolicy,
    labels: list[str],
    target: dict[str, float],
) -> dict[str, Any]:
    """The cascade's policy and how it did on the validation split it was fitted on."""
    return {
        "labels": labels,
        "policy": policy.to_dict(),
        "target": target,
        "fitted_on": (
            "validation split only: temperature minimises the NLL of the teacher's voted labels; "
            "the threshold is the cascade.target operating point on the validation curve"
        ),
        "validation": {
            "items": len(val["items"]),
            "items_with_teacher_label": int((val["teacher_codes"] >= 0).sum()),
            "nll_before": nll(val["probs"], val["teacher_codes"]),
            "nll_after": nll(temperature_scale(val["probs"], policy.temperature), val["teacher_codes"]),
            "student_agreement": float(curve["validation_agreement"].iloc[0]),
            "deferred_share": float(curve.at[chosen, "validation_deferred_share"]),
            "agreement": float(curve.at[chosen, "validation_agreement"]),
        },
        "test": None,
    }


def _items_table(parts: dict[str, dict[str, Any]], labels: list[str], threshold: float) -> pd.DataFrame:
    """One row per validation and test item: the student's answer, whether it was deferred, the
    cascade's label; each split's rows are also kept as its part's ``frame``."""
    rows = []
    for split, part in parts.items():
        deferred = part["confidence"] < threshold
        student_labels = [labels[i] for i in part["student_codes"]]
        cascade_labels = [t if d else s for s, t, d in zip(student_labels, part["teacher"], deferred, strict=True)]
        frame = pd.DataFrame(
            {
                "id": part["items"]["id"].to_numpy(),
                "split": split,
                "student_label": student_labels,
                "confidence": part["confidence"],
                "deferred": deferred,
                "teacher_label": part["teacher"].to_numpy(),
                "label": cascade_labels,
            }
        )
        for i, label in enumerate(labels):
            frame[f"prob_{label}"] = part["probs"][:, i]
        rows.append(frame)
        part["frame"] = frame
    return pd.concat(rows, ignore_index=True)


def _test_summary(part: dict[str, Any], expert: pd.Series, labels: list[str], thresholds: np.ndarray) -> dict[str, Any]:
    frame = part["frame"]
    student, teacher, cascade = frame["student_label"], frame["teacher_label"], frame["label"]
    # The whole curve on test, for the report's figure; the choice above never saw it.
    deferred = part["confidence"][None, :] < thresholds[:, None]
    answers = np.where(deferred, part["teacher_codes"][None, :], part["student_codes"][None, :])
    expert_codes = _codes(expert, labels)
    accuracy, f1 = _accuracy_f1(np.broadcast_to(expert_codes, answers.shape), answers, len(labels))
    share, agreement = agreement_curve(part["confidence"], part["student_codes"], part["teacher_codes"], thresholds)
    curve = pd.DataFrame(
        {
            "test_deferred_share": share,
            "test_agreement": agreement,
            "test_accuracy": accuracy,
            "test_f1_macro": f1,
        }
    )
    return {
        "items": len(frame),
        "test_ids": sorted(frame["id"]),
        "deferred_share": float(frame["deferred"].mean()),
        "student": _scores(expert, student, labels),
        "cascade": _scores(expert, cascade, labels),
        "teacher": _scores(expert, teacher, labels),
        "paired": {
            "cascade_vs_teacher": compare(expert, cascade, teacher, labels),
            "student_vs_teacher": compare(expert, student, teacher, labels),
        },
        "curve": curve,
    }


def write_cascade(
    model_dir: str,
    votes_path: str,
    validation_path: str,
    test_path: str,
    labels: list[str],
    max_length: int,
    confidence: str,
    target: dict[str, float],
    outputs: dict[str, str],
    names: dict[str, str],
) -> dict[str, Any]:
    """Score the validation and test splits with the student (the serving predictor), fit the
    cascade, and write its summary JSON, curve CSV and per-item parquet (``outputs``: summary, curve,
    per_item)."""
    from synthdistill.students.inference import predict_frame

    validation, test = pd.read_parquet(validation_path), pd.read_parquet(test_path)
    votes = pd.read_parquet(votes_path)
    predictions = predict_frame(model_dir, pd.concat([validation, test], ignore_index=True), max_length)
    summary, curve, items = build_cascade(
        validation, test, predictions, votes, labels, confidence, target, votes_path=votes_path
    )
    summary = {
        **names,
        **summary,
        "curve_file": Path(outputs["curve"]).name,
        "items_file": Path(outputs["per_item"]).name,
    }
    Path(outputs["summary"]).write_text(json.dumps(summary, indent=2) + "\n")
    curve.to_csv(outputs["curve"], index=False)
    items.to_parquet(outputs["per_item"], index=False)
    chosen = summary["validation"]
    log.info(
        "cascade %s: threshold %.4f at T=%.3f; validation: deferred %.3f, agreement %.3f",
        "/".join(names.values()),
        summary["policy"]["threshold"],
        summary["policy"]["temperature"],
        chosen["deferred_share"],
        chosen["agreement"],
    )
    return summary
