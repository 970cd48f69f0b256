"""Label a large file of texts with a spans student, streamed: the canonical span JSON per row.

``synthdistill-predict`` and the ``predict`` rule come here when the student folder holds a
token-classification model (students.predict.predict_file checks).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from synthdistill import SynthDistillError
from synthdistill.students.inference import ONNX_FILE
from synthdistill.students.text_chunks import read_chunks, texts_of
from synthdistill.students.token_classification import SpanPredictor
from synthdistill.tasks.spans import to_json

log = logging.getLogger(__name__)


def _folders(model_dir: str | Path) -> tuple[Path, Path | None]:
    """(torch model folder, ONNX folder or None) of a student folder or a bare model folder."""
    path = Path(model_dir)
    onnx_dir = next((d for d in (path / "onnx", path) if (d / ONNX_FILE).exists()), None)
    return (path / "model" if (path / "model").is_dir() else path), onnx_dir


def load_span_predictor(
    model_dir: str | Path, backend: str, max_length: int, batch_size: int | None, threads: int | None
) -> SpanPredictor:
    """ONNX int8 when exported and no GPU (``auto``), else torch; as students.inference.load_predictor."""
    import torch

    torch_dir, onnx_dir = _folders(model_dir)
    if backend == "auto":
        backend = "onnx" if onnx_dir and not torch.cuda.is_available() else "torch"
    if backend == "onnx":
        from synthdistill.students.span_onnx import OnnxSpanPredictor

        if onnx_dir is None:
            raise SynthDistillError(f"{model_dir}: no {ONNX_FILE} here or in onnx/; run the export_onnx rule first")
        return OnnxSpanPredictor(onnx_dir, max_length, batch_size or 32, threads)
    if backend != "torch":
        raise SynthDistillError(f"backend {backend!r}: use auto, torch or onnx")
    predictor = SpanPredictor.load(torch_dir, max_length)
    predictor.batch_size = batch_size or predictor.batch_size
    return predictor


def predict_span_file(
    model_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    text_column: str,
    id_column: str | None,
    backend: str,
    max_length: int,
    batch_size: int | None,
    chunk_rows: int,
    threads: int | None = None,
) -> dict[str, Any]:
    """row, the id column when given, and ``label`` (the span JSON) for every row, in input order;
    written under a temporary name and renamed at the end, as predict_file does."""
    predictor = load_span_predictor(model_dir, backend, max_length, batch_size, threads)
    columns = [text_column] + ([id_column] if id_column else [])
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    partial = output_path.with_name(output_path.name + ".partial")
    schema = pa.schema(
        [("row", pa.int64())]
        + ([(id_column, pa.string())] if id_column else [])
        + [("label", pa.string()), ("spans", pa.int64())]
    )
    rows = 0
    with pq.ParquetWriter(partial, schema) as writer:
        for chunk in read_chunks(input_path, columns, chunk_rows):
            spans = predictor.predict(texts_of(chunk, text_column, rows, input_path))
            table: dict[str, Any] = {"row": range(rows, rows + len(chunk))}
            if id_column:
                table[id_column] = chunk[id_column].astype(str).to_numpy()
            table["label"] = [to_json(s) for s in spans]
            table["spans"] = [len(s) for s in spans]
            writer.write_table(pa.Table.from_pydict(table, schema=schema))
            rows += len(chunk)
    partial.replace(output_path)
    summary = {"rows": rows, "backend": type(predictor).__name__, "task": "spans", "output": str(output_path)}
    log.info("predicted %s", summary)
    return summary
