"""Ray executor input for sharded datasets: workers read the shards in parallel.

One Ray task per shard reads it in pieces of at most ``block_rows`` rows (Arrow's parquet
reader / a line reader for jsonl, from local or object storage) and writes each prepared
piece as a parquet block of the run's first stage.  The driver only lists the shards and
receives ``(shard, blocks, rows)`` per task: it never holds rows.
"""
from __future__ import annotations

import logging
import os

import pyarrow.parquet as pq

from pipelines.dataset import DatasetError, check_image_roots
from pipelines.executor.ray_tasks import run_tasks
from pipelines.shards import dataset_root, list_shards, read_shard

logger = logging.getLogger("imgjuicer")


def _read_one(folder: str, root: str, image_columns, block_rows: int, image_roots,
              item: tuple) -> tuple[int, int, str]:
    """Shard ``item = (index, path)`` -> its parquet blocks; ``(blocks, rows, error)``."""
    index, shard = item
    blocks, rows, error = 0, 0, ""
    try:
        for k, table in enumerate(read_shard(shard, root, image_columns, block_rows)):
            check_image_roots(table, image_columns, image_roots)
            dest = os.path.join(folder, f"block-{int(index):06d}-{k:05d}.parquet")
            tmp = f"{dest}.{os.getpid()}.tmp"
            pq.write_table(table, tmp)
            os.replace(tmp, dest)
            blocks, rows = blocks + 1, rows + table.num_rows
    except DatasetError as exc:  # reported on the driver, naming the shard
        error = str(exc)
    except Exception as exc:
        error = f"shard {shard}: {type(exc).__name__}: {exc}"
    return blocks, rows, error


def write_sharded_input(dataset_path: str, folder: str, image_columns, block_rows: int,
                        parallelism: int, image_roots=None) -> int:
    """Read every shard of ``dataset_path`` on Ray workers into parquet blocks in ``folder``;
    returns the row count.  A shard that cannot be read stops the run with an error naming it
    (before any op runs: no row of any shard is silently left out)."""
    import functools

    shards = list_shards(dataset_path)
    root = dataset_root(dataset_path)
    os.makedirs(folder, exist_ok=True)
    logger.info("dataset %s: %d shards, read by up to %d Ray tasks", dataset_path, len(shards),
                parallelism)
    fn = functools.partial(_read_one, folder, root, image_columns, block_rows, image_roots)
    rows, errors = 0, []
    for (index, _), (_, n, err) in sorted(run_tasks(fn, list(enumerate(shards)), parallelism,
                                                    desc="reading shards")):
        rows += n
        if err:
            errors.append(err)
    if errors:
        more = f" (and {len(errors) - 1} more shards)" if len(errors) > 1 else ""
        raise DatasetError(f"{errors[0]}{more}")
    return rows
