"""Load and export datasets: jsonl, json, parquet, folders of images, HF ``save_to_disk`` dirs.

Loading adds ``Fields.id`` (the row number as a string, unless present), turns
``Fields.stats`` / ``Fields.meta`` into their storage form (JSON strings) and resolves relative
image paths against the dataset file's folder, so every worker (and every Ray node that shares
the file system) sees valid paths.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Optional

import pyarrow as pa

from ops.base import DICT_COLUMNS, decode_dict, dumps
from ops.fields import BOOKKEEPING, Fields

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif",
              ".jxl", ".heic", ".ppm", ".pgm", ".pbm", ".tga", ".ico"}
DEFAULT_IMAGE_COLUMNS = ("images", "image", "image_path", "image_path1", "image_path2")


class DatasetError(ValueError):
    pass


def read_rows(path: str, suffixes: Optional[Iterable[str]] = None) -> pa.Table:
    """Read a dataset source into an Arrow table (no bookkeeping added).  ``suffixes``
    (e.g. ``[".png"]``): a folder's files read, instead of every image suffix."""
    p = Path(path)
    if p.is_dir():
        if (p / "dataset_info.json").exists() or (p / "state.json").exists():
            import datasets
            return datasets.load_from_disk(str(p)).data.table
        wanted = {x.lower() for x in suffixes} if suffixes else IMAGE_EXTS
        files = folder_image_files(p, wanted)
        if not files:
            raise DatasetError(f"{path}: folder holds no image files ({', '.join(sorted(wanted))})")
        return pa.table({"images": [[f] for f in files]})
    ext = p.suffix.lower()
    if ext == ".parquet":
        import pyarrow.parquet as pq
        return pq.read_table(str(p))
    if ext in (".jsonl", ".json"):
        return _read_json(p)
    raise DatasetError(f"{path}: unsupported dataset format '{ext}' (jsonl, json, parquet, "
                       "or a folder of images)")


def folder_image_files(folder, suffixes=None) -> list[str]:
    """Every file with an image extension (or one of ``suffixes``) under ``folder``, sorted.  Broken symlinks (dangling,
    loops) are listed too: the op that reads them reports each as an error instead of the
    file vanishing from the dataset.  Symlinked folders are not followed (no cycles)."""
    return sorted(str(f) for f in Path(folder).rglob("*")
                  if f.suffix.lower() in (suffixes or IMAGE_EXTS) and
                  (f.is_file() or f.is_symlink()))


