"""Models an op needs, declared by the op and checked for the whole recipe before any op runs.

Declaring them (op authors)::

    class MyCaptionMapper(Mapper):
        model_params = {"hf_model": "hf"}      # parameter attribute -> model kind
        def __init__(self, hf_model: str = "Salesforce/blip-image-captioning-base", **kw):
            super().__init__(**kw)
            self.hf_model = hf_model

Kinds: ``"hf"`` (a transformers ``save_pretrained`` model: Hugging Face id or folder),
``"clip"`` (a CLIP name the CLIP loader accepts: Hugging Face or ``open_clip:<arch>/<tag>``),
``"ultralytics"`` (a ``.pt`` file such as ``FastSAM-x.pt`` or ``yolov8n.pt``).  An op whose
models do not sit in plain attributes overrides ``OP.required_models()`` and returns
``ModelSpec`` objects.

Checking them (the executor-independent part of a run): :func:`ensure_models` looks only at
local disk.  Every missing model of the recipe is listed in one :class:`ModelsMissingError`
with one ``tools/fetch_models.py`` command that fetches them all.  Online, missing models are
downloaded first (progress bars) into the assets dir; whether we are online is probed once,
with a short timeout, so a machine without network fails in seconds, not after the hub
library's retries.
"""
from __future__ import annotations

import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from . import assets
from .assets import FETCH_SCRIPT, ModelNotFoundError, assets_dir, is_explicit_path

logger = logging.getLogger("imgjuicer")

KINDS = ("hf", "clip", "ultralytics")
PROBE_TIMEOUT_S = float(os.environ.get("IMGJUICER_NETWORK_PROBE_TIMEOUT", "1"))


@dataclass(frozen=True)
class ModelSpec:
    """One model an op loads: ``name`` as the op's loader is given it, ``kind`` in KINDS,
    ``source`` the parameter it came from (for messages)."""

    name: str
    kind: str
    source: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"model kind must be one of {', '.join(KINDS)}, got {self.kind!r}")


@dataclass
class Missing:
    spec: ModelSpec
    where: str                       # "process[2] op 'x' (hf_clip)"
    searched: list = field(default_factory=list)
    reason: str = ""
    fetchable: bool = True           # False: an explicit path that does not exist


def specs_of(op) -> list[ModelSpec]:
    """``op.required_models()`` when the op defines it, else nothing."""
    fn = getattr(op, "required_models", None)
    return list(fn()) if callable(fn) else []


# ---------------------------------------------------------------------- local lookup only
def locate(spec: ModelSpec) -> Optional[Missing]:
    """None when ``spec`` is on this machine (never touches the network), else what is missing."""
    with assets.forced_offline():
        try:
            if spec.kind == "hf":
                assets.resolve_hf(spec.name)
            elif spec.kind == "clip":
                _locate_clip(spec.name)
            else:
                _locate_ultralytics(spec.name)
        except ModelNotFoundError as exc:
            explicit = is_explicit_path(spec.name) or \
                (spec.kind == "ultralytics" and os.sep in spec.name)
            return Missing(spec, "", exc.searched, "" if not explicit else
                           "the path does not exist or holds no weights", not explicit)
        except ValueError as exc:  # a name the loader rejects
            return Missing(spec, "", [], str(exc), False)
    return None


def _locate_clip(name: str) -> None:
    from .clip import _open_clip_spec, _resolve_open_clip
    if is_explicit_path(name) and (Path(name).expanduser() / "open_clip_config.json").is_file():
        return
    spec = _open_clip_spec(name)
    if spec is not None:
        _resolve_open_clip(name, *spec)
    else:
        assets.resolve_hf(name)


def _locate_ultralytics(name: str) -> None:
    if not name.endswith(".pt"):
        raise ValueError(f"ultralytics weights must be a .pt file, got {name!r}")
    if not (os.sep in name or name.startswith("~")) and (assets_dir() / name).is_file():
        return
    lib = []
    if not (os.sep in name or name.startswith("~")):
        weights = ultralytics_weights_dir()
        lib = [(weights, "ultralytics weights_dir")] if weights else []
    assets.resolve_file(name, lib)


def ultralytics_weights_dir() -> Optional[Path]:
    """ultralytics' ``weights_dir`` setting read from its settings file, without importing
    ultralytics (which imports torch: seconds).  None when there is no settings file."""
    import json
    env = os.environ.get("YOLO_CONFIG_DIR", "").strip()
    base = Path(env) if env else Path(os.environ.get("XDG_CONFIG_HOME", "~/.config")).expanduser() \
        / "Ultralytics"
    try:
        value = json.loads((base / "settings.json").read_text()).get("weights_dir")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(value) if value else None


