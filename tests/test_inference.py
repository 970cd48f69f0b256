"""Student training options, the ONNX int8 path, streamed predict, and the model card."""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.metrics.costs import HARDWARE_PRESETS, student_hardware, training_energy
from synthdistill.students.files import label_frames
from synthdistill.students.inference import (
    OnnxPredictor,
    TorchPredictor,
    load_predictor,
    predict_frame,
    write_onnx_export,
)
from synthdistill.students.model_card import card_text, push_student
from synthdistill.students.predict import main as predict_main
from synthdistill.students.predict import predict_file
from synthdistill.students.training import train

from .conftest import LABEL_DEFAULTS, LABELS, MINILM, PREDICT_DEFAULTS, REPO

DEMO = REPO / "data" / "demo" / "financial_news_sentiment.csv"


@pytest.fixture(scope="module")
def demo():
    frame = pd.read_csv(DEMO)
    return frame.assign(id=[f"d{i}" for i in range(len(frame))])


@pytest.fixture(scope="module")
def student(tmp_path_factory, demo):
    """A real MiniLM student, trained briefly on demo expert labels, with its ONNX int8 export."""
    folder = tmp_path_factory.mktemp("student")
    train_items = demo.iloc[:120]
    validation = demo.iloc[120:160]
    metadata = train(
        train_items,
        validation,
        LABELS,
        MINILM,
        {"learning_rate": 2e-4, "epochs": 2, "batch_size": 16, "max_length": 64, "seed": 1},
        folder / "model",
        trust_remote_code=False,
    )
    test = demo.iloc[160:240].rename(columns={"label": "expert_label"})
    test.to_parquet(folder / "test.parquet")
    check = write_onnx_export(
        str(folder / "model"),
        str(folder / "test.parquet"),
        [],
        64,
        str(folder / "onnx"),
        str(folder / "onnx_check.json"),
    )
    return {"dir": folder, "metadata": metadata, "check": check, "test": test}


@pytest.mark.slow
def test_int8_export_is_checked_against_torch_on_the_test_split(student):
    check = json.loads((student["dir"] / "onnx_check.json").read_text())
    assert check == student["check"]
    torch_labels = predict_frame(student["dir"] / "model", student["test"], 64)["label"]
    assert check["accuracy_torch"] == pytest.approx(
        (torch_labels.to_numpy() == student["test"]["expert_label"].to_numpy()).mean()
    )
    assert check["items"] == len(student["test"]) and check["quantization"] == "dynamic"
    assert check["same_label_share"] >= 0.9  # quantization moves few decisions
    assert 0 < check["size_mb"] < 40  # int8: about a quarter of MiniLM's 90 MB of fp32 weights


@pytest.mark.slow
def test_onnx_and_torch_predictors_agree_and_keep_input_order(student):
    texts = student["test"]["text"].tolist()
    reversed_texts = texts[::-1]
    torch_probs = TorchPredictor(student["dir"] / "model", 64, device="cpu").predict_proba(texts)
    onnx_probs = OnnxPredictor(student["dir"] / "onnx", 64, batch_size=7).predict_proba(texts)
    assert onnx_probs.shape == (len(texts), 3)
    np.testing.assert_allclose(onnx_probs.sum(axis=1), 1, atol=1e-5)
    assert (onnx_probs.argmax(1) == torch_probs.argmax(1)).mean() >= 0.9
    # Length-sorted batching must give every text its own probabilities back. Batches of one, because
    # dynamic int8 quantization scales activations per batch, so a text's neighbours move its
    # probabilities slightly; the fp32 torch model must match across batch sizes too.
    single = OnnxPredictor(student["dir"] / "onnx", 64, batch_size=1)
    np.testing.assert_allclose(single.predict_proba(reversed_texts)[::-1], single.predict_proba(texts), atol=1e-5)
    again = TorchPredictor(student["dir"] / "model", 64, batch_size=5, device="cpu").predict_proba(reversed_texts)
    np.testing.assert_allclose(again[::-1], torch_probs, atol=1e-4)


