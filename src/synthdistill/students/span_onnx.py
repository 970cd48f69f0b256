"""The int8 ONNX export of a spans student and its check against torch on the test split: the
same decoding to character spans, so the two differ only where a token's class differs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthdistill.metrics.spans import entity_scores, write_json
from synthdistill.students.inference import ONNX_FILE, export_onnx, quantization_of
from synthdistill.students.token_classification import SpanPredictor
from synthdistill.tasks.spans import from_json


class OnnxSpanPredictor(SpanPredictor):
    """Spans from the int8 ONNX export, run by onnxruntime on the CPU."""

    def __init__(self, onnx_dir: str | Path, max_length: int, batch_size: int = 32, threads: int | None = None):
        import onnxruntime
        from transformers import AutoConfig, AutoTokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            str(Path(onnx_dir) / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )
        config = AutoConfig.from_pretrained(onnx_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(onnx_dir)
        self.max_length, self.batch_size = max_length, batch_size
        self.tags = [config.id2label[i] for i in range(config.num_labels)]

    def classes(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})
        return logits.argmax(-1)


def onnx_span_check(
    model_dir: str | Path,
    onnx_dir: str | Path,
    texts: list[str],
    expert: list[str] | None,
    labels: list[str],
    max_length: int,
) -> dict[str, Any]:
    """How the int8 model's spans differ from the torch model's on the same texts (the test split)."""
    torch_spans = SpanPredictor.load(model_dir, max_length).predict(texts)
    onnx_spans = OnnxSpanPredictor(onnx_dir, max_length).predict(texts)
    same = [set(a) == set(b) for a, b in zip(torch_spans, onnx_spans, strict=True)]
    check: dict[str, Any] = {
        "items": len(texts),
        "quantization": quantization_of(Path(onnx_dir) / ONNX_FILE),
        "same_spans_share": float(np.mean(same)) if texts else None,
        "entity_f1_onnx_vs_torch": entity_scores(torch_spans, onnx_spans, labels)["f1"] if texts else None,
    }
    if expert is not None and texts:
        gold = [from_json(a) for a in expert]
        check["entity_f1_torch"] = entity_scores(gold, torch_spans, labels)["f1"]
        check["entity_f1_onnx_int8"] = entity_scores(gold, onnx_spans, labels)["f1"]
        check["entity_f1_difference_points"] = 100 * (check["entity_f1_onnx_int8"] - check["entity_f1_torch"])
    return check


def write_span_onnx_export(
    model_dir: str, test_path: str, labels: list[str], max_length: int, output_dir: str, check_path: str
) -> dict[str, Any]:
    """The spans export_onnx rule: the int8 ONNX folder plus its check against torch on the test split."""
    if Path(output_dir).exists():
        shutil.rmtree(output_dir)
    export_onnx(model_dir, output_dir, token_classification=True)
    test = pd.read_parquet(test_path)
    expert = None
    if "expert_label" in test and test["expert_label"].notna().all():
        expert = test["expert_label"].tolist()
    check = onnx_span_check(model_dir, output_dir, test["text"].tolist(), expert, labels, max_length)
    check["size_mb"] = round((Path(output_dir) / ONNX_FILE).stat().st_size / 1e6, 1)
    write_json(check, check_path)
    return check
