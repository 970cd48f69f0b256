import copy

import pytest
import yaml
from snakemake.cli import parse_config
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from synthdistill import SynthDistillError
from synthdistill.schema import SCHEMA_PATH, typed_overrides
from synthdistill.settings import check_config, prompt_settings, teacher_settings

from .conftest import REPO


@pytest.fixture
def config(monkeypatch):
    monkeypatch.chdir(REPO)
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text()) | {"self_consistency": {"iterations": 3}}


def test_default_config_runs_everything(config):
    run = check_config(config)
    assert run["teachers"] == ["smollm2"]
    assert run["prompts"] == ["scores", "cot_json"]
    assert run["has_expert_labels"]


def test_unknown_names_in_run_selection(config):
    bad = copy.deepcopy(config)
    bad["run"] = {"teachers": ["gpt9"]}
    with pytest.raises(SynthDistillError, match=r"run.teachers: unknown name 'gpt9'"):
        check_config(bad)
    bad["run"] = {"students": ["bert-huge"]}
    with pytest.raises(SynthDistillError, match=r"run.students: unknown name 'bert-huge'"):
        check_config(bad)


def test_prompt_without_text_and_missing_dataset(config, tmp_path):
    template = tmp_path / "t.txt"
    template.write_text("no placeholder")
    bad = copy.deepcopy(config)
    bad["prompts"]["cot_json"]["template"] = str(template)
    with pytest.raises(SynthDistillError, match=r"prompts.cot_json.template: .*t.txt has no \{text\}"):
        check_config(bad)
    bad = copy.deepcopy(config)
    bad["dataset"]["path"] = "missing.csv"
    with pytest.raises(SynthDistillError, match="dataset.path: file missing.csv does not exist"):
        check_config(bad)


def test_a_placeholder_with_spaces_stops_the_run_before_any_job(config, tmp_path):
    """Issue 25, item 14: '{ labels }' was sent to the teacher as written, 40 requests paid."""
    template = tmp_path / "spaced.txt"
    template.write_text("Classify the text as one of { labels }.\n\nText: {text}\nLabel:")
    bad = copy.deepcopy(config)
    bad["prompts"]["cot_json"]["template"] = str(template)
    with pytest.raises(SynthDistillError, match=r"prompts.cot_json.template: .*spaced.txt: line 1: '\{ labels \}'"):
        check_config(bad)


def test_price_is_not_an_annotation_param(config):
    assert "price" not in teacher_settings(config, "smollm2")
    assert prompt_settings(config, "scores")["kind"] == "label_scores"


def test_labels_differing_only_in_case_are_refused(config):
    bad = copy.deepcopy(config)
    bad["labels"] = ["Bullish", "bearish", "bullish"]
    with pytest.raises(SynthDistillError, match=r"'Bullish' and 'bullish' differ only in case"):
        check_config(bad)


def test_a_label_ending_with_a_line_break_is_refused(config):
    bad = copy.deepcopy(config)
    bad["labels"] = ["positive\n", "negative"]  # the schema's pattern lets a final newline through
    with pytest.raises(SynthDistillError, match=r"labels: 'positive\\n' begins or ends with a space or a line break"):
        check_config(bad)


def test_prefix_labels_are_refused_for_first_token_scores_over_http(config):
    bad = copy.deepcopy(config)
    bad["labels"] = ["neg", "negative", "neutral"]
    bad["prompts"]["scores"] = {"template": "config/prompts/label.txt", "kind": "label_scores", "calibrate": True}
    check_config(bad)  # the in-process teacher scores whole labels itself
    bad["teachers"]["api"] = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1"}
    with pytest.raises(SynthDistillError, match=r"teachers.api with prompts.scores.*'neg' is a prefix of 'negative'"):
        check_config(bad)
    bad["run"] = {"prompts": ["cot_json"]}  # a generated answer has no such problem
    check_config(bad)


def test_labels_sharing_a_first_word_are_refused_for_first_token_scores_over_http(config):
    """Issue 25, item 4: the first answer token of "very negative" and "very positive" is at most "very"."""
    bad = copy.deepcopy(config)
    bad["labels"] = ["very negative", "very positive", "neutral"]
    bad["prompts"]["scores"] = {"template": "config/prompts/label.txt", "kind": "label_scores"}
    check_config(bad)  # the in-process teacher scores each label's whole token sequence
    bad["teachers"]["api"] = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1"}
    with pytest.raises(
        SynthDistillError,
        match=r"teachers.api with prompts.scores .*'very negative' and 'very positive' share their first token: "
        r"the first token of 'very negative' is at most 'very'.*aliases: letters",
    ):
        check_config(bad)
    bad["prompts"]["scores"]["aliases"] = "letters"  # the teacher answers A, B or C
    check_config(bad)


@pytest.mark.parametrize(
    "labels, clash",
    [
        (["very negative", "very positive", "neutral"], ("very negative", "very positive", "very")),
        (["$", "$$", "$$$"], ("$", "$$", "$")),
        (["under $5 deal", "under $50 deal"], ("under $5 deal", "under $50 deal", "under")),
        (["$5 off", "$6 off"], ("$5 off", "$6 off", "$")),
        (["U.S.", "UK", "EU"], ("U.S.", "UK", "u")),
        (["1 star", "10 stars"], ("1 star", "10 stars", "1")),
        # "bull market" begins with at most "bull", which begins "Bullish" too; "Bullish" alone would be seen.
        (["Bullish", "bull market"], ("bull market", "Bullish", "bull")),
        (["Bullish", "Bearish"], None),
        (["positive", "negative", "neutral"], None),
        (["World", "Sports", "Business", "Sci/Tech"], None),
        (["(a) yes", "(b) no"], None),
        (["100 stars", "1000 stars"], ("100 stars", "1000 stars", "100")),
    ],
)
def test_first_token_clashes(labels, clash):
    from synthdistill.annotation.teachers.chat_api import first_token_clash

    assert first_token_clash(labels) == clash


def test_nested_command_line_values_are_typed_against_the_schema(config):
    """Snakemake reads ``--config 'key={...}'`` with YAML's BaseLoader: every nested value a string."""
    overrides = parse_config(
        [
            "self_consistency={iterations: 1}",
            'annotate={"local": true, "shards": 2}',
            "vote={min_share: 0.4}",
            "run={prompts: [label]}",
        ]
    )
    assert overrides["self_consistency"] == {"iterations": "1"}  # what Snakemake hands over
    merged = copy.deepcopy(config)
    for key, value in overrides.items():
        merged[key] = {**merged.get(key, {}), **value}
    with pytest.raises(WorkflowError):
        validate(copy.deepcopy(merged), str(SCHEMA_PATH))
    typed = typed_overrides(merged)
    validate(typed, str(SCHEMA_PATH))
    assert typed["self_consistency"]["iterations"] == 1
    assert typed["annotate"]["local"] is True and typed["annotate"]["shards"] == 2
    assert typed["vote"]["min_share"] == 0.4
    assert typed["run"]["prompts"] == ["label"]
    # A string where the schema wants a number stays a string, so validation still names it.
    assert typed_overrides({"self_consistency": {"iterations": "three"}}) == {
        "self_consistency": {"iterations": "three"}
    }
    # A key that also takes a string is left as written.
    assert typed_overrides({"teachers": {"t": {"model": "7"}}})["teachers"]["t"]["model"] == "7"
