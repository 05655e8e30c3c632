"""Download model weights into assets_cache/ (run where a network exists; copy the folder after).

Thin script: the code is ``pipelines.cli.fetch_models`` (downloads: ``ops.models.fetch``); ``python tools/fetch_models.py --help`` lists the options.
"""
import sys

from pipelines.cli.fetch_models import main

if __name__ == "__main__":
    sys.exit(main())