@pytest.mark.slow
def test_auto_backend_takes_onnx_on_cpu_and_torch_without_an_export(student):
    assert isinstance(load_predictor(student["dir"], "auto", 64, None), OnnxPredictor)
    assert isinstance(load_predictor(student["dir"] / "model", "auto", 64, None), TorchPredictor)
    with pytest.raises(SynthDistillError, match="no model.int8.onnx"):
        load_predictor(student["dir"] / "model", "onnx", 64, None)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_predict_streams_any_format_in_small_chunks_in_input_order(student, tmp_path, suffix, demo):
    texts = demo.iloc[:53][["id", "text"]]
    source = tmp_path / f"texts.{suffix}"
    {
        "csv": lambda: texts.to_csv(source, index=False),
        "jsonl": lambda: texts.to_json(source, orient="records", lines=True),
        "parquet": lambda: texts.to_parquet(source),
    }[suffix]()  # noqa: E501
    output = tmp_path / "out.parquet"
    summary = predict_file(
        student["dir"],
        source,
        output,
        **{**PREDICT_DEFAULTS, "id_column": "id", "batch_size": 1},
        max_length=64,
        chunk_rows=10,
        progress=False,
    )
    result = pd.read_parquet(output)
    assert summary["rows"] == 53 and summary["backend"] == "OnnxPredictor"
    assert result["row"].tolist() == list(range(53))
    assert result["id"].tolist() == texts["id"].tolist()
    assert list(result.columns) == ["row", "id", "label", "prob_positive", "prob_negative", "prob_neutral"]
    # Batches of one: int8 activation scales are per batch (see above), so compare like with like.
    whole = OnnxPredictor(student["dir"] / "onnx", 64, batch_size=1).predict_proba(texts["text"].tolist())
    np.testing.assert_allclose(result[["prob_positive", "prob_negative", "prob_neutral"]], whole, atol=1e-4)
    assert (result["label"] == np.array(LABELS)[whole.argmax(1)]).all()
    assert not output.with_name("out.parquet.partial").exists()


@pytest.mark.slow
def test_predict_names_the_file_and_row_of_bad_input(student, tmp_path, capsys):
    source = tmp_path / "texts.csv"
    # "NA" is a text; the blank line is an empty text (pandas would silently skip it by default).
    pd.DataFrame({"text": ["NA", "  ", "Sales fell."]}).to_csv(source, index=False)
    with pytest.raises(SynthDistillError, match=r"texts.csv: row 1 has an empty 'text'"):
        predict_file(
            student["dir"], source, tmp_path / "out.parquet", **PREDICT_DEFAULTS, max_length=64, progress=False
        )
    assert not (tmp_path / "out.parquet").exists()
    assert predict_main([str(student["dir"]), str(source), str(tmp_path / "o.parquet"), "--text-column", "body"]) == 2
    assert "texts.csv: no column 'body'" in capsys.readouterr().err


def test_agreement_options_filter_and_weight_only_teacher_training_labels(tmp_path):
    votes = pd.DataFrame(
        {
            "id": list("abcde"),
            "split": ["train", "train", "train", "validation", "test"],
            "text": list("abcde"),
            "label": ["positive", None, "negative", "neutral", "neutral"],
            "agreement": [1.0, 0.34, 0.67, 0.34, 1.0],
        }
    )
    votes.to_parquet(tmp_path / "votes.parquet")
    train_items, validation = label_frames(
        [str(tmp_path / "votes.parquet")], "t", **{**LABEL_DEFAULTS, "min_agreement": 0.9}
    )
    assert train_items["id"].tolist() == ["a"] and validation["id"].tolist() == ["d"]
    weighted, _ = label_frames(
        [str(tmp_path / "votes.parquet")], "t", **{**LABEL_DEFAULTS, "agreement_weighting": True}
    )
    assert weighted["weight"].tolist() == [1.0, 0.67]


@pytest.mark.slow
def test_zero_weight_items_teach_nothing(tmp_path, demo):
    """Weighting is real: with every non-positive item at weight 0, the student learns 'positive'."""
    items = demo.iloc[:48].assign(weight=lambda f: (f["label"] == "positive").astype(float))
    train(
        items,
        items.iloc[:0],
        LABELS,
        MINILM,
        {"learning_rate": 3e-4, "epochs": 2, "max_length": 32},
        tmp_path,
        trust_remote_code=False,
    )
    predicted = predict_frame(tmp_path, demo.iloc[200:240], 32)["label"]
    assert (predicted == "positive").all()


