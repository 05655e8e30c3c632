"""Check the chained recipe on real CUDA actors: GPUs seen, per-op throughput, GPU memory.

Thin script: the code is ``pipelines.cli.gpu_check``; ``python tools/gpu_check.py --help`` lists the options.
"""
import sys

from pipelines.cli.gpu_check import main

if __name__ == "__main__":
    sys.exit(main())
