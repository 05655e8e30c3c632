"""Plain Ray tasks over a list of items (block files, shards): at most ``size`` at a time.

A pass of CPU ops, the sharded input and the sharded export each run one function per item
whose input and output are files; the driver only needs each task's small return value.
Ray Data's streaming executor adds nothing such a job needs and costs a cheap pass more than
its work: two helper actors (stats, autoscaling) and a ``ray.data`` + pandas import in every
worker and the driver, about 4 CPU seconds per run before the first row.  Tasks here are
plain ``ray.remote`` calls: they start on the workers Ray already has, retry a worker that
dies (``max_retries``), spread over the cluster's nodes, and stop the run at the first task
that raises.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Iterable, Iterator, Optional

from pipelines.executor.ray_cluster import MAX_BLOCK_RETRIES

logger = logging.getLogger("imgjuicer")


def _call(fn: Callable, item):
    return fn(item)


_REMOTES: dict = {}


def _remote(fn: Callable):
    """``ray.remote(fn)``, made once per process: Ray exports a remote function's code when it
    is made, and again by itself for a new Ray session."""
    import ray

    if fn not in _REMOTES:
        _REMOTES[fn] = ray.remote(fn)
    return _REMOTES[fn]


def run_tasks(fn: Callable, items: Iterable, size: int, *, num_cpus: float = 1.0,
              memory: Optional[int] = None, max_retries: int = MAX_BLOCK_RETRIES,
              desc: Optional[str] = None) -> Iterator[tuple]:
    """``(item, fn(item))`` for every item, in completion order; ``fn(item)`` runs as a Ray
    task, at most ``size`` of them at once.  The first task that fails raises its error on
    the driver (the tasks still running are cancelled; their outputs must be atomic)."""
    import ray
    from tqdm import tqdm

    items = list(items)
    options = {"num_cpus": num_cpus, "max_retries": max_retries, "retry_exceptions": False,
               "scheduling_strategy": "SPREAD"}
    if memory:
        options["memory"] = memory
    remote = _remote(_call).options(**options)
    fn_ref = ray.put(fn)  # shipped once, not once per task
    todo = iter(items)
    pending: dict = {}

    def submit() -> None:
        item = next(todo, _END)
        if item is not _END:
            pending[remote.remote(fn_ref, item)] = item

    for _ in range(max(1, size)):
        submit()
    bar = tqdm(total=len(items), desc=desc, unit="block", leave=False,
               disable=bool(os.environ.get("TQDM_DISABLE")) or desc is None)
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            item = pending.pop(done[0])
            result = ray.get(done[0])
            submit()
            bar.update(1)
            yield item, result
    finally:
        bar.close()
        for ref in pending:  # a failure (or the caller stopping): nothing left running
            ray.cancel(ref)


_END = object()


def _import(modules: list[str]) -> None:
    import importlib
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 -- a module shipped by value: the task brings it
            pass


def warm_workers(modules: list[str], n: int) -> list:
    """Import ``modules`` on up to ``n`` idle workers, without waiting: the imports (pyarrow,
    Pillow, the ops' modules, and pandas, which pyarrow imports the first time it converts a
    Python list: about 0.8 CPU seconds per worker process) then overlap the driver's own
    preparation (or reading) of the dataset instead of delaying the first tasks."""
    remote = _remote(_import).options(num_cpus=1, scheduling_strategy="SPREAD")
    return [remote.remote(modules) for _ in range(max(0, n))]