def missing_models(ops: Iterable) -> list[Missing]:
    """Every model the ops declare that is not on disk, each listed once (first op named)."""
    out: dict = {}
    for idx, op in enumerate(ops):
        for spec in specs_of(op):
            key = (spec.kind, spec.name)
            if key in out:
                continue
            miss = locate(spec)
            if miss is not None:
                miss.where = f"process[{idx}] op '{op.name}'" + \
                    (f" ({spec.source})" if spec.source else "")
                out[key] = miss
    return list(out.values())


# ---------------------------------------------------------------------- the error
def fetch_command(missing: list[Missing]) -> str:
    names = [m.spec.name for m in missing if m.fetchable]
    return f"python {FETCH_SCRIPT} " + " ".join(names) if names else ""


class ModelsMissingError(FileNotFoundError):
    """Models a recipe needs that are not on this machine; one message, one fetch command."""

    def __init__(self, missing: list[Missing], why: str):
        self.missing = missing
        self.command = fetch_command(missing)
        n = len(missing)
        lines = [f"{n} model{'s' if n > 1 else ''} this recipe needs "
                 f"{'are' if n > 1 else 'is'} not on this machine ({why}):"]
        for m in missing:
            lines.append(f"  - {m.spec.name}  [{m.where}]" + (f": {m.reason}" if m.reason else ""))
            if m.searched:
                lines.append(f"      searched: {'; '.join(m.searched)}")
        if self.command:
            lines.append(f"Fetch {'them all' if n > 1 else 'it'} on a machine with network "
                         f"access: `{self.command}` (it writes to {assets_dir()}; copy that "
                         "folder here or point IMGJUICER_ASSETS at it).")
        super().__init__("\n".join(lines))

    def __str__(self):
        return self.args[0]


# ---------------------------------------------------------------------- network
def _reachable(url: str, timeout: float) -> Optional[str]:
    """None when ``url`` answers (any HTTP status), else why not."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout)
        return None
    except urllib.error.HTTPError:
        return None  # the server answered
    except Exception as exc:
        reason = getattr(exc, "reason", exc)
        return f"{url} unreachable: {reason}"


def probe_network(urls: Iterable[str], timeout: float = PROBE_TIMEOUT_S) -> Optional[str]:
    """Probe each host once, in parallel daemon threads, waiting ``timeout`` in total (a DNS
    lookup that hangs included: the thread is abandoned).  None when every host answered,
    else the first reason."""
    import threading
    urls = sorted(set(urls))
    results: dict = {}

    def run(u: str) -> None:
        results[u] = _reachable(u, timeout)

    threads = [threading.Thread(target=run, args=(u,), daemon=True) for u in urls]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout + 0.2
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    for u in urls:
        if u not in results:
            return (f"{u} did not answer within {timeout:g}s (a slow link: raise "
                    "IMGJUICER_NETWORK_PROBE_TIMEOUT)")
        if results[u] is not None:
            return results[u]
    return None


# ---------------------------------------------------------------------- the check
def ensure_models(ops: Iterable, download: bool = True) -> None:
    """Raise ModelsMissingError listing every missing model of ``ops``; online (no offline
    variable, network answers), download the fetchable ones into the assets dir first."""
    ops = list(ops)
    missing = missing_models(ops)
    if not missing:
        return
    if assets.is_offline():
        raise ModelsMissingError(missing, f"downloads are off: {assets.offline_reason()}")
    unfetchable = [m for m in missing if not m.fetchable]
    if unfetchable or not download:
        raise ModelsMissingError(missing, "not downloadable: " + unfetchable[0].reason
                                 if unfetchable else "downloads were not requested")
    from .fetch import FetchError, fetch, plan_for
    try:
        plans = [plan_for(m.spec.name, assets_dir()) for m in missing]
    except FetchError as exc:
        raise ModelsMissingError(missing, str(exc)) from None
    t0 = time.monotonic()
    offline = probe_network(p.host for p in plans)
    if offline:
        raise ModelsMissingError(missing, f"no network: {offline} (probed in "
                                          f"{time.monotonic() - t0:.1f}s)")
    for m, plan in zip(missing, plans):
        logger.info("model %s (%s) is missing: downloading it into %s", m.spec.name, m.where,
                    plan.target)
        try:
            fetch(plan)
        except Exception as exc:  # noqa: BLE001 - report every model, then stop
            logger.error("download of %s failed: %s", m.spec.name, exc)
    still = missing_models(ops)
    if still:
        raise ModelsMissingError(still, "the download failed (see the log)")
