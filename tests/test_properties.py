"""Property-based tests (hypothesis) of the stages that see user data, from the raw file to the review
files and back: whatever the texts, labels and ids, either prepare_data stops before the first
request with a message that names a row or a config key, or every stage succeeds and a reviewer's
corrections come back exactly.

The teacher here is scripted (deterministic, sometimes off-format): these tests are about the data
path, not about annotation quality, which the real-LLM tests cover."""

from __future__ import annotations

import hashlib
import html
import json
import re
import tempfile
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from synthdistill import SynthDistillError, data
from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.parsing import parse
from synthdistill.annotation.prompts import messages_for
from synthdistill.annotation.requests import build_request
from synthdistill.annotation.teachers.base import Completion, Request
from synthdistill.labels.corrections import apply_corrections, read_corrections
from synthdistill.labels.review import review_table, score_items, write_review_files
from synthdistill.labels.vote import vote
from synthdistill.schema import SCHEMA_PATH
from synthdistill.settings import check_labels
from synthdistill.tasks.base import OK, Parsed, match_label
from synthdistill.tasks.multi_label import label_set_json

from .conftest import REVIEW_CV, annotate_settings

# The label strings the config accepts: the schema's (read from it, never copied) and settings.check_labels.
LABELS_SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["labels"]
LABEL_PATTERN = re.compile(LABELS_SCHEMA["items"]["pattern"])
SPLIT = {"test_size": 0.2, "validation_size": 0.2, "seed": 1}
GENERATION = {"max_tokens": 8, "temperature": 0.7, "top_p": 1.0, "seed": 0}
TEMPLATE = "Label this as one of {labels}.\n\n{text}"


class ScriptedTeacher:
    """Answers a label chosen by a hash of the request, or (one time in seven) something off-format."""

    identity = {"backend": "scripted", "model": "hash"}
    max_concurrency = 4

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self.calls = 0

    def render(self, messages: list[dict[str, str]]) -> str:
        return json.dumps(messages, ensure_ascii=False)

    def complete(self, request: Request) -> Completion:
        self.calls += 1
        digest = int(hashlib.sha256(json.dumps(request.as_dict(), sort_keys=True).encode()).hexdigest(), 16)
        if digest % 7 == 0:
            return Completion(text="I am not sure.", input_tokens=10, output_tokens=4)
        return Completion(text=self.labels[digest % len(self.labels)], input_tokens=10, output_tokens=1)


def schema_accepts(labels: list[str]) -> bool:
    """Whether a config with these labels passes the schema (as Snakemake validates it) and check_labels."""
    if not jsonschema.Draft202012Validator(LABELS_SCHEMA).is_valid(labels):
        return False
    try:
        check_labels(labels)
    except SynthDistillError:
        return False
    return True


# Any text, and text made of the characters that markup, mathtext, Markdown and HTML give a meaning to.
MARKUP = " \t\"'`*_.:;!()[]{}$^\\<>&#%~=+-/?@,"
label_text = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12),
    st.text(alphabet=st.sampled_from([*MARKUP, "a", "B", "é", "€", "😀", "\u2028", "\x85"]), min_size=1, max_size=10),
).filter(lambda s: bool(LABEL_PATTERN.search(s)))
label_sets = st.lists(label_text, min_size=2, max_size=4, unique_by=str.lower).filter(schema_accepts)
# Texts with anything in them: controls, spaces, quotes, formula starts, other scripts.
texts = st.one_of(
    st.text(min_size=1, max_size=40),
    st.text(min_size=0, max_size=3),
    st.builds(
        lambda p, t: p + t, st.sampled_from(["=", "+", "-", "@", "\t", "=cmd|' /C calc'!A0 "]), st.text(max_size=20)
    ),
    st.text(alphabet="abc \x00\x01\x0b\r\n\"',;", min_size=1, max_size=15),
)
printable_ids = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=8)
# Anything at all: duplicates, blanks, control characters, numbers next to strings.
ids = st.one_of(st.integers(-(10**6), 10**6), st.text(min_size=1, max_size=8))


