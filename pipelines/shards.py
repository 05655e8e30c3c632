"""Datasets stored as shards: a folder, a glob or an object-storage prefix of jsonl / json /
parquet files.  Each shard is read on its own, in bounded pieces, so a worker holds one piece
at a time and the driver never holds the dataset.

Row ids are ``<shard path relative to the dataset root>:<row number in the shard>``: stable
across runs, executors and worker counts.  Relative image paths resolve against the shard's
own folder (or URL prefix).
"""
from __future__ import annotations

import glob
import json
import os
import posixpath
from typing import Iterator, Optional

import pyarrow as pa

from ops.base import DICT_COLUMNS, dumps
from ops.fields import Fields
from ops.image.remote import RemoteError, is_url, list_files, open_file
from pipelines.dataset import IMAGE_EXTS, DatasetError, prepare_table

SHARD_SUFFIXES = (".jsonl", ".json", ".parquet")
GLOB_CHARS = ("*", "?", "[")


def is_glob(path: str) -> bool:
    return any(c in path for c in GLOB_CHARS)


def is_sharded(path: str) -> bool:
    """True for a glob, a URL, or a local folder holding shard files and no images."""
    if is_url(path) or is_glob(path):
        return True
    if not os.path.isdir(path) or os.path.exists(os.path.join(path, "dataset_info.json")) \
            or os.path.exists(os.path.join(path, "state.json")):
        return False
    for _, _, files in os.walk(path):
        for f in files:
            ext = os.path.splitext(f)[1].lower()
            if ext in IMAGE_EXTS:
                return False
            if ext in SHARD_SUFFIXES:
                return True
    return False


def dataset_root(path: str) -> str:
    """The folder / prefix shard ids are relative to."""
    if is_glob(path):
        head = path
        while is_glob(head):
            head = os.path.dirname(head)
        return head
    if is_url(path) and path.lower().endswith(SHARD_SUFFIXES):
        return path.rsplit("/", 1)[0]
    return path.rstrip("/")


def list_shards(path: str) -> list[str]:
    """Every shard of the dataset, sorted; DatasetError naming the path when there is none."""
    if is_url(path):
        try:
            files = [path] if path.lower().endswith(SHARD_SUFFIXES) else \
                list_files(path, SHARD_SUFFIXES)
        except RemoteError as exc:
            raise DatasetError(f"dataset_path: {exc}") from None
    elif is_glob(path):
        files = sorted(f for f in glob.glob(path, recursive=True)
                       if os.path.isfile(f) and f.lower().endswith(SHARD_SUFFIXES))
    else:
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
                       if f.lower().endswith(SHARD_SUFFIXES))
    if not files:
        raise DatasetError(f"dataset_path: '{path}' holds no {', '.join(SHARD_SUFFIXES)} shards")
    return files


def _rel(shard: str, root: str) -> str:
    if is_url(shard):
        return shard[len(root):].lstrip("/") if shard.startswith(root) else shard
    return os.path.relpath(shard, root)


def _resolve_urls(table: pa.Table, base: str, image_columns: Optional[list]) -> pa.Table:
    """Relative image paths of a shard stored at a URL become URLs under its prefix."""
    from pipelines.dataset import DEFAULT_IMAGE_COLUMNS

    def fix(v):
        if v is None:
            return None
        if isinstance(v, str):
            if not v or "://" in v or v.startswith("/"):
                return v
            sch, rest = base.split("://", 1)
            return f"{sch}://{posixpath.normpath(rest + '/' + v)}"   # "../img" in a key
        return [fix(x) for x in v]

    cols = image_columns or [c for c in DEFAULT_IMAGE_COLUMNS if c in table.column_names]
    for c in cols:
        if c in table.column_names:
            table = table.set_column(table.column_names.index(c), c,
                                     pa.array([fix(v) for v in table.column(c).to_pylist()]))
    return table


