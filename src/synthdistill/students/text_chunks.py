"""A large file of texts read in chunks, so memory stays flat with file size: what the streamed
predictors (students.predict, students.span_predict) share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from synthdistill import SynthDistillError

CHUNK_ROWS = 20_000


def row_count(path: Path) -> int | None:
    """The number of rows when the file says so without being read (Parquet), else None."""
    return pq.ParquetFile(path).metadata.num_rows if path.suffix == ".parquet" else None


def read_chunks(path: str | Path, columns: list[str], chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The file's ``columns`` in chunks of ``chunk_rows`` rows, never the whole file at once."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise SynthDistillError(f"{path}: no such file")
    if suffix == ".parquet":
        names = pq.ParquetFile(path).schema_arrow.names
        missing = [c for c in columns if c not in names]
        if missing:
            raise SynthDistillError(f"{path}: no column {missing[0]!r}; columns are {names}")
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pandas()
        return
    if suffix in (".csv", ".tsv"):
        # Blank lines are rows (empty texts, reported as such) and "NA" is a text, not a missing value:
        # pandas' defaults would silently drop or null them and shift every later row number.
        reader = pd.read_csv(
            path,
            sep="\t" if suffix == ".tsv" else ",",
            chunksize=chunk_rows,
            dtype=str,
            skip_blank_lines=False,
            keep_default_na=False,
        )
    elif suffix in (".jsonl", ".json"):
        reader = pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False)
    else:
        raise SynthDistillError(f"{path}: unsupported file type {suffix!r}; use .csv, .tsv, .parquet or .jsonl")
    for chunk in reader:
        missing = [c for c in columns if c not in chunk.columns]
        if missing:
            raise SynthDistillError(f"{path}: no column {missing[0]!r}; columns are {list(chunk.columns)}")
        yield chunk[columns]


def texts_of(chunk: pd.DataFrame, text_column: str, first_row: int, path: str | Path) -> list[str]:
    """The chunk's texts; an empty one stops the run naming its row (counted from ``first_row``)."""
    texts = chunk[text_column]
    empty = texts.isna() | (texts.astype(str).str.strip() == "")
    if empty.any():
        row = first_row + int(empty.to_numpy().argmax())
        raise SynthDistillError(f"{path}: row {row} has an empty {text_column!r}")
    return texts.astype(str).tolist()
