"""Small graphs for a mode's extra model passes (Quality's mirrored pass).

    flip.onnx    x      uint8 [1, h, w, 4]    ->  flipped   mirrored left to right
    mirror.onnx  cutout uint8 [1, h, w, 4]    the first pass's model output (RGBA)
                 mirrored uint8 [1, h, w]     the alpha of the pass on the flipped feed
              -> alpha  uint8 [1, h, w]       the two passes' mean (of logits), in
                                              the photo's orientation
                 rgba   uint8 [1, h, w, 4]    RGB of `cutout`, A = that alpha

Test-time augmentation: a segmentation network is not mirror-symmetric, so a second
opinion on the mirrored photo, averaged in, cancels part of its error (measured in
docs/MODELS.md). The engine and the native pipeline both run these graphs on the
CPU EP, so they compute the same bytes.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from .fuse import MIN_IR_VERSION, MIN_OPSET

FLIP_FILE = "flip.onnx"
MIRROR_FILE = "mirror.onnx"
_P = "passes/"
_INT64_MIN = -(2**63)


def _i64(name: str, values: list[int]) -> onnx.TensorProto:
    return helper.make_tensor(_P + name, TensorProto.INT64, [len(values)], values)


def _flip_node(x: str, out: str) -> onnx.NodeProto:
    """Reverse axis 2 (the width of [1, h, w] and [1, h, w, c]): Slice with step -1 from
    the last element to before the first."""
    return helper.make_node("Slice", [x, _P + "last", _P + "before_first", _P + "axis2",
                                      _P + "minus1"], [out], name=_P + out.removeprefix(_P))


def _slice_consts() -> list[onnx.TensorProto]:
    return [_i64("last", [-1]), _i64("before_first", [_INT64_MIN]), _i64("axis2", [2]),
            _i64("minus1", [-1])]


def _finish(graph: onnx.GraphProto, name: str) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", MIN_OPSET)],
                              producer_name=f"cutout.toolchain.passes.{name}",
                              producer_version="1")
    model.ir_version = MIN_IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def flip_model() -> onnx.ModelProto:
    """uint8 RGBA [1, h, w, 4] (a model's feed) -> the same, mirrored left to right."""
    graph = helper.make_graph(
        [_flip_node("x", "flipped")], "cutout_flip",
        inputs=[helper.make_tensor_value_info("x", TensorProto.UINT8, [1, "h", "w", 4])],
        outputs=[helper.make_tensor_value_info("flipped", TensorProto.UINT8, [1, "h", "w", 4])],
        initializer=_slice_consts())
    return _finish(graph, "flip")


def mirror_model() -> onnx.ModelProto:
    """The first pass's RGBA and the mirrored pass's alpha -> their mean alpha (and the
    RGBA with it): the mean of the two logits, so that where both are fairly sure the
    result stays sure (a plain mean of probabilities softens every edge they disagree
    on by a pixel; measured in docs/MODELS.md)."""
    p = _P
    nodes = [
        helper.make_node("Slice", ["cutout", p + "a_start", p + "a_end", p + "axis3"],
                         [p + "a_u8"], name=p + "a_u8"),
        helper.make_node("Squeeze", [p + "a_u8", p + "axis3"], [p + "a"], name=p + "a"),
        _flip_node("mirrored", p + "b"),
        *_logit(p + "a", "za"), *_logit(p + "b", "zb"),
        helper.make_node("Add", [p + "za", p + "zb"], [p + "zsum"], name=p + "zsum"),
        helper.make_node("Mul", [p + "zsum", p + "half"], [p + "zmean"], name=p + "zmean"),
        helper.make_node("Sigmoid", [p + "zmean"], [p + "mean"], name=p + "mean"),
        # The clipped range [0.5, 254.5] back onto [0, 255] (both passes at 0 stay 0), + 0.5
        # and the truncating Cast: rounded.
        helper.make_node("Mul", [p + "mean", p + "c255"], [p + "mean255"], name=p + "mean255"),
        helper.make_node("Sub", [p + "mean255", p + "lo"], [p + "shifted"], name=p + "shifted"),
        helper.make_node("Mul", [p + "shifted", p + "stretch"], [p + "stretched"],
                         name=p + "stretched"),
        helper.make_node("Add", [p + "stretched", p + "half"], [p + "mean_r"], name=p + "mean_r"),
        helper.make_node("Clip", [p + "mean_r", p + "zero", p + "c255"], [p + "mean_c"],
                         name=p + "mean_c"),
        helper.make_node("Cast", [p + "mean_c"], ["alpha"], name=p + "alpha",
                         to=TensorProto.UINT8),
        helper.make_node("Slice", ["cutout", p + "rgb_start", p + "a_start", p + "axis3"],
                         [p + "rgb"], name=p + "rgb"),
        helper.make_node("Unsqueeze", ["alpha", p + "axis3"], [p + "alpha4"], name=p + "alpha4"),
        helper.make_node("Concat", [p + "rgb", p + "alpha4"], ["rgba"], name=p + "rgba",
                         axis=3),
    ]
    graph = helper.make_graph(
        nodes, "cutout_mirror",
        inputs=[helper.make_tensor_value_info("cutout", TensorProto.UINT8, [1, "h", "w", 4]),
                helper.make_tensor_value_info("mirrored", TensorProto.UINT8, [1, "h", "w"])],
        outputs=[helper.make_tensor_value_info("alpha", TensorProto.UINT8, [1, "h", "w"]),
                 helper.make_tensor_value_info("rgba", TensorProto.UINT8,
                                               [1, "h", "w", 4])],
        initializer=[*_slice_consts(), _i64("a_start", [3]), _i64("a_end", [4]),
                     _i64("rgb_start", [0]), _i64("axis3", [3]),
                     *(helper.make_tensor(p + n, TensorProto.FLOAT, [], [v]) for n, v in
                       (("half", 0.5), ("c255", 255.0), ("lo", 0.5), ("hi", 254.5),
                        ("zero", 0.0), ("stretch", 255.0 / 254.0)))])
    return _finish(graph, "mirror")


def _logit(a: str, out: str) -> list[onnx.NodeProto]:
    """log(a / (255 - a)) of a uint8 alpha, a clipped to [0.5, 254.5] (so 0 and 255 give
    -/+6.2, not infinities)."""
    p = _P
    return [
        helper.make_node("Cast", [a], [p + out + "_f"], name=p + out + "_f", to=TensorProto.FLOAT),
        helper.make_node("Clip", [p + out + "_f", p + "lo", p + "hi"], [p + out + "_c"],
                         name=p + out + "_c"),
        helper.make_node("Sub", [p + "c255", p + out + "_c"], [p + out + "_inv"],
                         name=p + out + "_inv"),
        helper.make_node("Div", [p + out + "_c", p + out + "_inv"], [p + out + "_odds"],
                         name=p + out + "_odds"),
        helper.make_node("Log", [p + out + "_odds"], [p + out], name=p + out),
    ]


def graph_bytes() -> dict[str, bytes]:
    """Every pass graph the extension bundles, by file name (deterministic bytes)."""
    return {FLIP_FILE: flip_model().SerializeToString(deterministic=True),
            MIRROR_FILE: mirror_model().SerializeToString(deterministic=True)}
