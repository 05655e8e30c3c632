"""Datasets that outgrow one machine: shard folders / globs read by Ray workers, sharded
export with a manifest, and object storage (a real S3-compatible server: moto, started here)."""
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipelines.cli import process_main
from pipelines.config import RecipeError, parse_recipe
from tests.conftest import read_jsonl

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

HEADER_OPS = [{"image_shape_filter": {"min_width": 20, "min_height": 20}},
              {"image_size_filter": {"min_size": "100B"}}]


def _images(root: Path) -> list[str]:
    from PIL import Image
    (root / "img").mkdir(parents=True, exist_ok=True)
    names = []
    for i, (w, h) in enumerate([(64, 48), (12, 12), (40, 30), (80, 20), (33, 44)]):
        Image.new("RGB", (w, h), (i * 40, 100, 200 - i * 30)).save(root / "img" / f"{i}.png")
        names.append(f"{i}.png")
    return names


def _shards(root: Path, n_rows: int = 23) -> Path:
    """3 jsonl shards and 1 parquet shard in nested folders; image paths relative to each
    shard's folder (../img/...)."""
    names = _images(root)
    data = root / "data"
    (data / "part-b").mkdir(parents=True)
    rows = [{"images": [f"../img/{names[i % len(names)]}"], "k": i} for i in range(n_rows)]
    chunks = [rows[0:7], rows[7:12], rows[12:18], rows[18:]]
    for j, chunk in enumerate(chunks[:2]):
        (data / f"s{j}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chunk))
    (data / "part-b" / "s2.jsonl").write_text(
        "".join(json.dumps(dict(r, images=["../" + r["images"][0]])) + "\n" for r in chunks[2]))
    pq.write_table(pa.Table.from_pylist(chunks[3]), data / "s3.parquet")
    return data


def _recipe(tmp: Path, dataset: str, export: str, executor: str) -> Path:
    p = tmp / f"{executor}-{abs(hash(export)) % 10**6}.yaml"
    p.write_text(yaml.safe_dump({"project_name": "scale", "dataset_path": dataset,
                                 "export_path": export, "work_dir": str(tmp / f"w-{executor}"),
                                 "executor_type": executor, "np": 2,
                                 "process": HEADER_OPS}))
    return p


@pytest.fixture(scope="module")
def ray_local():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


def _by_k(rows):
    return {r["k"]: r for r in rows}


def test_shard_folder_and_glob_on_ray_match_local(tmp_path, ray_local):
    data = _shards(tmp_path)
    assert process_main(["--config", str(_recipe(tmp_path, str(data), str(tmp_path / "l.jsonl"),
                                                  "local"))]) == 0
    local = read_jsonl(tmp_path / "l.jsonl")
    out = tmp_path / "parts"
    assert process_main(["--config", str(_recipe(tmp_path, str(data), str(out) + "/",
                                                  "ray"))]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    parts = [pq.read_table(out / p["path"]).to_pylist() for p in manifest["parts"]]
    assert [len(p) for p in parts] == [p["rows"] for p in manifest["parts"]]
    on_ray = [r for p in parts for r in p]
    assert manifest["rows"] == len(on_ray) == len(local) == 23 - 5     # 12x12 images dropped
    assert _by_k(on_ray).keys() == _by_k(local).keys()
    for k, r in _by_k(local).items():
        assert json.loads(_by_k(on_ray)[k]["__dj__stats__"]) == r["__dj__stats__"]
        assert _by_k(on_ray)[k]["images"] == r["images"] and os.path.isfile(r["images"][0])
    # a glob picks a subset of shards; a jsonl-named folder gets jsonl parts
    out2 = tmp_path / "parts.jsonl"
    assert process_main(["--config", str(_recipe(tmp_path, str(data / "*.jsonl"),
                                                  str(out2) + "/", "ray"))]) == 0
    manifest = json.loads((out2 / "manifest.json").read_text())
    assert manifest["format"] == "jsonl" and manifest["rows"] == 12 - 3
    ids = [json.loads(line)["k"] for p in manifest["parts"]
           for line in (out2 / p["path"]).read_text().splitlines()]
    assert sorted(ids) == [k for k in range(12) if k % 5 != 1]


def test_unreadable_shard_stops_the_run_naming_it(tmp_path, ray_local, capsys):
    data = _shards(tmp_path)
    with open(data / "s1.jsonl", "a") as fh:
        fh.write('{"images": ["../img/0.png"], "k": 99}\n{not json\n')
    # a dataset that cannot be read is refused before any op runs: exit 2, like a bad recipe
    assert process_main(["--config", str(_recipe(tmp_path, str(data), str(tmp_path / "o") + "/",
                                                  "ray"))]) == 2
    err = capsys.readouterr().err
    assert "dataset error:" in err and "s1.jsonl:7: invalid JSON line" in err
    assert not (tmp_path / "o" / "manifest.json").exists()   # no partial result passed off


# ------------------------------------------------------------------------------ object storage
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    """A moto S3 server that enforces credentials (after the 3 set-up calls that create them)."""
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("moto")
    port = _free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        iam.put_user_policy(UserName="reader", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        yield {"url": url, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _s3_env(server, with_keys=True) -> dict:
    env = {"AWS_ENDPOINT_URL": server["url"], "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}
    if with_keys:
        env.update(AWS_ACCESS_KEY_ID=server["key"], AWS_SECRET_ACCESS_KEY=server["secret"])
    return env


def test_s3_dataset_images_and_sharded_export(tmp_path, s3_server, monkeypatch):
    import boto3
    for k, v in _s3_env(s3_server).items():
        monkeypatch.setenv(k, v)
    s3 = boto3.client("s3", endpoint_url=s3_server["url"], region_name="us-east-1",
                      aws_access_key_id=s3_server["key"],
                      aws_secret_access_key=s3_server["secret"])
    s3.create_bucket(Bucket="lake")
    data = _shards(tmp_path)
    for f in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        s3.upload_file(str(f), "lake", "ds/" + str(f.relative_to(tmp_path)))
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False,   # workers get the env
             logging_level=logging.WARNING)
    try:
        rc = process_main(["--config", str(_recipe(tmp_path, "s3://lake/ds/data/",
                                                    "s3://lake/out/", "ray"))])
    finally:
        ray.shutdown()
    assert rc == 0
    manifest = json.loads(s3.get_object(Bucket="lake", Key="out/manifest.json")["Body"].read())
    assert manifest["rows"] == 18
    rows = []
    for p in manifest["parts"]:
        body = s3.get_object(Bucket="lake", Key=f"out/{p['path']}")["Body"].read()
        rows += pq.read_table(pa.BufferReader(body)).to_pylist()
    assert len(rows) == 18
    for r in rows:
        assert r["images"][0].startswith("s3://lake/ds/img/")          # resolved to URLs
        stats = json.loads(r["__dj__stats__"])
        assert stats["image_width"][0] >= 20 and stats["image_sizes"][0] > 100  # read from S3


def test_s3_without_or_with_bad_credentials_names_the_url(tmp_path, s3_server, monkeypatch):
    for k, v in _s3_env(s3_server, with_keys=False).items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    recipe = _recipe(tmp_path, "s3://lake/ds/data/", str(tmp_path / "o.jsonl"), "local")
    with pytest.raises(RecipeError, match="s3://lake/ds/data/: no AWS credentials"):
        parse_recipe(["--config", str(recipe)])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONG")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    from ops.image.remote import _filesystem
    _filesystem.cache_clear()
    with pytest.raises(RecipeError, match="s3://lake/ds/data/"):
        parse_recipe(["--config", str(recipe)])
    # an image URL that cannot be read is that sample's error, naming the URL
    from ops.image.io import ImageLoadError, read_header
    with pytest.raises(ImageLoadError, match="s3://lake/ds/img/0.png"):
        read_header("s3://lake/ds/img/0.png")