def _decode_line(p: Path, n: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{p}:{n}: not UTF-8 text (byte {raw[exc.start:exc.start + 1]!r} "
                           f"at column {exc.start + 1}); re-encode the file as UTF-8") from None


JSON_CHUNK_ROWS = 20_000  # JSON lines become Arrow this many at a time (bounded memory)


def _read_json(p: Path) -> pa.Table:
    with open(p, "rb") as fh:
        head = fh.read(1).lstrip()
        while head in (b" ", b"\n", b"\r", b"\t"):
            head = fh.read(1)
    if head == b"[":
        with open(p, "rb") as fh:
            raw = fh.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            n = raw.count(b"\n", 0, exc.start) + 1
            _decode_line(p, n, raw[raw.rfind(b"\n", 0, exc.start) + 1:])
            raise
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{p}: invalid JSON: {exc}") from None
        return _rows_table(p, rows)
    with open(p, "rb") as fh:
        return json_lines_table(p, enumerate(fh, 1))


def json_lines_table(p: Path, lines: Iterable[tuple[int, bytes]]) -> pa.Table:
    """JSON lines ``(line number, raw line)`` as one Arrow table; blank lines are skipped."""
    parts, rows = [], []
    for n, raw_line in lines:
        line = _decode_line(p, n, raw_line)
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{p}:{n}: invalid JSON line: {exc}") from None
        if len(rows) >= JSON_CHUNK_ROWS:
            parts.append(_rows_table(p, rows))
            rows = []
    if rows or not parts:
        parts.append(_rows_table(p, rows))
    try:
        return pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 \
            else parts[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DatasetError(f"{p}: columns have mixed types across rows: {exc}") from None


def _rows_table(p: Path, rows: list) -> pa.Table:
    if not all(isinstance(r, dict) for r in rows):
        raise DatasetError(f"{p}: every record must be a JSON object")
    for r in rows:  # dict columns are stored as JSON strings whatever their content
        for c in DICT_COLUMNS:
            if c in r and not isinstance(r[c], str):
                r[c] = dumps(r[c] or {})
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DatasetError(f"{p}: columns have mixed types across rows: {exc}") from None


def _resolve(value, base: str):
    if value is None:
        return None
    if isinstance(value, str):
        if not value or "://" in value or os.path.isabs(value):
            return value
        return os.path.normpath(os.path.join(base, value))
    return [_resolve(v, base) for v in value]


def prepare_table(table: pa.Table, dataset_path: str,
                  image_columns: Optional[Iterable[str]] = None,
                  image_roots: Optional[list[str]] = None, first_id: int = 0,
                  check_ids: bool = True) -> pa.Table:
    """Add id / stats / meta columns and resolve image paths; with ``image_roots`` (real
    folders or URL prefixes, see pipelines.paths) refuse a dataset whose image paths leave
    them.  A piece of a larger dataset numbers its rows from ``first_id``; ``check_ids``
    False leaves the dataset's own ids to be checked over the whole dataset."""
    base = dataset_path if os.path.isdir(dataset_path) else os.path.dirname(dataset_path)
    cols = list(image_columns) if image_columns else [c for c in DEFAULT_IMAGE_COLUMNS
                                                      if c in table.column_names]
    for c in cols:
        if c not in table.column_names:
            raise DatasetError(f"image column '{c}' is not in the dataset "
                               f"(columns: {', '.join(table.column_names)})")
        column = table.column(c)
        chunks = []
        for i in range(0, max(1, len(column)), JSON_CHUNK_ROWS):  # no list of every path
            part = column.slice(i, JSON_CHUNK_ROWS)
            values = part.to_pylist()
            resolved = [_resolve(v, base) for v in values]
            chunks += part.chunks if resolved == values else [pa.array(resolved, column.type)]
        table = table.set_column(table.column_names.index(c), c,
                                 pa.chunked_array(chunks, column.type))
    n = table.num_rows
    for c in DICT_COLUMNS:
        if c not in table.column_names:
            table = table.append_column(c, pa.array(["{}"] * n, pa.string()))
        elif not pa.types.is_string(table.schema.field(c).type):
            vals = [dumps(v or {}) for v in table.column(c).to_pylist()]
            table = table.set_column(table.column_names.index(c), c, pa.array(vals, pa.string()))
    if Fields.id not in table.column_names:
        table = table.append_column(Fields.id, pa.array(range(first_id, first_id + n),
                                                        pa.int64()).cast(pa.string()))
    elif check_ids:
        check_unique_ids(table.column(Fields.id).to_pylist())
    check_image_roots(table, cols, image_roots)
    return table


def check_image_roots(table: pa.Table, image_columns: Optional[Iterable[str]],
                      image_roots: Optional[list[str]]) -> None:
    """DatasetError naming the rows whose (resolved) image paths leave ``image_roots``."""
    if image_roots is None:
        return
    from pipelines.paths import describe, outside_roots
    cols = list(image_columns) if image_columns else [c for c in DEFAULT_IMAGE_COLUMNS
                                                      if c in table.column_names]
    bad = outside_roots({c: table.column(c).to_pylist() for c in cols}, image_roots,
                        table.column(Fields.id).to_pylist())
    if bad:
        raise DatasetError(describe(bad, image_roots))


def check_unique_ids(ids: list) -> None:
    """Ids the dataset brings (``__dj__id__``) must be distinct: every report, the resume and a
    fan-out op's '<parent>/<k>' children are keyed by them."""
    seen: dict = {}
    dups = []
    for row, rid in enumerate(ids):
        if rid is None:
            raise DatasetError(f"row {row}: {Fields.id} is null (ids must be distinct strings; "
                               f"drop the column to have rows numbered)")
        if rid in seen:
            dups.append(f"'{rid}' (rows {seen[rid]} and {row})")
        else:
            seen[rid] = row
    if dups:
        raise DatasetError(f"{len(dups)} duplicate {Fields.id} value(s): {', '.join(dups[:5])}"
                           f"{' ...' if len(dups) > 5 else ''}; ids must be distinct (drop the "
                           f"column to have rows numbered)")


def load_dataset(path: str, image_columns: Optional[Iterable[str]] = None,
                 image_roots: Optional[list[str]] = None,
                 suffixes: Optional[Iterable[str]] = None):
    """An HF ``datasets.Dataset`` ready for the executor."""
    import datasets
    from datasets.table import InMemoryTable

    from pipelines.shards import dataset_root, is_sharded, list_shards, read_shard
    if is_sharded(path):   # a folder / glob / URL of jsonl or parquet shards
        root = dataset_root(path)
        tables = [t for s in list_shards(path) for t in read_shard(s, root, image_columns)]
        table = pa.concat_tables(tables, promote_options="permissive")
        check_image_roots(table, image_columns, image_roots)
    else:
        table = prepare_table(read_rows(path, suffixes), path, image_columns, image_roots)
    return datasets.Dataset(InMemoryTable(table))


def public_rows(batch: dict, indices: Optional[Iterable[int]] = None) -> Iterator[dict]:
    """Rows of a storage batch as users see them: dict columns decoded, bookkeeping dropped
    (all rows, or those at ``indices``)."""
    cols = [c for c in batch if c not in BOOKKEEPING]
    n = len(batch[cols[0]]) if cols else 0
    for i in range(n) if indices is None else indices:
        row = {}
        for c in cols:
            v = batch[c][i]
            row[c] = decode_dict(v) if c in DICT_COLUMNS else v
        yield row


def export_rows(batches: Iterable[dict], drop_stats: bool = False,
                drop_hashes: bool = False) -> Iterator[dict]:
    """Rows as exported: public rows, without stats / hash meta keys when asked."""
    for b in batches:
        for r in public_rows(b):
            if drop_stats:
                r.pop(Fields.stats, None)
            if drop_hashes and isinstance(r.get(Fields.meta), dict):
                r[Fields.meta] = {k: v for k, v in r[Fields.meta].items()
                                  if not k.lower().endswith("hash")}
            yield r


def jsonl_line_export(path: str, options: dict) -> Optional[dict]:
    """The ``export_rows`` settings of an export that is one JSON-lines file, not split by
    size: its lines can be made where the rows are (workers) and written as they come.  None
    for json, parquet, size-split shards and folders."""
    if not path.lower().endswith(".jsonl") or path.endswith("/") or os.path.isdir(path) or \
            options.get("shard_size"):
        return None
    return {"drop_stats": bool(options.get("drop_stats")),
            "drop_hashes": bool(options.get("drop_hashes"))}


def write_export_lines(lines: Iterable[str], path: str) -> int:
    """A JSON-lines export from lines made elsewhere (``jsonl_line_export``), written to a
    temporary file and renamed, as ``export_batches`` does; returns the rows written."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    n = 0
    with open(f"{path}.0.tmp", "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line)
            n += 1
    os.replace(f"{path}.0.tmp", path)
    return n


def _parquet_table(rows: list[dict]) -> pa.Table:
    try:
        table = pa.Table.from_pylist(rows) if rows else pa.table({})
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # stats/meta whose values change type across rows: keep them as JSON text
        for r in rows:
            for c in DICT_COLUMNS:
                if c in r:
                    r[c] = dumps(r[c])
        return pa.Table.from_pylist(rows)
    for c in DICT_COLUMNS:   # all-empty dicts: Parquet cannot store a struct without fields
        if c in table.column_names:
            t = table.schema.field(c).type
            if pa.types.is_struct(t) and t.num_fields == 0:
                table = table.set_column(table.column_names.index(c), c,
                                         pa.array([dumps(r.get(c) or {}) for r in rows]))
    return table


def _shard_name(path: str, k: int, n: int) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{k:05d}-of-{n:05d}{p.suffix}"))


def export_batches(batches: Iterable[dict], path: str, shard_size: int = 0,
                   drop_stats: bool = False, drop_hashes: bool = False) -> int:
    """Write storage batches to jsonl / json / parquet (by extension); returns rows written.

    ``shard_size`` > 0 (bytes, Data-Juicer's ``export_shard_size``): several files
    ``<stem>-00000-of-00003<ext>`` of at most about that size each.  ``drop_stats`` /
    ``drop_hashes``: leave out the stats column / meta keys ending in "hash"."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    ext = Path(path).suffix.lower()
    rows_iter = export_rows(batches, drop_stats, drop_hashes)
    written: list[str] = []     # temporary shard files, in order
    n = 0
    if ext == ".parquet":
        import pyarrow.parquet as pq
        rows = list(rows_iter)
        n = len(rows)
        table = _parquet_table(rows)
        per_shard = n or 1
        if shard_size and n:
            per_row = max(1, table.nbytes // n)
            per_shard = max(1, shard_size // per_row)
        for start in range(0, max(n, 1), per_shard):
            written.append(f"{path}.{len(written)}.tmp")
            pq.write_table(table.slice(start, per_shard), written[-1])
    else:
        fh, size, count = None, 0, 0

        def close():
            if fh is not None:
                fh.write("]\n" if ext == ".json" else "")
                fh.close()
        for r in rows_iter:
            line = dumps(r)
            need = len(line.encode("utf-8")) + 2
            if fh is None or (shard_size and count and size + need > shard_size):
                close()
                written.append(f"{path}.{len(written)}.tmp")
                fh = open(written[-1], "w", encoding="utf-8")
                fh.write("[" if ext == ".json" else "")
                size, count = 1, 0
            if ext == ".json" and count:
                fh.write(",\n")
            fh.write(line if ext == ".json" else line + "\n")
            size, count, n = size + need, count + 1, n + 1
        if fh is None:    # no rows: still one (empty) file
            written.append(f"{path}.0.tmp")
            fh = open(written[-1], "w", encoding="utf-8")
            fh.write("[" if ext == ".json" else "")
        close()
    if not shard_size:
        os.replace(written[0], path)
    else:
        for k, tmp in enumerate(written):
            os.replace(tmp, _shard_name(path, k, len(written)))
    return n
