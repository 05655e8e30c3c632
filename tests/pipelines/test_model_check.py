"""Models declared by ops are checked for the whole recipe before any op runs."""
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ops.base import Mapper
from ops.models.requirements import (ModelsMissingError, ModelSpec, ensure_models,
                                     missing_models)

REPO = Path(__file__).resolve().parents[2]
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "YOLO_OFFLINE", "IMGJUICER_OFFLINE")
IMGDIFF_MODELS = ("openai/clip-vit-base-patch32", "Salesforce/blip-itm-base-coco", "FastSAM-x.pt")


@pytest.fixture
def black_hole():
    """A TCP server that accepts connections and never answers: a network that hangs."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    srv.close()


def _run_headline(env_extra: dict, assets: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARS}
    env.update(env_extra, IMGJUICER_ASSETS=str(assets), PYTHONPATH=str(REPO))
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "--config", "recipes/imgdiff.yaml",
                        "--work_dir", str(assets.parent / "work")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    return r, time.monotonic() - t0


def _one_error_all_models(r) -> str:
    assert r.returncode == 2, r.stderr[-2000:]
    err = r.stderr
    assert "Traceback" not in err and "OSError" not in err
    commands = [ln for ln in err.splitlines() if "tools/fetch_models.py" in ln]
    assert len(commands) == 1
    for name in IMGDIFF_MODELS:
        assert f"- {name}" in err and name in commands[0]
    return err


@pytest.mark.slow
def test_no_network_and_no_offline_variable_fails_fast_with_every_model(tmp_path, black_hole):
    """Offline variables unset; the hub does not answer (here: accepts and hangs)."""
    r, seconds = _run_headline({"HF_ENDPOINT": black_hole}, tmp_path / "assets")
    err = _one_error_all_models(r)
    assert "no network" in err
    # a bound against the hub client's 30-40 s of retries, not a speed figure: the whole command
    # (interpreter and imports included) takes ~2 s on an idle machine (docs/models.md), but a
    # loaded CI machine must not make this test flaky
    assert seconds < 15, f"took {seconds:.1f}s"
    assert not (tmp_path / "work" / "result.jsonl").exists()


@pytest.mark.slow
def test_offline_variable_gives_the_same_listing(tmp_path):
    r, seconds = _run_headline({"HF_HUB_OFFLINE": "1"}, tmp_path / "assets")
    err = _one_error_all_models(r)
    assert "downloads are off: HF_HUB_OFFLINE=1" in err
    assert seconds < 15


class _DeclaringOp(Mapper):
    name = "declaring_test_op"
    model_params = {"hf_model": "hf", "weights": "ultralytics"}

    def __init__(self, hf_model="org/absent-model", weights="", **kw):
        super().__init__(**kw)
        self.hf_model, self.weights = hf_model, weights


def test_declared_models_are_resolved_from_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("IMGJUICER_ASSETS", str(tmp_path))
    op = _DeclaringOp(hf_model="org/absent-model", weights="Tiny.pt")
    assert op.required_models() == [ModelSpec("org/absent-model", "hf", "hf_model"),
                                    ModelSpec("Tiny.pt", "ultralytics", "weights")]
    assert _DeclaringOp(weights="").required_models() == [
        ModelSpec("org/absent-model", "hf", "hf_model")]     # an unset parameter needs nothing
    (tmp_path / "Tiny.pt").write_bytes(b"weights")
    (tmp_path / "org" / "absent-model").mkdir(parents=True)
    missing = missing_models([op, _DeclaringOp(hf_model="org/absent-model")])
    assert [m.spec.name for m in missing] == ["org/absent-model"]   # listed once
    assert missing[0].where == "process[0] op 'declaring_test_op' (hf_model)"
    gone = _DeclaringOp(hf_model=str(tmp_path / "no-such-dir"))
    with pytest.raises(ModelsMissingError) as info:
        ensure_models([gone])
    assert "no-such-dir" in str(info.value) and info.value.command == ""  # a path: no fetch


def test_online_missing_model_is_downloaded_on_first_use(tmp_path, monkeypatch):
    """Offline variables unset and a host that answers: the missing weights are fetched
    (a real HTTP download, with a progress bar) into the assets dir, then the check passes."""
    import ops.models.fetch as fetch
    release = tmp_path / "release" / "vX"
    release.mkdir(parents=True)
    payload = os.urandom(150_000)
    (release / "Tiny.pt").write_bytes(payload)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(tmp_path / "release"), **k)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for var in OFFLINE_VARS:
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("IMGJUICER_ASSETS", str(tmp_path / "assets"))
        monkeypatch.setattr(fetch, "ULTRALYTICS_URL", base + "/{release}/{name}")
        monkeypatch.setattr(fetch, "ULTRALYTICS_RELEASE", "vX")
        monkeypatch.setitem(fetch.HOSTS, "ultralytics", base)
        monkeypatch.setattr(fetch.fetch, "__defaults__", ("vX",))
        op = _DeclaringOp(hf_model="", weights="Tiny.pt")
        ensure_models([op])
        assert (tmp_path / "assets" / "Tiny.pt").read_bytes() == payload
        assert missing_models([op]) == []
    finally:
        server.shutdown()
