"""Per-row cost of the op framework: one fused pass of the header recipe in this process.

The header-recipe benchmark (bench_header_recipe.py) times whole runs, where start-up, imports
and header parsing blur what a row costs.  This one times, with every header already parsed
(the per-process cache warm), the three header filters as one fused pass over ``--rows`` rows:

* ``run_pass`` alone (rows decoded, three ops, rows encoded), and
* a whole Ray pass block (``ray_stage.process_block``: parquet block in, the pass, report and
  export lines, parquet block out), as a Ray worker runs it.

    .venv/bin/python tools/bench/bench_pass_block.py [--rows 25000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import ops  # noqa: F401  (registers the operators)
from ops.fields import Fields
from ops.registry import OPERATORS
from pipelines.executor.fused import run_pass
from pipelines.executor.ray_stage import PassSpec, process_block



def _header_bench():
    """bench_header_recipe.py (the same recipe and data), loaded from its file."""
    import importlib.util
    path = Path(__file__).resolve().with_name("bench_header_recipe.py")
    spec = importlib.util.spec_from_file_location("bench_header_recipe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=25_000)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(),
                                                      "imgjuicer_bench_header_recipe"))
    args = ap.parse_args(argv)
    header = _header_bench()
    PROCESS = header.PROCESS
    data = header.ensure_data(Path(args.data_dir), args.files, max(args.rows, 100_000))
    with open(data) as fh:
        rows = [json.loads(line) for line, _ in zip(fh, range(args.rows))]
    indices = list(range(len(PROCESS)))
    pass_ops = [OPERATORS.get(name)(**kw) for step in PROCESS for name, kw in step.items()]
    table = pa.table({Fields.id: [str(i) for i in range(len(rows))],
                      "images": [r["images"] for r in rows], "n": [r["n"] for r in rows]})
    size = max(op.batch_size for op in pass_ops)
    batches = [table.slice(i, size).to_pydict() for i in range(0, table.num_rows, size)]
    for b in batches:                       # parse every header once: the cache is warm
        run_pass(pass_ops, indices, b)

    def time_pass() -> float:
        t0 = time.perf_counter()
        for b in batches:
            run_pass(pass_ops, indices, b)
        return time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "block-000000.parquet")
        pq.write_table(table, src)
        work = os.path.join(tmp, "out")
        spec = PassSpec(indices=indices, work=work, first="none", reports=True,
                        export={"drop_stats": False, "drop_hashes": False})

        def time_block() -> float:
            shutil.rmtree(work, ignore_errors=True)
            os.makedirs(work)
            t0 = time.perf_counter()
            process_block(pass_ops, spec, src)
            return time.perf_counter() - t0

        passes = [time_pass() for _ in range(args.repeat)]
        blocks = [time_block() for _ in range(args.repeat)]
    n = len(rows)
    for label, times in (("run_pass (3 header filters)", passes),
                         ("Ray pass block (pass + lines + parquet)", blocks)):
        med = statistics.median(times)
        print(f"{label:<42} median {med:6.3f} s for {n:,} rows = {med / n * 1e6:5.1f} us/row "
              f"(min {min(times):.3f}, max {max(times):.3f}, {args.repeat} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
