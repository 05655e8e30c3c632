"""Running recipes from tests, in-process or as the real CLI."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DJ_PROCESS = str(Path(sys.executable).parent / "dj-process")


def cli(args, cwd=None, timeout=300, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([DJ_PROCESS, *args], cwd=cwd or REPO, capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def run_inprocess(argv):
    from pipelines.cli import run_recipe
    from pipelines.config import parse_recipe
    return run_recipe(parse_recipe(argv))
