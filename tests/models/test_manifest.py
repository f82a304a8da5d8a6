"""The committed manifest describes exactly the files the build produces."""

from __future__ import annotations

import shutil

import pytest

from cutout.toolchain.models import (
    DEFAULT_OUT,
    MANIFEST_PATH,
    ModelIntegrityError,
    check_manifest,
    load_manifest,
    verify_model,
    write_manifest,
)


def test_manifest_matches_build(built_models):
    committed = {e.id: e for e in load_manifest()}
    # Equal entries mean equal sha256/bytes of the fused files: the committed
    # manifest is up to date with sources.json and the fusion code.
    assert committed == built_models
    for entry in committed.values():
        path = DEFAULT_OUT / entry.file
        assert path.stat().st_size == entry.bytes
        verify_model(path, entry)
    assert check_manifest() == []


def test_manifest_is_canonical_json(tmp_path):
    """Generated with sorted keys / indent 2, so a rebuild yields no diff."""
    again = write_manifest(load_manifest(), tmp_path / "manifest.json")
    assert again.read_text(encoding="utf-8") == MANIFEST_PATH.read_text(encoding="utf-8")


def test_tampered_model_is_rejected(built_models, tmp_path):
    entry = built_models["u2netp"]
    bad = tmp_path / entry.file
    shutil.copyfile(DEFAULT_OUT / entry.file, bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size: only the hash can tell
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        verify_model(bad, entry)
    # check_manifest reports it too
    assert any("sha256" in p for p in check_manifest(models_dir=tmp_path))


def test_truncated_and_missing_model_are_rejected(built_models, tmp_path):
    entry = built_models["u2netp"]
    short = tmp_path / entry.file
    short.write_bytes((DEFAULT_OUT / entry.file).read_bytes()[:-1])
    with pytest.raises(ModelIntegrityError, match="bytes"):
        verify_model(short, entry)
    with pytest.raises(ModelIntegrityError, match="missing"):
        verify_model(tmp_path / "nope.onnx", entry)
