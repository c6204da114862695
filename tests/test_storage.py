"""The storage layer on local paths (S3 is exercised against a real server in the services tier)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakehouse import storage
from lakehouse.settings import load_settings


@pytest.fixture
def settings(tmp_path):
    return load_settings({"LAKEHOUSE_HOME": str(tmp_path)})


def test_write_creates_parents_and_round_trips(settings, tmp_path):
    uri = str(tmp_path / "a" / "b" / "c.bin")
    assert not storage.exists(settings, uri)
    storage.write_bytes(settings, uri, b"hello")
    assert storage.exists(settings, uri)
    assert storage.read_bytes(settings, uri) == b"hello"
    assert (tmp_path / "a" / "b" / "c.bin").read_bytes() == b"hello"
    storage.write_bytes(settings, uri, b"replaced")
    assert storage.read_bytes(settings, uri) == b"replaced"
    assert os.listdir(tmp_path / "a" / "b") == ["c.bin"]  # no temporary file left behind


def test_file_scheme_uris(settings, tmp_path):
    uri = (tmp_path / "x" / "y.txt").as_uri()
    storage.write_bytes(settings, uri, b"1")
    assert (tmp_path / "x" / "y.txt").read_bytes() == b"1"
    assert storage.list_files(settings, (tmp_path / "x").as_uri()) == [uri]


def test_list_files_is_recursive_sorted_and_skips_hidden(settings, tmp_path):
    root = tmp_path / "root"
    for rel in ("b/2.txt", "a/1.txt", "a/z/3.txt", "top.txt"):
        storage.write_bytes(settings, str(root / rel), rel.encode())
    (root / "a" / ".top.txt.abc.tmp").write_bytes(b"half")  # a killed writer's leftover
    (root / ".hidden").mkdir()
    (root / ".hidden" / "f").write_bytes(b"x")
    assert storage.list_files(settings, str(root)) == [
        str(root / "a" / "1.txt"),
        str(root / "a" / "z" / "3.txt"),
        str(root / "b" / "2.txt"),
        str(root / "top.txt"),
    ]
    assert storage.list_files(settings, str(root) + "/") == storage.list_files(settings, str(root))
    assert storage.list_files(settings, str(tmp_path / "absent")) == []


def test_remove_prefix_is_recursive_and_tolerates_absence(settings, tmp_path):
    keep = tmp_path / "d" / "ingest_date=2026-01-06" / "f"
    for path in (tmp_path / "d" / "ingest_date=2026-01-05" / "h" / "f", keep):
        storage.write_bytes(settings, str(path), b"x")
    storage.remove_prefix(settings, str(tmp_path / "d" / "ingest_date=2026-01-05"))
    assert not (tmp_path / "d" / "ingest_date=2026-01-05").exists()
    assert keep.read_bytes() == b"x"
    storage.remove_prefix(settings, str(tmp_path / "d" / "ingest_date=2026-01-05"))  # no error
    storage.remove_prefix(settings, str(tmp_path / "never" / "there"))


def test_failed_write_keeps_old_object_and_leaves_no_temp(settings, tmp_path, monkeypatch):
    target = tmp_path / "obj.bin"
    storage.write_bytes(settings, str(target), b"old")

    def broken_replace(src, dst):
        raise OSError("killed mid-write")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="killed"):
        storage.write_bytes(settings, str(target), b"new content")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".lakehouse") == ["obj.bin"]


def test_s3_uris_map_to_bucket_paths_with_settings_options(tmp_path):
    settings = load_settings(
        {
            "LAKEHOUSE_HOME": str(tmp_path),
            "LAKEHOUSE_S3_ENDPOINT": "http://127.0.0.1:8333",
            "AWS_ACCESS_KEY_ID": "key",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_REGION": "eu-west-1",
        }
    )
    options = storage.s3_options(settings)
    assert options["endpoint_url"] == "http://127.0.0.1:8333"
    assert options["key"] == "key"
    assert options["secret"] == "secret"
    assert options["client_kwargs"] == {"region_name": "eu-west-1"}
    assert options["config_kwargs"] == {"s3": {"addressing_style": "path"}}
    fs, path = storage.filesystem(settings, "s3a://bucket/raw/x.gz")
    assert "s3" in fs.protocol
    assert path == "bucket/raw/x.gz"
    aws = load_settings({"LAKEHOUSE_HOME": str(tmp_path)})
    assert "endpoint_url" not in storage.s3_options(aws)
    assert "config_kwargs" not in storage.s3_options(aws)


def test_local_relative_paths_resolve(settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage.write_bytes(settings, "rel/f.txt", b"r")
    assert Path(tmp_path / "rel" / "f.txt").read_bytes() == b"r"
    assert storage.read_bytes(settings, "rel/f.txt") == b"r"