@pytest.mark.slow
def test_model_card_carries_labels_data_size_metrics_and_energy(student):
    metrics = {
        "n": 80,
        "accuracy": 0.9,
        "f1_macro": 0.88,
        "intervals": {"method": "bootstrap", "level": 0.95, "accuracy": [0.83, 0.96], "f1_macro": [0.8, 0.94]},
        "per_class": {label: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 20} for label in LABELS},
    }
    metadata = {**student["metadata"], "teacher": "smollm2", "prompt": "label", "label_options": {}}
    # The card prices training on the same costs.student_hardware settings as the decision report.
    hardware = student_hardware({"preset": "t4_reference"})
    text = card_text(metadata, metrics, hardware, student["check"], "single_label", None)
    assert text.startswith("---\n") and "pipeline_tag: text-classification" in text
    assert "teacher `smollm2` with prompt `label`" in text
    assert "| 1 | negative |" in text
    assert f"training items: {student['metadata']['train_examples']}" in text
    assert "| accuracy | 0.900 | 0.830 – 0.960 |" in text
    wh = 70 * student["metadata"]["train_seconds"] / 3600
    assert f"training energy {wh:.2f} Wh, {wh * 0.37:.2f} g CO2" in text
    assert f"accuracy {student['check']['accuracy_onnx_int8']:.3f}" in text
    assert training_energy(3600, {"power_w": None}) is None


def test_model_card_shows_every_label_as_written_never_as_markup():
    """Issue 25 (unclear item): a label such as <img src=x onerror=alert(1)> was written raw into README.md."""
    labels = ["<img src=x onerror=alert(1)>", "**bold** [link](x)", "under $5^$ deal", "R&D", "Sci/Tech"]
    metadata = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "teacher": "smollm2",
        "prompt": "label",
        "labels": labels,
        "label2id": {label: i for i, label in enumerate(labels)},
        "train_examples": 100,
        "validation_examples": 20,
        "hyperparameters": {
            "learning_rate": 5e-5,
            "batch_size": 16,
            "max_length": 128,
            "warmup_ratio": 0.1,
            "weight_decay": 0.01,
            "seed": 0,
        },
        "best_epoch": 1,
        "history": [{}],
        "train_seconds": 10.0,
        "device": "cpu",
    }
    per_class = {label: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 4} for label in labels}
    metrics = {
        "n": 20,
        "accuracy": 0.9,
        "f1_macro": 0.9,
        "intervals": {"method": "bootstrap", "level": 0.95, "accuracy": [0.8, 0.95], "f1_macro": [0.8, 0.95]},
        "per_class": per_class,
    }
    text = card_text(metadata, metrics, student_hardware({}), None, "single_label", None)
    assert "<img" not in text and "| 0 | &lt;img src=x onerror=alert(1)&gt; |" in text
    assert r"| 1 | \*\*bold\*\* \[link\](x) |" in text and r"under \$5^\$ deal" in text
    assert "R&amp;D" in text and "Sci/Tech" in text  # what needs no escaping stays as it reads
    markdown_it = pytest.importorskip("markdown_it")
    page = markdown_it.MarkdownIt("commonmark").enable("table").render(text)  # raw HTML allowed, as on the Hub
    assert "<img" not in page and "<strong>" not in page and "<a href" not in page
    for label in labels:
        assert page.count(html.escape(label, quote=False)) == 3  # the intended use, the labels, the scores


def test_student_hardware_presets_and_overrides():
    assert HARDWARE_PRESETS["t4_reference"] == {
        "name": "NVIDIA T4 (the reference case's assumptions)",
        "price_per_hour_usd": 0.6,
        "power_w": 70.0,
        "grid_kg_co2_per_kwh": 0.37,
    }
    # An explicit key overrides the preset; a null one (a schema default) does not.
    hardware = student_hardware({"preset": "t4_reference", "price_per_hour_usd": 0.9, "power_w": None})
    assert (hardware["price_per_hour_usd"], hardware["power_w"], hardware["preset"]) == (0.9, 70.0, "t4_reference")
    assert student_hardware({})["price_per_hour_usd"] is None
    with pytest.raises(SynthDistillError, match="costs.student_hardware.preset: unknown preset 'a100'"):
        student_hardware({"preset": "a100"})


@pytest.mark.slow
def test_push_without_a_token_names_the_variable(student, monkeypatch):
    monkeypatch.delenv("MY_HF_TOKEN", raising=False)
    with pytest.raises(SynthDistillError, match="MY_HF_TOKEN holds no Hugging Face token"):
        push_student(str(student["dir"] / "model"), "README.md", "me/student", token_env="MY_HF_TOKEN", private=True)