def _json_pieces(shard: str, fh, rows: int) -> Iterator[list]:
    head = fh.read(1)
    while head in (b" ", b"\n", b"\r", b"\t"):
        head = fh.read(1)
    if head == b"[":  # one JSON array: read whole (json files are small by nature)
        try:
            data = json.loads(head + fh.read())
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{shard}: invalid JSON: {exc}") from None
        for i in range(0, len(data), rows):
            yield data[i:i + rows]
        return
    piece: list = []
    for n, line in enumerate(_lines(fh, head), 1):
        if not line.strip():
            continue
        try:
            piece.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{shard}:{n}: invalid JSON line: {exc}") from None
        if len(piece) >= rows:
            yield piece
            piece = []
    if piece:
        yield piece


def _lines(fh, head: bytes, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Lines of a binary file read in 1 MiB chunks (works for object-storage streams too)."""
    rest = head
    while True:
        data = fh.read(chunk)
        if not data:
            break
        rest += data
        *lines, rest = rest.split(b"\n")
        yield from lines
    if rest:
        yield rest


def _json_table(shard: str, records: list) -> pa.Table:
    if not all(isinstance(r, dict) for r in records):
        raise DatasetError(f"{shard}: every record must be a JSON object")
    for r in records:
        for c in DICT_COLUMNS:
            if c in r and not isinstance(r[c], str):
                r[c] = dumps(r[c] or {})
    try:
        return pa.Table.from_pylist(records)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DatasetError(f"{shard}: columns have mixed types across rows: {exc}") from None


def _open(shard: str):
    if is_url(shard):
        try:
            return open_file(shard)
        except RemoteError as exc:
            raise DatasetError(f"shard {exc}") from None
    try:
        return open(shard, "rb")
    except OSError as exc:
        raise DatasetError(f"shard {shard}: cannot open: {exc.strerror or exc}") from None


def read_shard(shard: str, root: str, image_columns: Optional[list] = None,
               rows: int = 50_000) -> Iterator[pa.Table]:
    """Prepared tables (ids, stats/meta columns, resolved image paths) of at most ``rows`` rows
    each.  Any failure is a DatasetError naming the shard (and the line for jsonl)."""
    rel = _rel(shard, root)
    base = shard.rsplit("/", 1)[0] if is_url(shard) else os.path.dirname(shard)
    offset = 0
    with _open(shard) as fh:
        if shard.lower().endswith(".parquet"):
            import pyarrow.parquet as pq
            try:
                pieces = (pa.Table.from_batches([b]) for b in
                          pq.ParquetFile(fh).iter_batches(batch_size=rows))
                pieces = _checked(shard, pieces)
            except Exception as exc:
                raise DatasetError(f"shard {shard}: not a readable parquet file: {exc}") from None
        else:
            pieces = (_json_table(shard, recs) for recs in _json_pieces(shard, fh, rows))
        for table in pieces:
            n = table.num_rows
            if Fields.id not in table.column_names:
                table = table.append_column(
                    Fields.id, pa.array([f"{rel}:{offset + i}" for i in range(n)], pa.string()))
            if is_url(shard):
                table = _resolve_urls(table, base, image_columns)
            yield prepare_table(table, shard if not is_url(shard) else "/", image_columns)
            offset += n


def _checked(shard: str, pieces):
    try:
        yield from pieces
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"shard {shard}: unreadable: {exc}") from None


def identity(path: str) -> list:
    """[name, size, mtime] of every shard (the dataset's identity for checkpoints)."""
    if is_url(path):
        import pyarrow.fs as pafs
        from ops.image.remote import filesystem
        fs, inner = filesystem(path)
        try:
            infos = [fs.get_file_info(inner)] if path.lower().endswith(SHARD_SUFFIXES) else \
                fs.get_file_info(pafs.FileSelector(inner.rstrip("/"), recursive=True))
        except Exception as exc:
            raise DatasetError(f"dataset_path: {path}: cannot list: {exc}") from None
        return sorted([i.path, i.size, str(i.mtime)] for i in infos
                      if i.type == pafs.FileType.File)
    out = []
    for f in list_shards(path):
        st = os.stat(f)
        out.append([f, st.st_size, int(st.st_mtime)])
    return out
