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
from pipelines.shards import dataset_root, list_shards, read_shard

logger = logging.getLogger("imgjuicer")


def _read_one(folder: str, root: str, image_columns, block_rows: int, image_roots,
              batch: dict) -> dict:
    out = {"index": [], "blocks": [], "rows": [], "error": []}
    for index, shard in zip(batch["index"], batch["shard"]):
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
        out["index"].append(int(index))
        out["blocks"].append(blocks)
        out["rows"].append(rows)
        out["error"].append(error)
    return out


def write_sharded_input(dataset_path: str, folder: str, image_columns, block_rows: int,
                        parallelism: int, image_roots=None) -> int:
    """Read every shard of ``dataset_path`` on Ray workers into parquet blocks in ``folder``;
    returns the row count.  A shard that cannot be read stops the run with an error naming it
    (before any op runs: no row of any shard is silently left out)."""
    import functools

    import ray.data

    shards = list_shards(dataset_path)
    root = dataset_root(dataset_path)
    os.makedirs(folder, exist_ok=True)
    logger.info("dataset %s: %d shards, read by up to %d Ray tasks", dataset_path, len(shards),
                parallelism)
    items = [{"index": i, "shard": s} for i, s in enumerate(shards)]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    fn = functools.partial(_read_one, folder, root, image_columns, block_rows, image_roots)
    ds = ds.map_batches(fn, batch_size=1, num_cpus=1,
                        compute=ray.data.TaskPoolStrategy(size=max(1, min(parallelism,
                                                                          len(items)))))
    rows, errors = 0, []
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for i, n, err in zip(batch["index"], batch["rows"], batch["error"]):
            rows += int(n)
            if err:
                errors.append(str(err))
    if errors:
        more = f" (and {len(errors) - 1} more shards)" if len(errors) > 1 else ""
        raise DatasetError(f"{errors[0]}{more}")
    return rows
