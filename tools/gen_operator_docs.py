"""Write docs/operators.md from the operator registry (``--check``: exit 1 when it is stale).

Thin script: the code is ``pipelines.catalogue``; run it from the repository root after adding
or changing an op.
"""
import sys

from pipelines.catalogue import main

if __name__ == "__main__":
    sys.exit(main())