@st.composite
def datasets(draw):
    labels = draw(label_sets)
    n = draw(st.integers(min_value=15, max_value=40))
    id_kind = draw(st.sampled_from(["none", "int", "str", "mixed"]))
    row_ids = {
        "none": None,
        "int": draw(st.lists(st.integers(-(10**6), 10**6), min_size=n, max_size=n, unique=True)),
        "str": draw(st.lists(printable_ids, min_size=n, max_size=n, unique_by=str.strip)),
        "mixed": draw(st.lists(ids, min_size=n, max_size=n)),
    }[id_kind]
    # Mostly known labels, sometimes a missing one; the text makes each row distinct most of the time.
    rows = draw(st.lists(st.tuples(texts, st.one_of(st.sampled_from(labels), st.none())), min_size=n, max_size=n))
    fmt = draw(st.sampled_from([".csv", ".jsonl", ".parquet"] if id_kind != "mixed" else [".csv", ".jsonl"]))
    frame = pd.DataFrame({"text": [r[0] for r in rows], "label": [r[1] for r in rows]})
    if row_ids is not None:
        frame.insert(0, "doc", row_ids)
    return labels, frame, fmt


def write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path)


def names_a_row_or_key(message: str) -> bool:
    return bool(re.search(r"\brows? \[?\d+|dataset\.\w+|split\.\w+", message))


def run_stages(workdir: Path, labels: list[str], frame: pd.DataFrame, fmt: str) -> None:
    path = workdir / f"data{fmt}"
    write(frame, path)
    settings_ = {"path": str(path), "text_column": "text", "label_column": "label"}
    if "doc" in frame:
        settings_["id_column"] = "doc"
    teacher = ScriptedTeacher(labels)
    try:
        items, _ = data.prepare(settings_, labels, SPLIT, "single_label")
    except SynthDistillError as exc:
        assert names_a_row_or_key(str(exc)), str(exc)
        assert teacher.calls == 0
        event(f"stopped: {re.sub(r'.*?: ', '', str(exc), count=1)[:40]}")
        return
    assert items["id"].is_unique and items["text"].str.len().min() > 0
    assert not items["text"].str.contains(data.CONTROL_CHARACTERS).any()

    prompts = items[["id", "split", "text"]].assign(
        messages=[json.dumps(messages_for(TEMPLATE, t, labels)) for t in items["text"]]
    )
    cache = ResponseCache(workdir / "cache.sqlite")
    iterations = [
        annotate(
            prompts,
            teacher,
            cache,
            kind="label",
            labels=labels,
            generation=GENERATION,
            iteration=i,
            **annotate_settings(max_failure_share=1.0),
        )
        for i in range(2)
    ]
    votes = vote(iterations, items, labels, "label_order")
    assert votes["id"].tolist() == items["id"].tolist()

    annotators = pd.DataFrame({f"t/p/iter{i}": f.set_index("id")["label"] for i, f in enumerate(iterations)}).reindex(
        votes["id"]
    )
    scores = score_items(
        votes, annotators, labels, features="tfidf", embedding_model=None, cv_folds=2, seed=REVIEW_CV["seed"]
    )
    table = review_table(votes, scores, {f"t/p/iter{i}": f for i, f in enumerate(iterations)}, labels)
    outputs = {
        "csv": workdir / "r.csv",
        "xlsx": workdir / "r.xlsx",
        "argilla": workdir / "r.argilla.json",
        "label_studio": workdir / "r.ls.json",
        "label_studio_config": workdir / "r.ls.xml",
    }
    write_review_files(table, labels, "scripted", {k: str(v) for k, v in outputs.items()})

    # A reviewer edits the spreadsheet: the first rows get the next label over.
    for kind in ("csv", "xlsx"):
        reviewed = (
            pd.read_csv(outputs["csv"], dtype=str, keep_default_na=False)
            if kind == "csv"
            else pd.read_excel(outputs["xlsx"], dtype=str, keep_default_na=False)
        )
        chosen = reviewed.head(3)
        new = [labels[(labels.index(v) + 1) % len(labels)] if v in labels else labels[0] for v in chosen["voted_label"]]
        corrections_path = workdir / f"corrections.{kind}"
        # The file a person saves keeps the review file's cell values as they are.
        edited = pd.DataFrame({"id": chosen["id"].tolist(), "label": new})
        if kind == "csv":
            edited.to_csv(corrections_path, index=False)
        else:
            edited.to_excel(corrections_path, index=False)
        _, audit = apply_corrections(votes, read_corrections(corrections_path), labels, str(corrections_path))
        expected_ids = table["id"].astype(str).head(3).tolist()
        assert audit.sort_values("row")["id"].tolist() == expected_ids
        assert audit.sort_values("row")["new_label"].tolist() == new
    event("every stage ran")


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(datasets())
# Found by a CI run: a label "=0" saved to an XLSX by a script is a formula with no computed value.
@example(
    (
        ["=0", "0"],
        pd.DataFrame({"text": ["0"] * 13 + ["1", "00"], "label": ["=0"] * 11 + [None, None, "=0", "=0"]}),
        ".csv",
    )
)
def test_every_dataset_either_stops_naming_a_row_or_goes_through_every_stage(case):
    labels, frame, fmt = case
    assume(len(frame) > 0)
    with tempfile.TemporaryDirectory() as workdir:
        run_stages(Path(workdir), labels, frame, fmt)


