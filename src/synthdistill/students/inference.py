"""Fast student inference: the part of the product that replaces the paid LLM call.

Two paths share one batching scheme (tokenize once, sort by token length, pad each batch only to
its own longest text, restore input order):

- torch: on a GPU in bf16 with SDPA attention, with the next chunk tokenized on a thread while the
  GPU works on this one; on a CPU in fp32.
- onnx: the student exported to ONNX with int8 weights (``export_onnx``), the fast path on CPUs;
  ``onnx_agreement`` records how far its answers are from torch's.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.data.text_batches import LengthSortedBatches
from synthdistill.tasks import MULTI_LABEL, SINGLE_LABEL, SPANS

log = logging.getLogger(__name__)

ONNX_FILE = "model.int8.onnx"
ONNX_FLOAT_FILE = "model.onnx"
QUANTIZATIONS = ("dynamic", "weight_only")


class Predictor(Protocol):
    labels: list[str]

    def predict_proba(self, texts: list[str]) -> np.ndarray: ...


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def _labels(config) -> list[str]:
    return [config.id2label[i] for i in range(config.num_labels)]


def student_task(model_dir: str | Path) -> str:
    """The task kind of the student in a folder (its ``model/``, its ``onnx/`` or the folder itself),
    from the config.json saved with the model: a token-classification head answers spans, problem_type
    ``multi_label_classification`` label sets, any other head one label. How predict and the service
    pick their path for a folder; a folder without a config is a single_label student's."""
    path = Path(model_dir)
    for folder in (path / "model", path / "onnx", path):
        if (folder / "config.json").exists():
            config = json.loads((folder / "config.json").read_text())
            if any(name.endswith("ForTokenClassification") for name in config.get("architectures") or []):
                return SPANS
            return MULTI_LABEL if config.get("problem_type") == "multi_label_classification" else SINGLE_LABEL
    return SINGLE_LABEL


def _is_multi_label(config) -> bool:
    """A multi_label student scores each label on its own (sigmoid), a single-label one softmaxes."""
    return getattr(config, "problem_type", None) == "multi_label_classification"


def _thresholds(config) -> np.ndarray | None:
    """A multi_label student's per-label decision thresholds, tuned on the validation split and saved
    in its config.json (``label_thresholds``), so they travel with the ONNX export; 0.5 where unset."""
    if not _is_multi_label(config):
        return None
    saved = getattr(config, "label_thresholds", None) or {}
    return np.array([float(saved.get(label, 0.5)) for label in _labels(config)], dtype=np.float32)


