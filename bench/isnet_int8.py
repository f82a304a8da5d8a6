"""How `isnet-wasm`'s static int8 recipe was chosen, and what it scores (docs/MODELS.md).

    python bench/isnet_int8.py select 99.999 99.99 ...   # the percentile sweep
    python bench/isnet_int8.py stages                    # what each stage's int8 costs
    python bench/isnet_int8.py equalize 0.25 0.5 0.75    # per-channel equalisation first
    python bench/isnet_int8.py davis BEFORE.onnx AFTER.onnx   # report two fused files

`select` scores ranges at each percentile (and the shipped choice of float nodes) by
the mask's agreement with the fp32 graph on the selection set: scikit-image photos only
(the wheel's photos other than the calibration ones, plus the calibration photos whole
and cropped; those whose fp32 mask covers >= 2 %). The activation histograms are
collected once over the 18 calibration views (~4 min) and kept in build/cache.

`davis` reports two fused `isnet-wasm` files on ../shared/eval/davis345 (every 3rd
photo; skips when absent): quality through the product's native pipeline, and agreement
with the fp16 original at 1024². It is never used to choose.
"""
from __future__ import annotations

import json
import pickle
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pysrc"))

from cutout.toolchain import isnet  # noqa: E402
from cutout.toolchain import quantize as Q  # noqa: E402
from cutout.toolchain.fetch import DEFAULT_CACHE  # noqa: E402

HELD_OUT = ("motorcycle_right", "coins", "clock_motion", "cell", "ihc", "logo")
HISTOGRAMS = DEFAULT_CACHE / "isnet-activation-histograms.pkl"