# -- issue 25: every label the schema accepts parses, decodes and renders ----------------------------

WRAPPERS = st.text(alphabet=" \"'`*_.:;!()[]", max_size=3)


@settings(max_examples=300, deadline=None)
@given(label_sets, st.data())
@example(["Other (specify)", "U.S.", "neutral"], None)
@example(["$", "$$", "$$$"], None)
@example(["U.S", "U.S.", "(U.S.)"], None)
def test_an_exact_label_parses_to_itself_and_a_wrapped_one_to_no_other(labels, data):
    for label in labels:
        assert parse("label", label, labels) == Parsed(label, None, OK)
        assert parse("label", f"{label}\nBecause the text says so.", labels).label == label
        assert parse("cot_json", json.dumps({"reason": "r", "label": label}), labels).label == label
        chosen = parse("labels_json", json.dumps({"labels": [label]}, ensure_ascii=False), labels)
        assert chosen.label == label_set_json([label], labels)
        if data is None:
            continue
        # Wrapped in markup: this label, or nothing when another label could explain the answer too.
        answer = data.draw(WRAPPERS) + label + data.draw(WRAPPERS)
        found = match_label(answer, labels)
        others_inside = [other for other in labels if other != label and other.lower() in answer.lower()]
        assert found == label or (found is None and others_inside) or (found in others_inside)


# Grammar-constrained sampling checks the whole vocabulary at every token (seconds per answer on 2 cores):
# few examples, one forced answer each; the answer free among all labels for the examples below.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@settings(max_examples=4, deadline=None)
@given(label_sets, st.data())
@example(["Other (specify)", "U.S.", "neutral"], None)
@example(["\U0004e3c2", "\U0001f600 $5^$"], None)  # no token for the first byte of U+4E3C2; an emoji
def test_constrained_decoding_of_any_label_set_answers_a_label_that_parses_to_itself(smollm2_teacher, labels, data):
    """Through the real llama.cpp grammar and SmolLM2: forced to one label, the answer is that label and
    parses to it; free to choose among all, the answer is one of them, exactly, and parses to it. A label
    the model's vocabulary cannot spell is refused by name (llama.cpp used to abort the process)."""
    forced = labels[0] if data is None else data.draw(st.sampled_from(labels))
    messages = messages_for(TEMPLATE, "The quarterly results were in line with forecasts.", labels)
    generation = {"max_tokens": 64, "temperature": 0.0, "top_p": 1.0, "seed": 0, "structured": True}
    llm = smollm2_teacher.llm

    def spelled(label: str) -> bool:
        return llm.detokenize(llm.tokenize(label.encode(), add_bos=False, special=False)) == label.encode()

    for choices in [[forced]] + ([labels] if data is None else []):
        request = build_request(messages, "label", choices, generation, 0)
        unspelled = [label for label in choices if not spelled(label)]
        if unspelled:
            event("a label the vocabulary cannot spell")
            with pytest.raises(SynthDistillError, match=re.escape(f"label {unspelled[0]!r} cannot be written")):
                smollm2_teacher.complete(request)
            continue
        answer = smollm2_teacher.complete(request).text
        assert answer in choices and parse("label", answer, labels).label == answer


three_labels = st.lists(label_text, min_size=3, max_size=3, unique_by=str.lower).filter(schema_accepts)


# A whole report per example (figures, tables, Markdown and HTML): a few seconds each.
@pytest.mark.filterwarnings("ignore")
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(three_labels)
@example(["$", "$$", "$$$"])
@example(["under $5^$ deal", "<img src=x onerror=alert(1)>", "'"])
def test_the_report_draws_every_figure_and_table_whatever_the_labels(labels):
    """Issue 25, item 5: a '$' in a label made matplotlib read it as mathtext and the report fail."""
    from PIL import Image

    from synthdistill.reporting.report import build

    from .test_report import report_inputs

    with tempfile.TemporaryDirectory() as workdir:
        inputs = report_inputs(Path(workdir), True, labels)
        build(**inputs)
        for figure in inputs["outputs"]["figures"].values():
            assert Image.open(figure).size[0] > 100
        page = Path(inputs["outputs"]["html"]).read_text()
        markdown = Path(inputs["outputs"]["markdown"]).read_text()
        # The majority-class baseline is named by its label in the tables and the quality figure.
        majority = f"baseline: majority class ({labels[2]})"
        assert majority in html.unescape(page) and majority in markdown
