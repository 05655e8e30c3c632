"""Checkpoint after each pass (a fused run of ops, or one op); a rerun of the same recipe
resumes after the last checkpointed op."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from typing import Optional

from ops.base import dumps

logger = logging.getLogger("imgjuicer")


def _stat(path: str) -> list:
    try:
        st = os.stat(path)
    except OSError:  # a dangling symlink or a loop: its op reports it; identify the link
        st = os.lstat(path)
    return [st.st_size, int(st.st_mtime)]


def _file_identity(path: str) -> list:
    from pipelines.shards import identity, is_glob, is_sharded
    if "://" in path or is_glob(path):
        return identity(path)
    if os.path.isdir(path):
        from pipelines.dataset import folder_image_files
        if os.path.exists(os.path.join(path, "dataset_info.json")) or is_sharded(path) or \
                os.path.exists(os.path.join(path, "state.json")):  # save_to_disk, shards
            files = [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs]
        else:  # a folder of images: only what the reader reads (other files do not matter)
            files = folder_image_files(path)
        return sorted([os.path.relpath(f, path), *_stat(f)] for f in files)
    return [path, *_stat(path)]


def fingerprints(recipe) -> list[str]:
    """One fingerprint per op: the dataset's identity plus every op config up to that op."""
    ident = {"dataset": _file_identity(recipe.dataset_path),
             "image_columns": recipe.image_columns}
    if getattr(recipe, "image_roots", None) is not None:  # checked at load: part of the input
        ident["image_roots"] = recipe.image_roots
    h = hashlib.sha256(dumps(ident).encode())
    out = []
    for name, params in recipe.process:
        h.update(dumps({name: params}).encode())
        out.append(h.copy().hexdigest()[:16])
    return out


class Checkpoint:
    """``work_dir/checkpoint/state.json`` names the last finished op and its fingerprint;
    ``work_dir/checkpoint/data`` holds the dataset after it (written atomically)."""

    def __init__(self, work_dir: str, fps: list[str], enabled: bool = True,
                 name: str = "checkpoint"):
        self.dir = os.path.join(work_dir, name)  # each executor keeps its own snapshot format
        self.fps = fps
        self.enabled = enabled

    @property
    def state_path(self) -> str:
        return os.path.join(self.dir, "state.json")

    def last_done(self) -> Optional[dict]:
        """The saved state when it matches this recipe's prefix, else None."""
        if not self.enabled or not os.path.exists(self.state_path):
            return None
        try:
            with open(self.state_path, encoding="utf-8") as fh:
                state = json.load(fh)
        except (OSError, json.JSONDecodeError):
            return None
        i = state.get("op_index", -1)
        if 0 <= i < len(self.fps) and state.get("fingerprint") == self.fps[i] \
                and os.path.isdir(os.path.join(self.dir, state.get("data", ""))):
            return state
        return None

    def data_path(self, state: dict) -> str:
        return os.path.join(self.dir, state["data"])

    @staticmethod
    def quiet_save(save_fn, path: str) -> None:
        """``save_fn(path)`` without a progress bar of its own (saving is not an op).  Only
        HF datasets draws one, and only when loaded (the Ray executor never imports it)."""
        datasets = sys.modules.get("datasets")
        if datasets is None:
            save_fn(path)
            return
        bars = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        try:
            save_fn(path)
        finally:
            if bars:
                datasets.enable_progress_bars()

    def save(self, op_index: int, save_fn, extra: dict) -> None:
        """``save_fn(dir)`` writes the dataset; the state flips only once it is complete."""
        if not self.enabled:
            return
        t0 = time.time()
        os.makedirs(self.dir, exist_ok=True)
        name = f"data_{op_index:03d}"
        tmp = os.path.join(self.dir, name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.quiet_save(save_fn, tmp)
        final = os.path.join(self.dir, name)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        state = {"op_index": op_index, "fingerprint": self.fps[op_index], "data": name, **extra}
        with open(self.state_path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(state, fh)
        os.replace(self.state_path + ".tmp", self.state_path)
        for entry in os.listdir(self.dir):  # older snapshots are no longer needed
            if entry.startswith("data_") and entry != name:
                shutil.rmtree(os.path.join(self.dir, entry), ignore_errors=True)
        logger.info("checkpoint after op %d saved in %.2fs", op_index, time.time() - t0)
