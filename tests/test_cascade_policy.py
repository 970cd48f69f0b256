import json

import numpy as np
import pytest

from synthdistill import SynthDistillError
from synthdistill.students.cascade_policy import CascadePolicy

PROBABILITIES = np.array(
    [
        [0.90, 0.05, 0.05],  # sure
        [0.50, 0.45, 0.05],  # two labels compete
        [0.40, 0.30, 0.30],  # unsure, but a clear runner-up margin
        [1.00, 0.00, 0.00],  # a zero probability must not break the log
    ]
)


def test_temperature_one_changes_nothing_and_higher_temperature_flattens():
    assert CascadePolicy("max_prob", 1.0, 0.5).scaled(PROBABILITIES) == pytest.approx(PROBABILITIES, abs=1e-9)
    hot = CascadePolicy("max_prob", 2.0, 0.5).scaled(PROBABILITIES)
    # softmax(log p / 2) is sqrt(p) renormalised
    expected = np.sqrt(PROBABILITIES[0]) / np.sqrt(PROBABILITIES[0]).sum()
    assert hot[0] == pytest.approx(expected)
    assert hot.sum(axis=1) == pytest.approx(np.ones(4))
    assert (hot.max(axis=1)[:3] < PROBABILITIES.max(axis=1)[:3]).all()
    assert (hot.argmax(axis=1) == PROBABILITIES.argmax(axis=1)).all()  # scaling never changes the answer


def test_confidences_and_deferral_for_each_kind():
    max_prob = CascadePolicy("max_prob", 1.0, 0.6)
    assert max_prob.confidences(PROBABILITIES) == pytest.approx([0.90, 0.50, 0.40, 1.0])
    assert max_prob.defer(PROBABILITIES).tolist() == [False, True, True, False]
    margin = CascadePolicy("margin", 1.0, 0.08)
    assert margin.confidences(PROBABILITIES) == pytest.approx([0.85, 0.05, 0.10, 1.0])
    assert margin.defer(PROBABILITIES).tolist() == [False, True, False, False]
    assert not CascadePolicy("margin", 1.0, 0.0).defer(PROBABILITIES).any()


def test_round_trip_through_the_cascade_artifact(tmp_path):
    policy = CascadePolicy("margin", 1.7, 0.25)
    path = tmp_path / "prompt.json"
    path.write_text(json.dumps({"policy": policy.to_dict(), "student": "s", "labels": ["a", "b", "c"]}))
    assert CascadePolicy.from_file(path) == policy
    assert policy.to_dict() == {"confidence": "margin", "temperature": 1.7, "threshold": 0.25}


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        ("{", "not valid JSON"),
        ('{"student": "s"}', "no 'policy'"),
        ('{"policy": {"confidence": "entropy", "temperature": 1, "threshold": 0.5}}', "unknown confidence"),
        ('{"policy": {"confidence": "margin", "temperature": 0, "threshold": 0.5}}', "temperature"),
        ('{"policy": {"confidence": "margin", "threshold": 0.5}}', "lacks temperature"),
    ],
)
def test_bad_cascade_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "cascade.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SynthDistillError, match=message) as error:
        CascadePolicy.from_file(path)
    assert str(path) in str(error.value)


def test_bad_probability_shapes_are_refused():
    with pytest.raises(SynthDistillError, match="shape"):
        CascadePolicy("max_prob", 1.0, 0.5).defer(np.array([0.2, 0.8]))
