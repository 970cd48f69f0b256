"""Task spans student and metrics: BIO tags through the real MiniLM tokenizer's offsets (subword
splits, repeated mentions, adjacent entities), decoding back to character spans, entity-level scores."""

from __future__ import annotations

import numpy as np
import pytest

from synthdistill.data.model_refs import resolve_model_ref
from synthdistill.metrics.spans import bootstrap_entity_intervals, entity_scores
from synthdistill.students.token_classification import IGNORED, align, bio_tags, decode
from synthdistill.tasks.spans import Span

from .conftest import MINILM

LABELS = ["ORG", "PERSON", "MONEY", "LOCATION"]
TAGS = bio_tags(LABELS)
TAG_IDS = {tag: i for i, tag in enumerate(TAGS)}
TEXT = "Kalinda Mining paid SEK 2.10 to Kalinda Mining owners in Lagos."
SPANS = [Span(0, 14, "ORG"), Span(20, 28, "MONEY"), Span(32, 46, "ORG"), Span(57, 62, "LOCATION")]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_ref(MINILM))


def offsets_of(tokenizer, text):
    return [tuple(o) for o in tokenizer(text, return_offsets_mapping=True)["offset_mapping"]]


def test_bio_tags_are_o_then_b_and_i_per_label():
    assert TAGS[:3] == ["O", "B-ORG", "I-ORG"] and len(TAGS) == 1 + 2 * len(LABELS)


def test_subword_pieces_of_a_mention_are_b_then_i_and_specials_are_ignored(tokenizer):
    offsets = offsets_of(tokenizer, TEXT)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(TEXT)["input_ids"])
    tagged = [
        (token, TAGS[c] if c != IGNORED else None)
        for token, c in zip(tokens, align(offsets, SPANS, TAG_IDS), strict=True)
    ]
    # "Kalinda" is two word pieces and "SEK" two more: every piece is tagged, the first with B-.
    assert tagged[:4] == [("[CLS]", None), ("kali", "B-ORG"), ("##nda", "I-ORG"), ("mining", "I-ORG")]
    assert tagged[5:10] == [
        ("se", "B-MONEY"),
        ("##k", "I-MONEY"),
        ("2", "I-MONEY"),
        (".", "I-MONEY"),
        ("10", "I-MONEY"),
    ]
    # The repeated mention starts its own span with B-.
    assert tagged[11:15] == [("kali", "B-ORG"), ("##nda", "I-ORG"), ("mining", "I-ORG"), ("owners", "O")]
    assert tagged[-1] == ("[SEP]", None)


def test_decoding_the_aligned_tags_gives_back_the_character_spans(tokenizer):
    offsets = offsets_of(tokenizer, TEXT)
    assert decode(offsets, align(offsets, SPANS, TAG_IDS), TAGS) == SPANS
    text = "Acme Globex paid."
    adjacent = [Span(0, 4, "ORG"), Span(5, 11, "ORG")]
    offsets = offsets_of(tokenizer, text)
    assert decode(offsets, align(offsets, adjacent, TAG_IDS), TAGS) == adjacent  # B- splits two mentions


def test_decoding_reads_i_after_o_as_a_start_and_a_type_change_as_a_new_span():
    offsets = [(0, 0), (0, 4), (5, 9), (10, 13), (14, 18), (0, 0)]
    tags = ["O", "I-ORG", "I-ORG", "O", "I-PERSON", "O"]
    assert decode(offsets, [TAG_IDS[t] for t in tags], TAGS) == [Span(0, 9, "ORG"), Span(14, 18, "PERSON")]
    tags = ["O", "B-ORG", "I-PERSON", "O", "O", "O"]
    assert decode(offsets, [TAG_IDS[t] for t in tags], TAGS) == [Span(0, 4, "ORG"), Span(5, 9, "PERSON")]


def test_entity_scores_count_only_exact_boundaries_and_type():
    expert = [[Span(0, 4, "ORG"), Span(10, 15, "PERSON")], [Span(0, 3, "MONEY")], []]
    predicted = [[Span(0, 4, "ORG"), Span(10, 14, "PERSON")], [Span(0, 3, "ORG")], [Span(1, 2, "LOCATION")]]
    scores = entity_scores(expert, predicted, LABELS)
    # 1 true positive of 4 predicted and 3 expert spans: the cut-short PERSON and the mistyped MONEY miss.
    assert (scores["precision"], scores["recall"]) == (0.25, 1 / 3)
    assert scores["f1"] == pytest.approx(2 / 7)
    assert scores["per_label"]["ORG"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert scores["per_label"]["LOCATION"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert entity_scores(expert, expert, LABELS)["f1"] == 1.0


def test_bootstrap_intervals_resample_texts_and_hold_the_point_estimate():
    rng = np.random.default_rng(0)
    expert = [[Span(0, 4, "ORG")] for _ in range(60)]
    predicted = [[Span(0, 4, "ORG")] if rng.random() < 0.7 else [Span(0, 3, "ORG")] for _ in range(60)]
    point = entity_scores(expert, predicted, LABELS)["f1"]
    intervals = bootstrap_entity_intervals(expert, predicted, LABELS, resamples=500)
    low, high = intervals["f1"]
    assert low < point < high and high - low < 0.4
    assert intervals["per_label_f1"]["ORG"] == intervals["f1"]  # one type: per-type equals micro
    assert bootstrap_entity_intervals(expert, expert, LABELS, resamples=100)["f1"] == [1.0, 1.0]
