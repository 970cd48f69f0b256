"""Task multi_label: expert label sets, parsing a labels_json answer, the per-label vote, and the
real embedded SmolLM2 answering under constrained decoding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthdistill import SynthDistillError, data
from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.parsing import parse
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.requests import output_schema
from synthdistill.labels.multi_label_vote import vote_label_sets, write_votes
from synthdistill.tasks.base import EMPTY, INVALID_JSON, NOT_A_LABEL, OK
from synthdistill.tasks.multi_label import indicator_matrix, label_set_json, label_sets_of

from .conftest import REPO, annotate_settings

LABELS = ["billing", "bug", "feature_request", "account", "praise"]
SPLIT = {"test_size": 0.25, "validation_size": 0.25, "seed": 0}


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "label"),
    [
        ('{"labels": ["bug", "billing"]}', '["billing", "bug"]'),  # label order, not answer order
        ('["Praise"]', '["praise"]'),  # a bare list; case as configured
        ('```json\n{"labels": ["account", "account"]}\n```', '["account"]'),  # fenced, repeated
        ('Sure! {"labels": []}', "[]"),  # the empty set is an answer
        ("[]", "[]"),
    ],
)
def test_a_labels_json_answer_becomes_the_canonical_set(output, label):
    parsed = parse("labels_json", output, LABELS)
    assert (parsed.status, parsed.label) == (OK, label)


@pytest.mark.parametrize(
    ("output", "status"),
    [
        ('{"labels": ["bug", "refund"]}', NOT_A_LABEL),  # one unknown label fails the whole answer
        ('{"labels": ["bug", 3]}', NOT_A_LABEL),
        ('{"labels": ["bug", "feat', INVALID_JSON),  # cut off at max_tokens
        ('{"label": "bug"}', INVALID_JSON),
        ("bug, billing", INVALID_JSON),
        ("  ", EMPTY),
    ],
)
def test_anything_else_is_a_counted_failure(output, status):
    parsed = parse("labels_json", output, LABELS)
    assert (parsed.status, parsed.label) == (status, None)
    if status == NOT_A_LABEL:
        assert "unknown label" in parsed.reason


def test_the_schema_is_an_object_with_a_closed_list():
    schema = output_schema("labels_json", LABELS)
    assert schema["type"] == "object" and schema["required"] == ["labels"]
    assert schema["properties"]["labels"]["items"]["enum"] == LABELS


def test_label_sets_round_trip_through_the_indicator_matrix():
    sets = ['["billing", "praise"]', "[]", '["bug"]']
    matrix = indicator_matrix(sets, LABELS)
    assert matrix.tolist() == [[1, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0]]
    assert label_sets_of(matrix, LABELS) == sets
    assert label_set_json(["praise", "billing"], LABELS) == sets[0]


# --- data ----------------------------------------------------------------------------------------


def settings(path, **extra) -> dict:
    return {"path": str(path), "text_column": "text", "label_column": "labels", **extra}


def prepare(path, **extra) -> pd.DataFrame:
    items, _ = data.prepare(settings(path, **extra), LABELS, SPLIT, "multi_label")
    return items.sort_values("text").reset_index(drop=True)


TEXTS = [f"ticket number {i}" for i in range(8)]


def test_csv_cells_are_delimited_and_an_empty_cell_is_the_empty_set(tmp_path):
    cells = ["bug|billing", "", " praise ", "account", "bug", "billing", "feature_request|bug", '["praise"]']
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": TEXTS, "labels": cells}).to_csv(path, index=False)
    items = prepare(path)
    assert items["expert_label"].tolist() == [
        '["billing", "bug"]',
        "[]",
        '["praise"]',
        '["account"]',
        '["bug"]',
        '["billing"]',
        '["bug", "feature_request"]',
        '["praise"]',
    ]
    assert set(items["split"]) == {"train", "validation", "test"}
    # summary.json counts the texts carrying each label, and those carrying none, per split.
    per_split = data.summarise(items, pd.DataFrame({"reason": []}), {}, "multi_label")["per_split_and_label"]
    totals = {name: sum(split.get(name, 0) for split in per_split.values()) for name in [*LABELS, "(no label)"]}
    assert totals == {"billing": 2, "bug": 3, "feature_request": 1, "account": 1, "praise": 2, "(no label)": 1}


def test_jsonl_and_parquet_lists_with_null_for_no_expert_answer(tmp_path):
    cells = [["bug"], [], None, ["praise", "billing"], ["bug"], ["account"], ["bug"], ["praise"]]
    frame = pd.DataFrame({"text": TEXTS, "labels": cells})
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.jsonl", "t.parquet"):
        items = prepare(tmp_path / name)
        assert "ticket number 2" not in set(items["text"])  # null: dropped as a missing label
        assert items["expert_label"].tolist()[:3] == ['["bug"]', "[]", '["billing", "praise"]']


def test_a_custom_delimiter(tmp_path):
    path = tmp_path / "t.tsv"
    pd.DataFrame({"text": TEXTS, "labels": ["bug;billing"] * 8}).to_csv(path, sep="\t", index=False)
    assert set(prepare(path, label_delimiter=";")["expert_label"]) == {'["billing", "bug"]'}


@pytest.mark.parametrize(
    ("cells", "suffix", "message"),
    [
        (["bug", "bug|refund"], "csv", r"row 2: label 'refund' is not in the configured labels"),
        (["bug", "bug||billing"], "csv", r"row 2: label '' \(an empty label between two delimiters\)"),
        (["bug", '["bug", '], "csv", r"row 2: label cell .* is not a valid JSON list"),
        ([["bug"], [1]], "jsonl", r"row 2: label cell \[1\] holds 1, which is not a label name"),
        ([["bug"], 7], "jsonl", r"row 2: label cell 7 is not a list of labels"),
    ],
)
def test_bad_cells_stop_naming_the_file_and_row(tmp_path, cells, suffix, message):
    path = tmp_path / f"t.{suffix}"
    frame = pd.DataFrame({"text": ["a ticket", "another ticket"], "labels": cells})
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_json(path, orient="records", lines=True)
    with pytest.raises(SynthDistillError, match=f"{path}: {message}"):
        prepare(path)


def test_the_demo_dataset_reads_whole():
    items = prepare(REPO / "data" / "demo" / "support_tickets.csv")
    assert len(items) == 153
    sizes = indicator_matrix(items["expert_label"], LABELS).sum(axis=1)
    assert {0, 1, 2, 3} <= set(sizes)


# --- vote ----------------------------------------------------------------------------------------


def iteration(answers: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"i{k}" for k in range(len(answers))], "label": answers})


ITEMS = pd.DataFrame({"id": ["i0", "i1", "i2", "i3"], "split": "train", "text": ["a", "b", "c", "d"]})


def test_a_label_is_kept_at_min_share_of_the_iterations_that_answered():
    iterations = [
        iteration(['["billing", "bug"]', '["praise"]', None, None]),
        iteration(['["billing"]', "[]", None, '["bug"]']),
        iteration(['["billing", "account"]', None, None, None]),
    ]
    votes = vote_label_sets(iterations, ITEMS, LABELS, min_share=0.5)
    # item 0: billing 3/3, bug 1/3 and account 1/3 fall below a half
    # item 1: praise 1 of the 2 that answered (the failure neither chooses nor rejects): kept
    # item 2: no answer, no vote; item 3: the one answer decides
    assert votes["label"].tolist()[:2] == ['["billing"]', '["praise"]'] and votes["label"].iloc[3] == '["bug"]'
    assert pd.isna(votes["label"].iloc[2])
    assert votes["vote_status"].tolist() == ["voted", "voted", "all_failed", "voted"]
    assert votes["share_bug"].tolist()[:2] == pytest.approx([1 / 3, 0.0])
    assert votes["agreement_bug"].tolist()[:2] == pytest.approx([2 / 3, 1.0])
    assert votes["agreement_praise"].iloc[1] == pytest.approx(0.5)
    assert np.isnan(votes["agreement_praise"].iloc[2])
    # whole-set agreement over all iterations: a failure is dissent
    assert votes["agreement"].tolist() == pytest.approx([1 / 3, 1 / 3, 0.0, 1 / 3])
    assert votes["n_answered"].tolist() == [3, 2, 0, 1]
    strict = vote_label_sets(iterations, ITEMS, LABELS, min_share=2 / 3)
    assert strict["label"].tolist()[:2] == ['["billing"]', "[]"]
    lenient = vote_label_sets(iterations, ITEMS, LABELS, min_share=0.3)
    assert lenient["label"].iloc[0] == '["billing", "bug", "account"]'


def test_iterations_over_other_items_stop_the_vote():
    with pytest.raises(SynthDistillError, match="iteration 1 does not cover the same items"):
        vote_label_sets([iteration(["[]"] * 4), iteration(["[]"] * 3)], ITEMS, LABELS, 0.5)


def test_vote_files(tmp_path):
    columns = {
        "split": "train",
        "cached": False,
        "parse_status": ["ok", "ok", "invalid_json", "ok"],
        "input_tokens": 10,
        "output_tokens": 5,
        "latency_s": 0.1,
        "raw_output": "x",
    }
    paths = []
    for number, answers in enumerate([['["bug"]', "[]", None, '["praise"]'], ['["bug"]', "[]", None, "[]"]]):
        paths.append(tmp_path / f"iter{number}.parquet")
        iteration(answers).assign(**columns).to_parquet(paths[-1])
    split = tmp_path / "train.parquet"
    ITEMS.assign(expert_label=['["bug"]', "[]", "[]", '["praise"]']).to_parquet(split)
    outputs = {k: str(tmp_path / f"votes.{k}") for k in ("votes", "train_csv", "stats")}
    write_votes([str(p) for p in paths], [str(split)], LABELS, {"min_share": 0.5}, outputs)
    train = pd.read_csv(outputs["train_csv"])
    assert train.columns.tolist() == ["text", "label", *LABELS]
    assert train["label"].tolist() == ['["bug"]', "[]", '["praise"]'] and train["bug"].tolist() == [1, 0, 0]
    stats = json.loads(open(outputs["stats"]).read())
    assert stats["annotation"]["parse_failures"] == 2
    assert stats["vote"]["all_failed"] == 1 and stats["vote"]["empty_sets"] == 1
    assert stats["vote"]["per_label"]["bug"]["kept"] == 1
    assert "expert_label" in pd.read_parquet(outputs["votes"])


# --- the real embedded teacher -------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_answers_a_label_set_under_constrained_decoding(smollm2_teacher, tmp_path):
    template = load_template(REPO / "config" / "prompts" / "labels_json.txt")
    texts = [
        "I was charged twice this month and the app crashes on login.",
        "Thank you, the new dashboard is wonderful.",
        "Where is your office?",
    ]
    prompts = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "split": "train",
            "text": texts,
            "messages": [json.dumps(messages_for(template, t, LABELS)) for t in texts],
        }
    )
    frame = annotate(
        prompts,
        smollm2_teacher,
        ResponseCache(tmp_path / "c.sqlite"),
        kind="labels_json",
        labels=LABELS,
        generation={"temperature": 0.7, "top_p": 0.95, "seed": 0, "max_tokens": 64, "structured": True},
        iteration=0,
        **annotate_settings(),
    )
    assert (frame["parse_status"] == "ok").all(), frame[["raw_output", "parse_status"]]
    for raw, label in zip(frame["raw_output"], frame["label"], strict=True):
        assert json.loads(raw)["labels"] is not None  # the grammar's object, not free text
        assert set(json.loads(label)) <= set(LABELS)
        assert label == label_set_json(json.loads(label), LABELS)


# --- the workflow --------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_example_config_plans_the_multi_label_stages(tmp_path):
    from .pipeline_helpers import copy_workflow, planned_jobs, rules_of

    workdir = copy_workflow(tmp_path)
    (workdir / "config" / "config.yaml").write_text((workdir / "config" / "examples" / "multi_label.yaml").read_text())
    # No target named: the task file's rule all must be the default target.
    assert rules_of(planned_jobs(workdir)) == {
        "prepare_data": 1,
        "build_prompts": 1,
        "annotate": 3,
        "gather_annotations": 3,
        "vote": 1,
        "import_review": 1,  # the reviewed sets (the votes, with no corrections file)
        "train_student": 2,  # on the reviewed sets and on the expert sets
        "evaluate_teacher": 1,
        "evaluate_student": 2,
        "compare_models": 1,
        "report": 1,
        "export_onnx": 2,
        "export_review": 1,
        "write_model_card": 2,
        "benchmark_student": 2,  # the report's student costs
    }
    # Its label_scores prompt (left out of run.prompts: five requests per text) is a valid prompt of the task.
    jobs = planned_jobs(workdir, "--config", "run={prompts: [yes_no]}")
    assert {w.get("prompt") for rule, w in jobs if rule == "annotate"} == {"yes_no"}


# --- student thresholds and metrics (no model) ---------------------------------------------------


def test_thresholds_are_tuned_per_label_on_validation():
    from synthdistill.students.multi_label_training import positive_weights, tune_thresholds

    truth = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]])
    probs = np.array([[0.30, 0.9, 0.60], [0.25, 0.8, 0.55], [0.10, 0.7, 0.52], [0.12, 0.6, 0.40]])
    thresholds = tune_thresholds(probs, truth, 1)
    # label 0 separates anywhere in (0.12, 0.25]: the grid value nearest 0.5 is 0.25
    # label 1 is never true on validation (below the floor of 1 positive): the global threshold, the
    # best micro F1 over all labels (0.25); label 2 needs a threshold in (0.40, 0.52]
    assert thresholds.tolist() == pytest.approx([0.25, 0.25, 0.5])
    assert positive_weights(truth.astype(float), "balanced").tolist() == [1.0, 1.0, 3.0]
    assert positive_weights(truth.astype(float), None).tolist() == [1.0, 1.0, 1.0]


def test_set_scores_match_scikit_learn_and_an_item_without_a_vote_is_the_empty_set():
    from sklearn.metrics import f1_score, hamming_loss

    from synthdistill.evaluation.multi_label_metrics import bootstrap_label_set_intervals, score_label_sets

    expert = pd.Series(['["billing", "bug"]', "[]", '["praise"]', '["account"]', '["bug"]'])
    predicted = pd.Series(['["billing"]', "[]", '["praise", "bug"]', None, '["bug"]'])
    metrics = score_label_sets(expert, predicted, LABELS)
    truth = indicator_matrix(expert, LABELS)
    guess = indicator_matrix(predicted.fillna("[]"), LABELS)
    assert metrics["f1_micro"] == pytest.approx(f1_score(truth, guess, average="micro"))
    assert metrics["f1_macro"] == pytest.approx(f1_score(truth, guess, average="macro", zero_division=0))
    assert metrics["hamming_loss"] == pytest.approx(hamming_loss(truth, guess))
    assert metrics["subset_accuracy"] == pytest.approx(2 / 5) and metrics["coverage"] == pytest.approx(4 / 5)
    assert metrics["per_label"]["bug"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2}
    intervals = bootstrap_label_set_intervals(expert, predicted, LABELS, resamples=200)
    low, high = intervals["f1_micro"]
    assert 0 <= low <= metrics["f1_micro"] <= high <= 1
