"""Label a large file of texts with a trained student, streamed: memory stays flat with file size.

    synthdistill-predict MODEL_DIR INPUT OUTPUT.parquet [--text-column text] [--id-column id]

INPUT is CSV, TSV, Parquet or JSONL; OUTPUT is Parquet with the row number, the id column when
given, the label and one probability column per label, in input order. For a multi_label student
``label`` is the canonical JSON of the set, ``labels`` the same set as a list, and each probability
is that label's own sigmoid score (the set holds the labels at or above their thresholds). A spans student writes the
span JSON as ``label`` and the number of spans.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from synthdistill import SynthDistillError
from synthdistill.schema import defaults
from synthdistill.students.inference import load_predictor, predict_chunks, predicted_labels, student_task
from synthdistill.students.text_chunks import CHUNK_ROWS, read_chunks, row_count, texts_of
from synthdistill.tasks import SPANS

log = logging.getLogger(__name__)


def predict_file(
    model_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    text_column: str,
    id_column: str | None,
    backend: str,
    max_length: int,
    batch_size: int | None,
    chunk_rows: int = CHUNK_ROWS,
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Stream ``input_path`` through the student into ``output_path`` (Parquet); returns a summary.

    Rows are numbered from 0 in file order (header excluded) so errors and outputs can be joined
    back to the input. The output is written to a temporary name and renamed at the end, so a
    killed run never leaves a file that looks complete. A token-classification student (task
    spans) writes each row's span JSON instead of probabilities (students.span_predict).
    """
    from synthdistill.students.span_predict import predict_span_file

    if student_task(model_dir) == SPANS:
        return predict_span_file(
            model_dir,
            input_path,
            output_path,
            text_column,
            id_column,
            backend,
            max_length,
            batch_size,
            chunk_rows,
            threads,
        )
    predictor = load_predictor(model_dir, backend, max_length, batch_size, threads)
    columns = [text_column] + ([id_column] if id_column else [])
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    partial = output_path.with_name(output_path.name + ".partial")
    labels = predictor.labels
    schema = pa.schema(
        [("row", pa.int64())]
        + ([(id_column, pa.string())] if id_column else [])
        + [("label", pa.string())]
        # A multi_label student's set as a list too (``label`` holds its canonical JSON).
        + ([("labels", pa.list_(pa.string()))] if predictor.multi_label else [])
        + [(f"prob_{label}", pa.float32()) for label in labels]
    )
    frames: list[pd.DataFrame] = []

    def texts_of_chunks() -> Iterator[list[str]]:
        first = 0
        for chunk in read_chunks(input_path, columns, chunk_rows):
            frames.append(chunk)
            yield texts_of(chunk, text_column, first, input_path)
            first += len(chunk)

    rows = 0
    bar = tqdm(total=row_count(Path(input_path)), unit="texts", disable=not progress, file=sys.stderr)
    with pq.ParquetWriter(partial, schema) as writer:
        for probs in predict_chunks(predictor, texts_of_chunks()):
            chunk = frames.pop(0)
            table: dict[str, Any] = {"row": range(rows, rows + len(chunk))}
            if id_column:
                table[id_column] = chunk[id_column].astype(str).to_numpy()
            table["label"] = predicted_labels(predictor, probs)
            if predictor.multi_label:
                table["labels"] = [[labels[i] for i in np.flatnonzero(row)] for row in probs >= predictor.thresholds]
            for i, label in enumerate(labels):
                table[f"prob_{label}"] = probs[:, i]
            writer.write_table(pa.Table.from_pydict(table, schema=schema))
            rows += len(chunk)
            bar.update(len(chunk))
    bar.close()
    partial.replace(output_path)
    summary = {"rows": rows, "backend": type(predictor).__name__, "labels": labels, "output": str(output_path)}
    log.info("predicted %s", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="a trained student folder (model/ or its onnx/ export)")
    parser.add_argument("input", help="CSV, TSV, Parquet or JSONL file of texts")
    parser.add_argument("output", help="Parquet file to write")
    # The predict section's defaults (schema), as the predict rule passes them for a config that sets none.
    predict = defaults("predict")
    parser.add_argument("--text-column", default=predict["text_column"])
    parser.add_argument("--id-column", default=predict["id_column"])
    parser.add_argument("--backend", choices=["auto", "torch", "onnx"], default=predict["backend"])
    # The students' default max_length (schema): what a student trained with unless its config said otherwise.
    parser.add_argument("--max-length", type=int, default=defaults("students", "*")["max_length"])
    parser.add_argument("--batch-size", type=int, default=predict["batch_size"])
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = predict_file(
            args.model_dir,
            args.input,
            args.output,
            text_column=args.text_column,
            id_column=args.id_column,
            backend=args.backend,
            max_length=args.max_length,
            batch_size=args.batch_size,
            chunk_rows=args.chunk_rows,
        )
    except SynthDistillError as exc:
        print(f"synthdistill-predict: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {summary['rows']} predictions to {summary['output']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