def selection_views() -> list[np.ndarray]:
    wheel = next(DEFAULT_CACHE.glob("scikit_image-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        views = [np.asarray(Image.open(z.open(f"skimage/data/{name}.png")).convert("RGB"))
                 for name in HELD_OUT]
    for path in Q.calibration_photos(DEFAULT_CACHE):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = rgb.shape[:2]
        views += [rgb, np.ascontiguousarray(rgb[: h * 3 // 4, w // 4:])]
    return [isnet.preprocess(v, (isnet.BASE_SIZE, isnet.BASE_SIZE)) for v in views]


def histograms(fp32_path: str, name: str, cache: Path = HISTOGRAMS) -> dict:
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    inputs = isnet.augmented_calibration_inputs(isnet.BASE_SIZE, DEFAULT_CACHE)
    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(Path(fp32_path), None, f"{tmp}/augmented.onnx",
                                       CalibrationMethod.Percentile)
        for i in range(len(inputs)):  # one view at a time: bounded memory
            feeds = Q._Feeds(name, inputs)
            feeds.set_range(i, i + 1)
            calibrator.collect_data(feeds)
        hist = calibrator.collector.histogram_dict
    cache.write_bytes(pickle.dumps(hist))
    return hist


def _reference(fp32: onnx.ModelProto, tmp: str, calibrated: onnx.ModelProto | None = None,
               cache: Path = HISTOGRAMS) -> tuple[list, list, list[int], dict]:
    """The selection views, the fp32 graph's outputs on them, the views scored (mask >= 2 %
    of the frame) and the activation histograms (of `calibrated`, an equivalent graph,
    when given)."""
    name, out = fp32.graph.input[0].name, fp32.graph.output[0].name
    onnx.save(fp32, f"{tmp}/fp32.onnx")
    xs = selection_views()
    ref = Q._session(f"{tmp}/fp32.onnx")
    refs = [ref.run([out], {name: x})[0][0, 0] for x in xs]
    keep = [i for i, r in enumerate(refs) if (r >= 0.5).mean() >= 0.02]
    if calibrated is not None:
        onnx.save(calibrated, f"{tmp}/calibrated.onnx")
        return xs, refs, keep, histograms(f"{tmp}/calibrated.onnx", name, cache)
    return xs, refs, keep, histograms(f"{tmp}/fp32.onnx", name, cache)


def _ranges(hist: dict, percentile: float, path: Path) -> Path:
    from onnxruntime.quantization.calibrate import CalibrationMethod, HistogramCollector, TensorsData
    from onnxruntime.quantization.quantize import save_tensors_data

    collector = HistogramCollector("percentile", True, 2048, 128, percentile, "same")
    collector.histogram_dict = hist
    save_tensors_data(TensorsData(CalibrationMethod.Percentile,
                                  collector.compute_collection_result()), path)
    return path


def _agreement(fp32: onnx.ModelProto, ranges: Path, keep_float: list[str],
               xs: list, refs: list, keep: list[int]) -> dict:
    name, out = fp32.graph.input[0].name, fp32.graph.output[0].name
    session = Q._session(Q.static_int8(fp32, None, ranges, sorted(set(keep_float))), keep_qdq=True)
    ious, maes = [], []
    for i in keep:
        y = session.run([out], {name: xs[i]})[0][0, 0]
        a, b = y >= 0.5, refs[i] >= 0.5
        ious.append((a & b).sum() / max((a | b).sum(), 1))
        maes.append(float(np.abs(y - refs[i]).mean()))
    return {"views": len(keep), "agree_iou_mean": round(float(np.mean(ious)), 4),
            "agree_iou_min": round(float(np.min(ious)), 4), "alpha_mae": round(float(np.mean(maes)), 5)}


def select(percentiles: list[float]) -> None:
    fp32 = isnet.fp32_dynamic(isnet.fetch_model(DEFAULT_CACHE))
    with tempfile.TemporaryDirectory() as tmp:
        xs, refs, keep, hist = _reference(fp32, tmp)
        for p in percentiles:
            ranges = _ranges(hist, p, Path(tmp) / f"ranges-{p}.json")
            print(json.dumps({"percentile": p, **_agreement(fp32, ranges, isnet.qdq_keep_float(fp32),
                                                            xs, refs, keep)}), flush=True)


def stages() -> None:
    """Each stage alone in int8 (everything else float, the shipped ranges' percentile):
    what each one costs the agreement. "joins" are the decoder's top-level Resizes and
    Concats between stages."""
    fp32 = isnet.fp32_dynamic(isnet.fetch_model(DEFAULT_CACHE))
    shipped_float = isnet.qdq_keep_float(fp32)
    stage_of = {n.name: (n.name.split("/")[1] if n.name.count("/") >= 2 else "joins")
                for n in fp32.graph.node}
    with tempfile.TemporaryDirectory() as tmp:
        xs, refs, keep, hist = _reference(fp32, tmp)
        ranges = _ranges(hist, isnet.QDQ_PERCENTILE, Path(tmp) / "ranges.json")
        for stage in sorted(set(stage_of.values())):
            floats = [n for n, s in stage_of.items() if s != stage] + shipped_float
            print(json.dumps({"int8_only": stage, **_agreement(fp32, ranges, floats, xs, refs, keep)}),
                  flush=True)


def _channel_classes(model: onnx.ModelProto) -> tuple[Callable, dict[str, int], set]:
    """(tensor, channel) slots tied by ops a positive per-channel scale passes through
    (Relu, MaxPool, linear Resize, channel Concat, Add), as a union-find: `find`, each
    data tensor's channel count, and the classes whose scale must stay 1 (the input, and
    what reaches any other op or the output)."""
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def tie(a, b):
        parent[find(a)] = find(b)

    inits = {i.name: i for i in model.graph.initializer}
    first = model.graph.input[0].name
    channels = {first: 3}
    fixed = {(first, c) for c in range(3)}
    for n in model.graph.node:
        ins = [t for t in n.input if t in channels]
        out = n.output[0]
        if n.op_type == "Conv":
            channels[out] = inits[n.input[1]].dims[0]
        elif n.op_type in ("Relu", "MaxPool", "Resize") and n.input[0] in channels:
            channels[out] = channels[n.input[0]]
            for c in range(channels[out]):
                tie((n.input[0], c), (out, c))
        elif n.op_type == "Concat" and ins and len(ins) == len(n.input):
            channels[out] = 0
            for t in ins:
                for c in range(channels[t]):
                    tie((t, c), (out, channels[out] + c))
                channels[out] += channels[t]
        elif n.op_type == "Add" and len(ins) == 2:
            channels[out] = channels[ins[0]]
            for c in range(channels[out]):
                tie((ins[0], c), (ins[1], c))
                tie((ins[0], c), (out, c))
        elif n.op_type != "Shape":
            fixed |= {(t, c) for t in ins for c in range(channels[t])}
    fixed |= {(o.name, c) for o in model.graph.output if o.name in channels
              for c in range(channels[o.name])}
    return find, channels, {find(x) for x in fixed}


def _channel_ranges(model: onnx.ModelProto, views: list[np.ndarray], pct: float = 99.99) -> dict:
    """Per channel, the `pct` percentile of |x| of every convolution's input, over `views`."""
    import onnxruntime as ort

    name = model.graph.input[0].name
    tensors = sorted({n.input[0] for n in model.graph.node if n.op_type == "Conv"} - {name})
    found: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(0, len(tensors), 24):  # a few at a time: bounded memory at 1024²
            chunk = tensors[k:k + 24]
            probe = onnx.ModelProto()
            probe.CopyFrom(model)
            del probe.graph.output[:]
            probe.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None)
                                      for t in chunk)
            onnx.save(probe, f"{tmp}/probe.onnx")
            session = ort.InferenceSession(f"{tmp}/probe.onnx", providers=["CPUExecutionProvider"])
            for x in views:
                for t, y in zip(chunk, session.run(chunk, {name: x})):
                    r = np.percentile(np.abs(y[0]).reshape(y.shape[1], -1), pct, axis=1)
                    found[t] = np.maximum(found.get(t, r), r)
    return found


def equalized(model: onnx.ModelProto, ranges: dict, alpha: float) -> onnx.ModelProto:
    """The same network with each channel class scaled SmoothQuant's way, s = r^alpha /
    w^(1 - alpha) (r: the activations' range, w: the widest weight column reading them):
    producers' output channels divided by s, readers' input columns multiplied by it.
    The fp32 output is unchanged (to ~1e-6); only what int8 loses moves."""
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    find, channels, fixed = _channel_classes(out)
    inits = {i.name: i for i in out.graph.initializer}
    convs = [n for n in out.graph.node if n.op_type == "Conv"]
    weights = {n.name: numpy_helper.to_array(inits[n.input[1]]).astype(np.float64) for n in convs}
    r: dict = {}
    w: dict = {}
    for n in convs:
        x, columns = n.input[0], np.abs(weights[n.name]).max(axis=(0, 2, 3))
        for c in range(channels[x]):
            k = find((x, c))
            w[k] = max(w.get(k, 0.0), columns[c])
            r[k] = max(r.get(k, 0.0), ranges[x][c] if x in ranges else 0.0)
    scale = {k: r[k] ** alpha / w[k] ** (1 - alpha) for k in w if k not in fixed and r[k] > 0 < w[k]}

    def scales(t: str) -> np.ndarray:
        return np.array([scale.get(find((t, c)), 1.0) for c in range(channels[t])])

    for n in convs:
        s_in, s_out = scales(n.input[0]), scales(n.output[0])
        wn = weights[n.name] * s_in[None, :, None, None] / s_out[:, None, None, None]
        inits[n.input[1]].CopyFrom(numpy_helper.from_array(wn.astype(np.float32), n.input[1]))
        if len(n.input) > 2:
            b = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64) / s_out
            inits[n.input[2]].CopyFrom(numpy_helper.from_array(b.astype(np.float32), n.input[2]))
    return out


def equalize(alphas: list[float]) -> None:
    """Agreement of the shipped recipe on equalized graphs (calibration photos' channel
    ranges; histograms collected anew for each, ~5 min)."""
    fp32 = isnet.fp32_dynamic(isnet.fetch_model(DEFAULT_CACHE))
    ranges = _channel_ranges(fp32, isnet.calibration_inputs(isnet.BASE_SIZE, DEFAULT_CACHE))
    for alpha in alphas:
        model = equalized(fp32, ranges, alpha)
        with tempfile.TemporaryDirectory() as tmp:
            cache = DEFAULT_CACHE / f"isnet-activation-histograms-equalized-{alpha}.pkl"
            xs, refs, keep, hist = _reference(fp32, tmp, model, cache)
            ranges_file = _ranges(hist, isnet.QDQ_PERCENTILE, Path(tmp) / "ranges.json")
            print(json.dumps({"alpha": alpha, **_agreement(model, ranges_file, isnet.qdq_keep_float(model),
                                                           xs, refs, keep)}), flush=True)


def davis(before: Path, after: Path) -> None:
    from cutout import evaluate
    from cutout.modes import get_mode, pipeline_options
    from cutout.native import metrics
    from cutout.native.pipeline import get_session, load_rgba, predict_alpha

    if not (evaluate.DAVIS / "images").is_dir():
        print(f"skipped: {evaluate.DAVIS} is absent")
        return
    sessions = {"before": get_session(before), "after": get_session(after)}
    fp16 = Q._session(isnet.fetch_model(DEFAULT_CACHE))
    options = pipeline_options(get_mode("balanced"))
    scores: dict[str, dict[str, list[float]]] = {k: {} for k in sessions}
    ids = evaluate.image_ids(3)
    for i in ids:
        rgba = load_rgba(evaluate.DAVIS / "images" / f"{i}.jpg")
        gt = np.asarray(Image.open(evaluate.DAVIS / "masks" / f"{i}.png").convert("L"))
        square = np.asarray(Image.fromarray(rgba).resize((1024, 1024), Image.BILINEAR))
        ref = fp16.run(["output"], {"input": isnet.preprocess(np.ascontiguousarray(square[..., :3]),
                                                              (1024, 1024))})[0][0, 0] >= 0.5
        for key, session in sessions.items():
            alpha = predict_alpha(session, rgba, **options)
            ours = session.run(["alpha"], {"rgba": square[None]})[0][0] >= 128
            row = {"iou": metrics.iou(alpha, gt), "boundary_f": metrics.boundary_f(alpha, gt),
                   "mae": metrics.mae(alpha, gt),
                   "agree_iou": float((ours & ref).sum() / max((ours | ref).sum(), 1))}
            for metric, value in row.items():
                scores[key].setdefault(metric, []).append(value)
    report = {key: {**{m: round(float(np.mean(v)), 4) for m, v in s.items()},
                    "iou_worst5": round(float(metrics.worst_mean(s["iou"], 0.05)), 4),
                    "agree_iou_worst5": round(float(metrics.worst_mean(s["agree_iou"], 0.05)), 4)}
              for key, s in scores.items()}
    print(json.dumps({"images": len(ids), **report}, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["select"]:
        select([float(p) for p in sys.argv[2:]] or [isnet.QDQ_PERCENTILE])
    elif sys.argv[1:] == ["stages"]:
        stages()
    elif sys.argv[1:2] == ["equalize"]:
        equalize([float(a) for a in sys.argv[2:]] or [0.5])
    elif sys.argv[1:2] == ["davis"] and len(sys.argv) == 4:
        davis(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(__doc__)