class TorchPredictor:
    """The student as trained, in torch: bf16 + SDPA on a GPU, fp32 on a CPU."""

    def __init__(self, model_dir: str | Path, max_length: int, batch_size: int | None = None, device=None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        on_gpu = self.device.type == "cuda"
        self.model = (
            AutoModelForSequenceClassification.from_pretrained(
                model_dir,
                use_safetensors=True,
                attn_implementation="sdpa",
                dtype=torch.bfloat16 if on_gpu else torch.float32,
            )
            .to(self.device)
            .eval()
        )
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.labels = _labels(self.model.config)
        self.multi_label = _is_multi_label(self.model.config)
        self.thresholds = _thresholds(self.model.config)
        self.batching = LengthSortedBatches(tokenizer, max_length, batch_size or (512 if on_gpu else 64))

    @classmethod
    def from_model(cls, model, tokenizer, max_length: int, batch_size: int = 64) -> TorchPredictor:
        """Wrap a model in memory (a student being trained) as it is: same device, same dtype."""
        predictor = cls.__new__(cls)
        predictor.device = next(model.parameters()).device
        predictor.model = model.eval()
        predictor.labels = _labels(model.config)
        predictor.multi_label = _is_multi_label(model.config)
        predictor.thresholds = _thresholds(model.config)
        predictor.batching = LengthSortedBatches(tokenizer, max_length, batch_size)
        return predictor

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.predict_encoded(self.batching.encode(texts))

    def predict_encoded(self, ids: list[list[int]]) -> np.ndarray:
        import torch

        probs = np.zeros((len(ids), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for index, input_ids, mask in self.batching.batches(ids):
                inputs = {
                    "input_ids": torch.from_numpy(input_ids).to(self.device, non_blocking=True),
                    "attention_mask": torch.from_numpy(mask).to(self.device, non_blocking=True),
                }
                logits = self.model(**inputs).logits.float()
                scores = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
                probs[index] = scores.cpu().numpy()
        return probs


class OnnxPredictor:
    """The int8 ONNX export, run by onnxruntime on the CPU."""

    def __init__(
        self,
        onnx_dir: str | Path,
        max_length: int,
        batch_size: int = 32,
        threads: int | None = None,
        spinning: bool = True,
    ) -> None:
        import onnxruntime
        from transformers import AutoConfig, AutoTokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        if not spinning:
            # Idle worker threads sleep instead of busy-waiting for the next batch: a server's event
            # loop needs those cycles between batches.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            str(Path(onnx_dir) / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )
        config = AutoConfig.from_pretrained(onnx_dir)
        self.labels = _labels(config)
        self.multi_label = _is_multi_label(config)
        self.thresholds = _thresholds(config)
        self.batching = LengthSortedBatches(AutoTokenizer.from_pretrained(onnx_dir), max_length, batch_size)
        # A long-lived process (the service) sets this: a run of at least this many tokens hands the
        # memory it grew ONNX Runtime's arena by back afterwards, where the arena would keep its peak.
        self.release_arena_after_tokens: int | None = None
        self._shrink = onnxruntime.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.predict_encoded(self.batching.encode(texts))

    def predict_encoded(self, ids: list[list[int]]) -> np.ndarray:
        probs = np.zeros((len(ids), len(self.labels)), dtype=np.float32)
        for index, input_ids, mask in self.batching.batches(ids):
            feeds = {"input_ids": input_ids, "attention_mask": mask}
            large = self.release_arena_after_tokens is not None and input_ids.size >= self.release_arena_after_tokens
            (logits,) = self.session.run(["logits"], feeds, self._shrink if large else None)
            probs[index] = _sigmoid(logits) if self.multi_label else _softmax(logits)
        return probs


def load_predictor(
    model_dir: str | Path,
    backend: str,
    max_length: int,
    batch_size: int | None,
    threads: int | None = None,
    spinning: bool = True,
) -> TorchPredictor | OnnxPredictor:
    """A predictor for a student folder (``model/`` and optionally ``onnx/``) or a bare model folder.

    ``auto`` takes the ONNX int8 export when there is one and no GPU, else torch. ``spinning``
    False makes ONNX worker threads sleep between runs (for a server sharing the cores).
    """
    import torch

    path = Path(model_dir)
    onnx_dir = next((d for d in (path / "onnx", path) if (d / ONNX_FILE).exists()), None)
    torch_dir = path / "model" if (path / "model").is_dir() else path
    if backend == "auto":
        backend = "onnx" if onnx_dir and not torch.cuda.is_available() else "torch"
    if backend == "onnx":
        if onnx_dir is None:
            raise SynthDistillError(f"{path}: no {ONNX_FILE} here or in onnx/; run the export_onnx rule first")
        return OnnxPredictor(onnx_dir, max_length, batch_size or 32, threads, spinning)
    if backend == "torch":
        if not (torch_dir / "config.json").exists():
            raise SynthDistillError(f"{path}: not a trained student folder (no config.json in {torch_dir})")
        return TorchPredictor(torch_dir, max_length, batch_size)
    raise SynthDistillError(f"backend {backend!r}: use auto, torch or onnx")


def predict_frame(model_dir: str | Path, items: pd.DataFrame, max_length: int) -> pd.DataFrame:
    """id, predicted label and one probability column per label for every item, through the torch
    serving path (the same code that serves and benchmarks the student)."""
    predictor = TorchPredictor(model_dir, max_length)
    probs = predictor.predict_proba(items["text"].tolist())
    out = pd.DataFrame({"id": items["id"].to_numpy(), "label": predicted_labels(predictor, probs)})
    for i, label in enumerate(predictor.labels):
        out[f"prob_{label}"] = probs[:, i]
    return out


def predicted_labels(predictor, probs: np.ndarray) -> list[str]:
    """Each text's answer: the argmax label, or for a multi_label student the canonical JSON set of
    the labels at or above their thresholds."""
    if predictor.multi_label:
        from synthdistill.tasks.multi_label import label_sets_of

        return label_sets_of(probs >= predictor.thresholds, predictor.labels)
    return [predictor.labels[i] for i in probs.argmax(axis=1)]


def predict_chunks(predictor, chunks: Iterator[list[str]]) -> Iterator[np.ndarray]:
    """Probabilities per chunk, tokenizing the next chunk on a thread while this one runs."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for texts in chunks:
            encoded = pool.submit(predictor.batching.encode, texts)
            if pending is not None:
                yield predictor.predict_encoded(pending.result())
            pending = encoded
        if pending is not None:
            yield predictor.predict_encoded(pending.result())


def export_onnx(
    model_dir: str | Path,
    output_dir: str | Path,
    opset: int = 17,
    quantization: str | None = None,
    token_classification: bool = False,
) -> Path:
    """Export a trained student to ONNX and quantize its weights to int8.

    The folder gets the tokenizer and config too, so it deploys on its own. ``quantization``:

    - ``dynamic`` (default for single_label students): onnxruntime's dynamic quantization, int8
      weights per tensor and int8 activations scaled per call: the fastest on a CPU and 4x smaller,
      and an argmax over a few labels rarely moves.
    - ``weight_only`` (default for multi_label and spans students): int8 weights in blocks of 32
      (onnxruntime's MatMulNBits, 8 bits), float activations, embeddings kept float. A sigmoid score
      compared with a threshold, or an argmax per token, flips under the per-call activation scale of
      ``dynamic`` (GELU outputs have outliers): measured on the demo students (bench/README.md),
      dynamic per channel moved micro F1 by 1.1 points (5.8 on validation) and entity F1 by 4.2;
      weight-only moved neither. It is about half as fast as ``dynamic`` and 2.5x smaller than float.
    ``token_classification``: a spans student, whose logits have a sequence axis.
    """
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # Eager attention traces into plain ops every ONNX runtime supports.
    auto_class = AutoModelForTokenClassification if token_classification else AutoModelForSequenceClassification
    model = auto_class.from_pretrained(model_dir, use_safetensors=True, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if quantization is None:
        quantization = "weight_only" if token_classification or _is_multi_label(model.config) else "dynamic"
    if quantization not in QUANTIZATIONS:
        raise SynthDistillError(f"ONNX quantization {quantization!r}: expected one of {', '.join(QUANTIZATIONS)}")
    example = tokenizer(["an example sentence to trace", "short"], padding=True, return_tensors="pt")
    float_path = output_dir / ONNX_FLOAT_FILE
    dynamic = {0: "batch", 1: "sequence"}
    with torch.inference_mode():
        torch.onnx.export(
            model,
            (example["input_ids"], example["attention_mask"]),
            str(float_path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": dynamic,
                "attention_mask": dynamic,
                "logits": dynamic if token_classification else {0: "batch"},
            },
            opset_version=opset,
            dynamo=False,
        )
    if quantization == "dynamic":
        quantize_dynamic(str(float_path), str(output_dir / ONNX_FILE), weight_type=QuantType.QInt8)
    else:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )

        settings = {"block_size": 32, "is_symmetric": True, "bits": 8}
        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(float_path)), **settings, algo_config=DefaultWeightOnlyQuantConfig(**settings)
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(output_dir / ONNX_FILE), False)
    float_path.unlink()  # the int8 file is what deploys; the float one is larger
    tokenizer.save_pretrained(output_dir)
    model.config.save_pretrained(output_dir)
    return output_dir / ONNX_FILE


def quantization_of(onnx_path: str | Path) -> str:
    """How an exported model's weights were quantized, read from its graph (``dynamic``,
    ``weight_only``, or ``none``), so a check file says what was measured."""
    import onnx

    ops = {node.op_type for node in onnx.load(str(onnx_path), load_external_data=False).graph.node}
    if "MatMulNBits" in ops:
        return "weight_only"
    if ops & {"MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear"}:
        return "dynamic"
    return "none"


def onnx_agreement(
    model_dir: str | Path, onnx_dir: str | Path, texts: list[str], expert: list[str] | None, max_length: int
) -> dict[str, Any]:
    """How the int8 model differs from the torch model on the same texts (the test split): the share
    of texts with the same answer (label, or whole label set for a multi_label student), the largest
    probability difference, and the quality of both against the expert answers (accuracy; micro F1
    for a multi_label student)."""
    torch_model = TorchPredictor(model_dir, max_length, device="cpu")
    torch_probs = torch_model.predict_proba(texts)
    onnx_model = OnnxPredictor(onnx_dir, max_length)
    onnx_probs = onnx_model.predict_proba(texts)
    torch_labels = np.array(predicted_labels(torch_model, torch_probs), dtype=object)
    onnx_labels = np.array(predicted_labels(onnx_model, onnx_probs), dtype=object)
    check: dict[str, Any] = {
        "items": len(texts),
        "quantization": quantization_of(Path(onnx_dir) / ONNX_FILE),
        "same_label_share": float((torch_labels == onnx_labels).mean()) if texts else None,
        "max_probability_difference": float(np.abs(torch_probs - onnx_probs).max()) if texts else None,
    }
    if expert is not None and texts and onnx_model.multi_label:
        from sklearn.metrics import f1_score

        from synthdistill.tasks.multi_label import indicator_matrix

        truth = indicator_matrix(expert, onnx_model.labels)
        for name, answers in (("torch", torch_labels), ("onnx_int8", onnx_labels)):
            guess = indicator_matrix(answers, onnx_model.labels)
            check[f"f1_micro_{name}"] = float(f1_score(truth, guess, average="micro", zero_division=0))
        check["f1_micro_difference_points"] = 100 * (check["f1_micro_onnx_int8"] - check["f1_micro_torch"])
    elif expert is not None and texts:
        truth = np.array(expert)
        check["accuracy_torch"] = float((torch_labels == truth).mean())
        check["accuracy_onnx_int8"] = float((onnx_labels == truth).mean())
        check["accuracy_difference_points"] = 100 * (check["accuracy_onnx_int8"] - check["accuracy_torch"])
    return check


def write_onnx_export(
    model_dir: str, test_path: str, labels: list[str], max_length: int, output_dir: str, check_path: str
) -> dict[str, Any]:
    """The export_onnx step of single_label and multi_label: int8 ONNX folder plus its accuracy check
    against torch on the test split (the labels are read from the model's config, not ``labels``)."""
    import pandas as pd

    if Path(output_dir).exists():
        shutil.rmtree(output_dir)
    export_onnx(model_dir, output_dir)
    test = pd.read_parquet(test_path)
    expert = test["expert_label"].tolist() if "expert_label" in test else None
    check = onnx_agreement(model_dir, output_dir, test["text"].tolist(), expert, max_length)
    check["size_mb"] = round((Path(output_dir) / ONNX_FILE).stat().st_size / 1e6, 1)
    Path(check_path).write_text(json.dumps(check, indent=2) + "\n")
    log.info("ONNX int8 export: %s", check)
    return check
