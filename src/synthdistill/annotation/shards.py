"""Sharded annotation: split a prompts file into K contiguous shards and gather them back.

Shards are contiguous, in file order, so concatenating their annotations in shard order gives
exactly the rows (and the row order) of one unsharded job. The requests, and so the cache keys,
do not depend on K: re-sharding an annotated prompt file makes no new request.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.tasks.names import CALIBRATION_SPLIT


def shard_bounds(n_items: int, shard: int, shards: int) -> tuple[int, int]:
    """[start, stop) of shard ``shard`` (0-based) out of ``shards``; sizes differ by at most one."""
    if shards < 1 or not 0 <= shard < shards:
        raise SynthDistillError(f"annotate.shards: shard {shard} of {shards} does not exist")
    return shard * n_items // shards, (shard + 1) * n_items // shards


def select_shard(prompts: pd.DataFrame, shard: int, shards: int) -> pd.DataFrame:
    """The rows of one shard, in file order.

    The content-free calibration row of a calibrated ``label_scores`` prompt goes to every shard:
    each shard needs the prior, and after the first shard it comes from the cache.
    """
    calibration = (prompts["split"] == CALIBRATION_SPLIT).to_numpy()
    items = prompts.loc[~calibration]
    start, stop = shard_bounds(len(items), shard, shards)
    return pd.concat([items.iloc[start:stop], prompts.loc[calibration]], ignore_index=True)


def gather_shards(paths: list[str | Path], expected_ids: list[str] | None = None) -> pd.DataFrame:
    """Concatenate shard annotations in shard order; check that every item is there exactly once."""
    frames = [pd.read_parquet(path) for path in paths]
    # An empty shard (more shards than items) has untyped columns: leave it out so the dtypes
    # are the ones an unsharded job would have written.
    non_empty = [frame for frame in frames if len(frame)] or frames[:1]
    gathered = pd.concat(non_empty, ignore_index=True)
    duplicated = gathered["id"][gathered["id"].duplicated()]
    if len(duplicated):
        raise SynthDistillError(f"shards {[str(p) for p in paths]}: id {duplicated.iloc[0]!r} is in two shards")
    if expected_ids is not None and gathered["id"].tolist() != list(expected_ids):
        missing = set(expected_ids) - set(gathered["id"])
        raise SynthDistillError(
            f"shards {[str(p) for p in paths]} do not cover the prompts in order ({len(missing)} ids missing)"
        )
    return gathered


def prompt_ids(prompts_path: str | Path) -> list[str]:
    """The item ids of a prompts file in order, calibration row excluded; reads two columns only."""
    frame = pd.read_parquet(prompts_path, columns=["id", "split"])
    return frame.loc[frame["split"] != CALIBRATION_SPLIT, "id"].tolist()
