"""How the local executor starts worker processes without hanging them.

``datasets.map(num_proc=n)`` forks its workers.  A fork copies the parent's memory but not its
threads: once PyTorch has run a parallel region in the parent, GNU OpenMP (libgomp) believes
its thread pool exists, and the first parallel region in a forked child waits for threads
that were never copied -- for ever (a model op's ``setup()`` stuck in ``load_state_dict``).
Two rules keep workers safe:

* the parent never runs an op's code just to time it: the probe that decides between one
  process and ``np`` workers runs in a forked child, so the parent stays free of torch;
* when torch is nevertheless loaded in the parent (a model op ran here before, or the
  caller imported it), workers are *spawned* (fresh interpreters) instead of forked.

Spawned workers import op classes afresh; ops loaded from ``custom_operator_paths`` are not
importable by name, so each worker loads those files before the op is unpickled (OpCall).
"""
from __future__ import annotations

import contextlib
import logging
import math
import sys
from typing import Callable, Iterator, Optional

logger = logging.getLogger("imgjuicer")


def fork_is_safe() -> bool:
    """Forking copies no threads; with torch loaded, its OpenMP pool may be live here."""
    return "torch" not in sys.modules


def _probe_child(estimate: Callable, op, ds, conn) -> None:
    try:
        conn.send(float(estimate(op, ds)))
    except BaseException:  # the pool's workers meet (and report) the same failure
        conn.send(math.inf)
    finally:
        conn.close()


def probe_seconds(estimate: Callable, op, ds) -> float:
    """``estimate(op, ds)``, run in a forked child while this process is fork-safe (so torch
    never starts here before workers are forked); in-process otherwise.  A child that dies
    counts as "much work": the op then runs on workers, which report the failure."""
    if not fork_is_safe():
        return estimate(op, ds)
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_probe_child, args=(estimate, op, ds, send))
    child.start()
    send.close()
    try:
        seconds = recv.recv()
    except EOFError:
        seconds = math.inf
    finally:
        recv.close()
        child.join()
    return seconds


@contextlib.contextmanager
def pool_start(num_proc: Optional[int]) -> Iterator[None]:
    """Within the block, ``datasets.map`` spawns its workers when forking is unsafe."""
    if not num_proc:
        yield
        return
    if fork_is_safe():
        logger.debug("starting %d forked workers", num_proc)
        yield
        return
    import multiprocess  # what datasets' Pool is made of

    logger.debug("starting %d spawned workers (torch is loaded in this process: forking "
                 "could hang them)", num_proc)
    previous = multiprocess.get_start_method(allow_none=True)
    multiprocess.set_start_method("spawn", force=True)
    try:
        yield
    finally:
        multiprocess.set_start_method(previous, force=True)


class OpCall:
    """``op.run_batched`` as a picklable callable that loads the recipe's plugin files in the
    worker before the op itself is unpickled (a spawned worker has not imported them)."""

    def __init__(self, op, plugin_paths: list[str]):
        self.op, self.plugin_paths = op, list(plugin_paths or [])

    def __call__(self, batch: dict) -> dict:
        return self.op.run_batched(batch)

    def __reduce__(self):
        import dill
        return _rebuild, (self.plugin_paths, dill.dumps(self.op))


def _rebuild(plugin_paths: list[str], blob: bytes) -> OpCall:
    import dill

    from ops.registry import load_custom_operators
    load_custom_operators(plugin_paths)
    return OpCall(dill.loads(blob), plugin_paths)
