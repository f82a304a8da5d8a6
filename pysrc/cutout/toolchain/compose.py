"""The "compose" graph: a low-resolution alpha mask onto the full-resolution photo.

    rgba   uint8 [1, H, W, 4]   the full-resolution photo, any H, W
    alpha  uint8 [1, h, w]      the model's mask at its own size (stretched onto the
                                photo, so the aspect may differ; a side longer than
                                the photo's is first shrunk to it)
    cutout uint8 [1, H, W, 4]   straight RGBA: RGB = estimated foreground colour F,
                                A = refined alpha x the photo's own alpha; RGB is the
                                photo's own where the refined alpha is 255 (exactly)
                                or 0 (nothing lost for a re-edit)

Stretching the mask bilinearly (canvas `destination-in`) leaves an edge blurred over
~4 px of a 12 MP photo and a halo of the old background in soft edges (hair). This
graph, with every box filter at the mask's resolution:

1. alpha: the fast guided filter (He & Sun 2015). Per mask pixel, alpha ~ a . I + b
   is fitted over a box window against the photo shrunk to the mask's size (RGB
   guide: 3x3 covariance per pixel); a and b are upsampled bilinearly and applied
   to the full-resolution photo, so the edge follows the photo's own edges;
2. colour: the last line of Forte & Pitié's blur fusion ("Approximate fast
   foreground colour estimation", ICIP 2021), F = Fb + alpha (I - alpha Fb -
   (1 - alpha) Bb), at full resolution, with smooth foreground / background colour
   fields Fb, Bb estimated at the mask's resolution (see _fg_bg for why not by
   plain blurs there).

At full resolution: one downscaling and four upscaling Resizes (10 planes), 19
elementwise ops (8 of them on one plane) and the layout ops at the ends; 4000x3000
takes ~1.1 s, 6000x4000 ~2 s on onnxruntime's CPU EP with 2 threads. Only ops
that both onnxruntime-web backends run (see fuse.py): uint8 only in the first and
last Casts, Resize bilinear without antialias, half_pixel, no Round (+0.5 before
the truncating Cast instead).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import onnx
from onnx import TensorProto, helper

from ..strips import K
from .fuse import MIN_IR_VERSION, MIN_OPSET

INPUT = "rgba"
MASK = "alpha"
OUTPUT = "cutout"
_P = "compose/"  # prefix of every tensor/node we add

Guide = Literal["lum", "rgb"]
Offset = Literal["mean", "detail", "hybrid"]

# Rec. 601 luma: the guide when guide="lum".
_LUMA = (0.299, 0.587, 0.114)
# Photo -> mask resolution: bilinear to K x the mask's size, then a K x K box with
# stride K (see _downscale); the strip planner (cutout.strips) shares it.
_K = K
# onnxruntime's CPU EP (and so WASM) pools fast only with pads <= 15: AveragePool
# [31, 1] over 1x4x768x1024 takes 16 ms, [33, 1] 200 ms, [33, 33] 1.5 s (2 threads).
MAX_BOX_RADIUS = 15


class _Graph:
    """Collects nodes and constants; every name gets the compose/ prefix."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, onnx.TensorProto] = {}

    def const(self, name: str, values: list[float] | list[int], dims: list[int],
              dtype: int = TensorProto.FLOAT) -> str:
        full = _P + name
        if full not in self.inits:
            self.inits[full] = helper.make_tensor(full, dtype, dims, values)
        return full

    def f(self, value: float) -> str:
        """A float scalar, named by its value so that every use shares one constant."""
        return self.const("c" + repr(float(value)).replace("-", "m").replace(".", "_")
                          .replace("+", ""), [value], [])

    def i64(self, name: str, values: list[int]) -> str:
        return self.const(name, values, [len(values)], TensorProto.INT64)

    def op(self, op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [_P + out], name=_P + out, **attrs))
        return _P + out

    def split(self, x: str, sizes: list[int], outs: list[str]) -> list[str]:
        """Split along the channel axis."""
        names = [_P + o for o in outs]
        split = self.i64("split_" + "_".join(map(str, sizes)), sizes)
        self.nodes.append(helper.make_node("Split", [x, split], names, name=names[0] + "_split",
                                           axis=1))
        return names

    def box(self, x: str, r: int, out: str) -> str:
        """Mean over a (2r+1)^2 window, separable. count_include_pad=0 divides by the
        pixels inside the image, so the borders are averaged, not darkened."""
        if r <= 0:
            return x
        if r > MAX_BOX_RADIUS:
            raise ValueError(f"box radius {r} > {MAX_BOX_RADIUS} (onnxruntime's slow pooling)")
        k = 2 * r + 1
        h = self.op("AveragePool", [x], out + "_h", kernel_shape=[1, k], pads=[0, r, 0, r],
                    strides=[1, 1], count_include_pad=0)
        return self.op("AveragePool", [h], out, kernel_shape=[k, 1], pads=[r, 0, r, 0],
                       strides=[1, 1], count_include_pad=0)

    def resize(self, x: str, sizes: str, out: str) -> str:
        return self.op("Resize", [x, "", "", sizes], out, mode="linear", antialias=0,
                       coordinate_transformation_mode="half_pixel")

    def clip255(self, x: str, out: str) -> str:
        return self.op("Clip", [x, self.f(0.0), self.f(255.0)], out)

    def chan_sum(self, x: str, out: str) -> str:
        """Sum over the channel axis (ReduceMean x channels: the WebGPU EP's list has no
        ReduceSum here); x must have 3 channels."""
        mean = self.op("ReduceMean", [x, self.i64("axis1", [1])], out + "_mean", keepdims=1)
        return self.op("Mul", [mean, self.f(3.0)], out)


def _downscale(g: _Graph, rgb: str, sizes_k: str) -> str:
    """Photo [1,3,H,W] -> [1,3,h,w] (the mask's size), close to an area average.

    The factor H/h is only known at run time while AveragePool's kernel is fixed in
    the graph, and the WebGPU EP has no antialiased Resize; a plain bilinear shrink
    by ~4 would sample 2x2 of every 4x4 pixels and alias fine texture into the guide.
    So: bilinear to K*h x K*w, then a K x K box with stride K. Bilinear (half_pixel)
    at a factor f = H/(K h) <= 2 weights every photo pixel (at f = 2 each sample is
    exactly a 2x2 mean), so the result is an area average over ~f K pixels: a 1024 px
    mask covers photos up to 8192 px along that side without aliasing, a 320 px one
    up to 2560 px (beyond that, rows and columns are skipped: some noise in the guide
    statistics, never a shift). The intermediate has K^2 times the mask's pixels
    whatever the photo's size (12.6 MP for a 1024x768 mask: ~100 ms on 2 threads).
    """
    up = g.resize(rgb, sizes_k, "rgb_k")
    return g.op("AveragePool", [up], "rgb_low", kernel_shape=[_K, _K], strides=[_K, _K],
                count_include_pad=0)


def _guided_lum(g: _Graph, rgb_low: str, p: str, radius: int,
                eps: float) -> tuple[str, str, str, str, str]:
    """Guided-filter fit with the luminance (in [0, 1]) as guide: a, b, the low-res
    guide, the mask variance the fit explains (a cov) and the mask's variance."""
    lum = g.op("ReduceMean", [g.op("Mul", [rgb_low, g.const("luma3", [3 * c / 255.0 for c in _LUMA],
                                                             [1, 3, 1, 1])], "lum_low_w"),
                              g.i64("axis1", [1])], "lum_low", keepdims=1)
    stack = g.op("Concat", [lum, p, g.op("Mul", [lum, p], "gf_ip"),
                            g.op("Mul", [lum, lum], "gf_ii"), g.op("Mul", [p, p], "gf_pp")],
                 "gf_stack", axis=1)
    m_i, m_p, m_ip, m_ii, m_pp = g.split(g.box(stack, radius, "gf_mean"), [1] * 5,
                                         ["gf_m_i", "gf_m_p", "gf_m_ip", "gf_m_ii", "gf_m_pp"])
    cov = g.op("Sub", [m_ip, g.op("Mul", [m_i, m_p], "gf_mimp")], "gf_cov")
    var = g.op("Sub", [m_ii, g.op("Mul", [m_i, m_i], "gf_mimi")], "gf_var")
    # Max(var, 0): float cancellation can make a flat patch's variance slightly negative.
    den = g.op("Add", [g.op("Max", [var, g.f(0.0)], "gf_var_pos"), g.f(eps)], "gf_den")
    a = g.op("Div", [cov, den], "gf_a")
    b = g.op("Sub", [m_p, g.op("Mul", [a, m_i], "gf_ami")], "gf_b")
    var_p = g.op("Sub", [m_pp, g.op("Mul", [m_p, m_p], "gf_mpmp")], "gf_var_p")
    return a, b, lum, g.op("Mul", [a, cov], "gf_explained"), var_p


def _guided_rgb(g: _Graph, rgb_low: str, p: str, radius: int,
                eps: float) -> tuple[str, str, str, str, str]:
    """Guided-filter fit with the RGB photo (in [0, 1]) as guide: a [1,3,h,w] (one
    per channel), b, the low-res guide, the explained and the total mask variance.
    The 3x3 covariance (+ eps I) is inverted per pixel by its adjugate."""
    i01 = g.op("Mul", [rgb_low, g.f(1 / 255.0)], "rgb01_low")
    ch = dict(zip("rgb", g.split(i01, [1, 1, 1], ["i_r", "i_g", "i_b"])))
    pairs = ["rr", "rg", "rb", "gg", "gb", "bb"]
    prods = [g.op("Mul", [ch[x], ch[y]], f"gf_i{x}{y}") for x, y in pairs]
    ips = [g.op("Mul", [ch[c], p], f"gf_i{c}p") for c in "rgb"]
    stack = g.op("Concat", [ch["r"], ch["g"], ch["b"], p, *prods, *ips,
                            g.op("Mul", [p, p], "gf_pp")], "gf_stack", axis=1)
    names = ["r", "g", "b", "p", *pairs, "rp", "gp", "bp", "pp"]
    m = dict(zip(names, g.split(g.box(stack, radius, "gf_mean"), [1] * len(names),
                                [f"gf_m_{n}" for n in names])))

    def mul(x: str, y: str, out: str) -> str:
        return g.op("Mul", [x, y], out)

    def cov(x: str, y: str) -> str:
        return g.op("Sub", [m[x + y], mul(m[x], m[y], f"gf_mm_{x}{y}")], f"gf_cov_{x}{y}")

    s = {xy: cov(xy[0], xy[1]) for xy in pairs}
    for c in "rgb":
        s[c + c] = g.op("Add", [s[c + c], g.f(eps)], f"gf_se_{c}{c}")
    cp = {c: cov(c, "p") for c in "rgb"}

    def det2(a: str, b: str, c: str, d: str, out: str) -> str:  # a d - b c
        return g.op("Sub", [mul(a, d, out + "_ad"), mul(b, c, out + "_bc")], out)

    # Adjugate of the symmetric [[rr rg rb] [rg gg gb] [rb gb bb]].
    adj = {
        "rr": det2(s["gg"], s["gb"], s["gb"], s["bb"], "gf_adj_rr"),
        "rg": det2(s["rb"], s["rg"], s["bb"], s["gb"], "gf_adj_rg"),
        "rb": det2(s["rg"], s["rb"], s["gg"], s["gb"], "gf_adj_rb"),
        "gg": det2(s["rr"], s["rb"], s["rb"], s["bb"], "gf_adj_gg"),
        "gb": det2(s["rb"], s["rr"], s["gb"], s["rg"], "gf_adj_gb"),
        "bb": det2(s["rr"], s["rg"], s["rg"], s["gg"], "gf_adj_bb"),
    }

    def sym(x: str, y: str) -> str:
        return adj[x + y] if x + y in adj else adj[y + x]

    def dot3(xs: list[str], ys: list[str], out: str) -> str:
        t = [mul(x, y, f"{out}_{i}") for i, (x, y) in enumerate(zip(xs, ys))]
        return g.op("Add", [g.op("Add", [t[0], t[1]], out + "_01"), t[2]], out)

    det = dot3([s["rr"], s["rg"], s["rb"]], [adj["rr"], adj["rg"], adj["rb"]], "gf_det")
    cps = [cp[c] for c in "rgb"]
    a_c = [g.op("Div", [dot3([sym(c, "r"), sym(c, "g"), sym(c, "b")], cps, f"gf_n{c}"), det],
                f"gf_a_{c}") for c in "rgb"]
    b = g.op("Sub", [m["p"], dot3(a_c, [m["r"], m["g"], m["b"]], "gf_am")], "gf_b")
    var_p = g.op("Sub", [m["pp"], mul(m["p"], m["p"], "gf_mpmp")], "gf_var_p")
    return (g.op("Concat", a_c, "gf_a", axis=1), b, i01, dot3(a_c, cps, "gf_explained"), var_p)


def _weighted_blur(g: _Graph, img: str, w: str, radius: int, tag: str) -> str:
    """box(w I) / box(w): the colour of I where the weight w is high (blur fusion)."""
    stack = g.op("Concat", [w, g.op("Mul", [img, w], f"{tag}_wi")], f"{tag}_stack", axis=1)
    m_w, m_wi = g.split(g.box(stack, radius, f"{tag}_blur"), [1, 3], [f"{tag}_m_w", f"{tag}_m_wi"])
    return g.clip255(g.op("Div", [m_wi, g.op("Add", [m_w, g.f(1e-5)], f"{tag}_den")], f"{tag}_raw"),
                     tag)


def _fg_bg(g: _Graph, img: str, p: str, fg_radii: tuple[int, int], bg_radius: int,
           iterations: int, prior: float) -> tuple[str, str]:
    """Smooth foreground and background colours (Fb, Bb) at the mask's resolution,
    I in 0..255, for the blur-fusion formula's last line.

    Blur fusion's own Fb = box(a I)/box(a) needs opaque pixels nearby; at the mask's
    resolution a hair strand is a fraction of a pixel (alpha ~0.1-0.4) whose colour
    is mostly background, so that blur is mostly background too (measured on the
    synthetic hair: colour error 23, naive export 35). Here Fb and Bb are instead the
    least-squares fit of locally constant colours to the compositing equation
    I = a F + (1 - a) B over a box window, alternating F and B:

        Fb = box(a (I - (1 - a) Bb)) / box(a^2),   Bb = box((1 - a) (I - a Fb)) / box((1 - a)^2)

    regularised (weight `prior`) towards blur fusion's large-radius weighted blurs
    box(a^2 I)/box(a^2) and box((1-a)^2 I)/box((1-a)^2), which take over where a
    window holds (almost) no foreground or background to fit: colour error 3.7.
    """
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    r_prior, r_fg = fg_radii
    q = g.op("Sub", [g.f(1.0), p], "fb_q")
    p2 = g.op("Mul", [p, p], "fb_p2")
    q2 = g.op("Mul", [q, q], "fb_q2")
    lam = g.f(prior)
    lf = g.op("Mul", [_weighted_blur(g, img, p2, r_prior, "fb_f0"), lam], "fb_lf0")
    lb = g.op("Mul", [_weighted_blur(g, img, q2, r_prior, "fb_b0"), lam], "fb_lb0")
    den_f = g.op("Add", [g.box(p2, r_fg, "fb_m_p2"), lam], "fb_den_f")
    den_b = g.op("Add", [g.box(q2, bg_radius, "fb_m_q2"), lam], "fb_den_b")
    bg = _weighted_blur(g, img, q2, bg_radius, "fb_b_start")  # local background first
    fg = ""
    for i in range(iterations):
        res_f = g.op("Sub", [img, g.op("Mul", [q, bg], f"fb{i}_qb")], f"fb{i}_res_f")
        num_f = g.op("Add", [g.box(g.op("Mul", [p, res_f], f"fb{i}_pres"), r_fg, f"fb{i}_m_f"), lf],
                     f"fb{i}_num_f")
        fg = g.clip255(g.op("Div", [num_f, den_f], f"fb{i}_f_raw"), f"fb{i}_f")
        res_b = g.op("Sub", [img, g.op("Mul", [p, fg], f"fb{i}_pf")], f"fb{i}_res_b")
        num_b = g.op("Add", [g.box(g.op("Mul", [q, res_b], f"fb{i}_qres"), bg_radius, f"fb{i}_m_b"),
                             lb], f"fb{i}_num_b")
        bg = g.clip255(g.op("Div", [num_b, den_b], f"fb{i}_b_raw"), f"fb{i}_b")
    return fg, bg


@dataclass(frozen=True)
class Params:
    """The compose graphs' parameters; sizes are in mask pixels. The defaults were
    picked on the synthetic composites of tests/unit/test_compose.py (4000x3000, 1024 px
    mask), also with photo noise.

    radius, eps: the guided filter's box radius and regulariser (guide in [0, 1];
        3e-4 = a standard deviation of ~4.4 grey levels: smaller follows the edge
        more closely on clean images, larger resists noise and texture).
    guide: 'rgb' (3x3 covariance) or 'lum' (cheaper; fails where the foreground and
        background have the same brightness: edge error 0.10 vs 0.0085 for rgb).
    offset: how b is formed. 'mean' is He's b = box(mean_p - a mean_I): where the guide
        does not explain the mask, the alpha becomes box(box(p)), blurrier than the
        bilinear stretch. 'detail' uses b = p - a I at each mask pixel, so alpha =
        stretch + a (I - I_low), the bilinear stretch plus the photo's detail.
        'hybrid' blends them by the fit's R^2 squared (best on both synthetic cases).
    band: the refined alpha is used within this many pixels of an uncertain mask
        pixel (0 < p < 1) and the bilinear stretch beyond (< 0: everywhere). 1 keeps
        the edge error and stops texture leaking into the clean background nearby.
    fg_radii, bg_radius, iterations, prior: see _fg_bg (radii: prior blur, foreground
        fit; the background fit is kept small to follow a textured background).
    """

    radius: int = 4
    eps: float = 3e-4
    guide: Guide = "rgb"
    offset: Offset = "hybrid"
    band: int = 1
    fg_radii: tuple[int, int] = (15, 12)
    bg_radius: int = 2
    iterations: int = 3
    prior: float = 3e-4

    def planes(self) -> list[int]:
        """Channels of the fields at the mask's resolution, in order: a, b, Fb, Fb - Bb."""
        return [3 if self.guide == "rgb" else 1, 1, 3, 3]


def _fields(g: _Graph, rgb_low: str, p: str, prm: Params) -> list[str]:
    """Everything at the mask's resolution: [a, b] scaled so that full resolution
    computes alpha * 255 directly, and the colour fields [Fb, Fb - Bb]."""
    radius = prm.radius
    # -- 1. alpha: guided-filter coefficients.
    if prm.guide == "lum":
        a, b, guide_low, explained, var_p = _guided_lum(g, rgb_low, p, radius, prm.eps)
    elif prm.guide == "rgb":
        a, b, guide_low, explained, var_p = _guided_rgb(g, rgb_low, p, radius, prm.eps)
    else:
        raise ValueError(f"guide must be 'lum' or 'rgb', not {prm.guide!r}")
    ma, mb = g.box(a, radius, "gf_mean_a"), g.box(b, radius, "gf_mean_b")
    if prm.offset in ("detail", "hybrid"):
        ai = g.op("Mul", [ma, guide_low], "gf_ai_low")
        b_detail = g.op("Sub", [p, g.chan_sum(ai, "gf_ai_sum") if prm.guide == "rgb" else ai],
                        "gf_b_detail")
        if prm.offset == "detail":
            mb = b_detail
        else:
            var_pe = g.op("Add", [var_p, g.f(1e-6)], "gf_var_p_e")
            r2 = g.op("Clip", [g.op("Div", [explained, var_pe], "gf_r2_raw"), g.f(0.0), g.f(1.0)],
                      "gf_r2")
            c = g.box(r2, radius, "gf_mean_r2")
            c = g.op("Mul", [c, c], "gf_conf")
            mb = g.op("Add", [b_detail, g.op("Mul", [c, g.op("Sub", [mb, b_detail], "gf_b_diff")],
                                             "gf_b_cdiff")], "gf_b_hybrid")
    elif prm.offset != "mean":
        raise ValueError(f"offset must be 'mean', 'detail' or 'hybrid', not {prm.offset!r}")
    if prm.band >= 0:
        # m = 1 within `band` px of an uncertain mask pixel, else 0; a' = m a,
        # b' = m b + (1 - m) p: where m = 0 the result is exactly the bilinear stretch.
        band = prm.band
        p_abs = g.op("Abs", [g.op("Sub", [p, g.f(0.5)], "p_c")], "p_abs")
        unsure = g.op("Cast", [g.op("Less", [p_abs, g.f(0.5 - 0.5 / 255)], "p_unsure_b")],
                      "p_unsure", to=TensorProto.FLOAT)
        m = g.op("Clip", [g.op("Mul", [g.box(unsure, band, "band_mean"), g.f((2 * band + 1) ** 2)],
                               "band_k"), g.f(0.0), g.f(1.0)], "band")
        ma = g.op("Mul", [m, ma], "gf_a_band")
        mb = g.op("Add", [g.op("Mul", [m, mb], "gf_mb_band"),
                          g.op("Mul", [g.op("Sub", [g.f(1.0), m], "band_inv"), p], "gf_p_band")],
                  "gf_b_band")
    # 255 (a lum + b) with lum in [0, 1], or mean_c(3 a_c I_c) + 255 b with I in 0..255.
    ma = g.op("Mul", [ma, g.f(255.0 if prm.guide == "lum" else 3.0)], "gf_a_scaled")
    mb = g.op("Mul", [mb, g.f(255.0)], "gf_b_scaled")

    # -- 2. colour fields.
    fb, bb = _fg_bg(g, rgb_low, p, prm.fg_radii, prm.bg_radius, prm.iterations, prm.prior)
    return [ma, mb, fb, g.op("Sub", [fb, bb], "fg_minus_bg")]


def _full_res(g: _Graph, nchw: str, rgb: str, fields: list[str], guide: Guide) -> str:
    """The cut-out at full resolution (float NCHW [1, 4, H, W], 0..255 whole numbers)
    from the photo and the fields already upsampled to it."""
    a_full, b_full, fg_full, d_full = fields
    if guide == "lum":
        w3 = g.const("luma3", [3 * c / 255.0 for c in _LUMA], [1, 3, 1, 1])
        lum = g.op("ReduceMean", [g.op("Mul", [rgb, w3], "lum_w"), g.i64("axis1", [1])],
                   "lum", keepdims=1)
        ai = g.op("Mul", [a_full, lum], "a_i")
    else:
        ai = g.op("ReduceMean", [g.op("Mul", [a_full, rgb], "a_i3"), g.i64("axis1", [1])],
                  "a_i", keepdims=1)
    a255 = g.clip255(g.op("Add", [ai, b_full], "alpha_raw"), "alpha_255")
    a_round = g.op("Add", [a255, g.f(0.5)], "alpha_round")
    al = g.op("Mul", [a255, g.f(1 / 255.0)], "alpha_full")

    # F = Fb + a (I - a Fb - (1 - a) Bb) = I + (1 - a) (Fb - I + a D), D = Fb - Bb,
    # with the weight u = 1 - a only where the output byte is 1..254 (|A+0.5 - 128| < 127),
    # else u = 0: the photo's colour, exact under byte 255, kept under byte 0.
    mid = g.op("Less", [g.op("Abs", [g.op("Sub", [a_round, g.f(128.0)], "alpha_c")], "alpha_abs"),
                        g.f(127.0)], "alpha_mid")
    u = g.op("Where", [mid, g.op("Sub", [g.f(1.0), al], "one_minus_alpha"), g.f(0.0)], "fg_weight")
    y = g.op("Add", [g.op("Sub", [fg_full, rgb], "fb_minus_i"),
                     g.op("Mul", [al, d_full], "alpha_d")], "fg_delta")
    fg = g.op("Add", [rgb, g.op("Mul", [u, y], "fg_step")], "fg")
    # +0.5 then the truncating Cast rounds; the photo's whole numbers stay exact.
    fg = g.clip255(g.op("Add", [fg, g.f(0.5)], "fg_half"), "fg_round")
    # The photo's own transparency is kept: A = refined alpha x photo alpha (x 1.0 exactly
    # for an opaque photo).
    own = g.op("Gather", [nchw, g.i64("a_idx", [3])], "photo_a", axis=1)
    a_out = g.op("Mul", [a_round, g.op("Mul", [own, g.f(1 / 255.0)], "photo_a01")], "alpha_out")
    return g.op("Concat", [fg, a_out], "out_nchw", axis=1)


def _photo_nchw(g: _Graph) -> tuple[str, str]:
    """The uint8 RGBA input as float NCHW, and its RGB planes.

    Cast first, float to the end (the WebGPU EP has no uint8 kernels). Gather, not
    Slice, for RGB: onnxruntime's transpose optimizer moves a Slice ahead of the
    Transpose onto the innermost axis, which copies per element (225 ms at 12 MP)."""
    nchw = g.op("Transpose", [g.op("Cast", [INPUT], "rgba_f", to=TensorProto.FLOAT)], "nchw",
                perm=[0, 3, 1, 2])
    return nchw, g.op("Gather", [nchw, g.i64("rgb_idx", [0, 1, 2])], "rgb", axis=1)


def _mask_at(g: _Graph, hw: str) -> str:
    """The uint8 mask input as float [1, 1, h, w] in [0, 1], resized to `hw`."""
    p_in = g.op("Unsqueeze", [g.op("Div", [g.op("Cast", [MASK], "mask_f", to=TensorProto.FLOAT),
                                           g.f(255.0)], "mask01"), g.i64("axis1", [1])], "p_in")
    return g.resize(p_in, g.op("Concat", [g.i64("n1", [1, 1]), hw], "sizes_p", axis=0), "p")


def _uint8_nhwc(g: _Graph, out_nchw: str) -> None:
    out = g.op("Transpose", [out_nchw], "out_nhwc", perm=[0, 2, 3, 1])
    g.nodes.append(helper.make_node("Cast", [out], [OUTPUT], name=_P + "cast_out",
                                    to=TensorProto.UINT8))


def _finish(g: _Graph, name: str, inputs: list[onnx.ValueInfoProto],
            outputs: list[onnx.ValueInfoProto], prm: Params) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, name, inputs=inputs, outputs=outputs,
                              initializer=[g.inits[k] for k in sorted(g.inits)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", MIN_OPSET)],
                              producer_name="cutout.toolchain.compose", producer_version="1")
    model.ir_version = MIN_IR_VERSION
    params = {**asdict(prm), "fg_radii": list(prm.fg_radii)}
    helper.set_model_props(model, {"cutout.compose": repr(sorted(params.items()))})
    onnx.checker.check_model(model, full_check=True)
    return model


def compose_model(**params: Any) -> onnx.ModelProto:
    """uint8 photo [1,H,W,4] + uint8 mask [1,h,w] -> uint8 straight RGBA [1,H,W,4]:
    guided-filter alpha, foreground colours decontaminated in the soft edge, in one
    call. The reference for the strip graphs below (what ships), which compute the
    same in bounded memory; parameters: `Params`."""
    prm = Params(**params)
    g = _Graph()
    big_hw = g.op("Shape", [INPUT], "photo_hw", start=1, end=3)
    # A mask larger than the photo along a side (a 1024 square for an 854x480 photo) is
    # first shrunk to the photo's size along that side: the fit then runs per photo pixel.
    hw = g.op("Min", [g.op("Shape", [MASK], "mask_hw_in", start=1, end=3), big_hw], "mask_hw")
    sizes_k = g.op("Concat", [g.i64("n3", [1, 3]), g.op("Mul", [hw, g.i64("k", [_K])],
                                                       "mask_hw_k")], "sizes_k", axis=0)
    nchw, rgb = _photo_nchw(g)
    rgb_low = _downscale(g, rgb, sizes_k)
    fields = _fields(g, rgb_low, _mask_at(g, hw), prm)

    # One Resize per field: Concat + Split would copy every plane again.
    def full(x: str, channels: int, out: str) -> str:
        sizes = g.op("Concat", [g.i64(f"n{channels}", [1, channels]), big_hw], f"sizes_{out}",
                     axis=0)
        return g.resize(x, sizes, out)

    fields = [full(x, c, f"{n}_full") for x, c, n in zip(fields, prm.planes(), ["a", "b", "fg", "d"])]
    _uint8_nhwc(g, _full_res(g, nchw, rgb, fields, prm.guide))
    return _finish(g, "cutout_compose", [_rgba_info(["H", "W"]), _mask_info()],
                   [_cutout_info(["H", "W"])], prm)


# ---------------------------------------------------------------- the strip graphs

ROWS = "rows"  # int32 positions of a strip (see each graph): the engine has no int64 arrays
RGB_LOW = "rgb_low"
FIELDS = "fields"


def _rgba_info(hw: list[str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(INPUT, TensorProto.UINT8, [1, *hw, 4])


def _mask_info() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(MASK, TensorProto.UINT8, [1, "h", "w"])


def _cutout_info(hw: list[str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(OUTPUT, TensorProto.UINT8, [1, *hw, 4])


def _scalar(g: _Graph, vector: str, index: int, out: str) -> str:
    """Element `index` of a 1-D int64 tensor, as a 0-d tensor (Range wants scalars)."""
    idx = g.const(f"idx{index}", [index], [], TensorProto.INT64)
    return g.op("Gather", [vector, idx], out, axis=0)


def _rows_of_resize(g: _Graph, src: str, first: str, count: str, src_first: str,
                    out_size: str, in_size: str, tag: str) -> str:
    """Rows [first, first + count) of a bilinear half-pixel resize of `in_size` source
    rows to `out_size` rows, from `src` [1, C, m, w] = source rows [src_first, ...):
    the sample positions of onnxruntime's Resize over the whole image ((y + 0.5) / scale
    - 0.5, scale = out / in in float32, clamped), the two rows gathered and blended.
    All int64 scalars; the rows needed are strips.source_rows'."""
    f32 = TensorProto.FLOAT
    y = g.op("Cast", [g.op("Range", [first, g.op("Add", [first, count], f"{tag}_stop"),
                                     g.const("one_i64", [1], [], TensorProto.INT64)],
                           f"{tag}_y_i")], f"{tag}_y", to=f32)
    in_f = g.op("Cast", [in_size], f"{tag}_in_f", to=f32)
    scale = g.op("Div", [g.op("Cast", [out_size], f"{tag}_out_f", to=f32), in_f], f"{tag}_scale")
    last = g.op("Sub", [in_f, g.f(1.0)], f"{tag}_last")
    pos = g.op("Sub", [g.op("Div", [g.op("Add", [y, g.f(0.5)], f"{tag}_yc"), scale],
                            f"{tag}_pos_s"), g.f(0.5)], f"{tag}_pos_raw")
    pos = g.op("Min", [g.op("Max", [pos, g.f(0.0)], f"{tag}_pos_lo"), last], f"{tag}_pos")
    i0 = g.op("Floor", [pos], f"{tag}_i0")
    i1 = g.op("Min", [g.op("Add", [i0, g.f(1.0)], f"{tag}_i0p1"), last], f"{tag}_i1")
    frac = g.op("Reshape", [g.op("Sub", [pos, i0], f"{tag}_frac_v"),
                            g.i64("rows_shape", [1, 1, -1, 1])], f"{tag}_frac")

    def gather(i: str, out: str) -> str:
        local = g.op("Sub", [g.op("Cast", [i], f"{out}_i64", to=TensorProto.INT64), src_first],
                     f"{out}_local")
        return g.op("Gather", [src, local], out, axis=2)

    return g.op("Add", [g.op("Mul", [gather(i0, f"{tag}_r0"),
                                     g.op("Sub", [g.f(1.0), frac], f"{tag}_w0")], f"{tag}_p0"),
                        g.op("Mul", [gather(i1, f"{tag}_r1"), frac], f"{tag}_p1")], tag)


def _columns_to(g: _Graph, x: str, width: str, out: str) -> str:
    """x [1, C, n, w] resized to [1, C, n, width] (rows kept: scale 1 samples each row
    exactly), the same column positions as a resize of the whole image."""
    sizes = g.op("Concat", [g.op("Shape", [x], f"{out}_shape", start=0, end=3), width],
                 f"{out}_sizes", axis=0)
    return g.resize(x, sizes, out)


def downscale_model() -> onnx.ModelProto:
    """Step 1 (strips.py): rows [q0, q1) of the low-resolution guide from the photo rows
    they read: rgba uint8 [1, n, W, 4] = photo rows [src_first, ...), rows int32
    [q0, q1, src_first, H, h, w] -> rgb_low float [1, q1 - q0, 3, w] (rows outermost, so
    that the strips' outputs join end to end). The same as _downscale on the whole photo."""
    g = _Graph()
    rows = g.op("Cast", [ROWS], "rows_i64", to=TensorProto.INT64)
    q0, q1, src_first, photo_h, low_h = (_scalar(g, rows, i, f"r{i}") for i in range(5))
    low_w = g.op("Slice", [rows, g.i64("s5", [5]), g.i64("s6", [6])], "low_w")
    k = g.const("k_scalar", [_K], [], TensorProto.INT64)
    first = g.op("Mul", [q0, k], "k_first")
    count = g.op("Mul", [g.op("Sub", [q1, q0], "low_rows"), k], "k_rows")
    _, rgb = _photo_nchw(g)
    rows_k = _rows_of_resize(g, rgb, first, count, src_first,
                             g.op("Mul", [low_h, k], "k_h"), photo_h, "dk")
    up = _columns_to(g, rows_k, g.op("Mul", [low_w, g.i64("k", [_K])], "k_w"), "rgb_k")
    low = g.op("AveragePool", [up], "rgb_low_nchw", kernel_shape=[_K, _K], strides=[_K, _K],
               count_include_pad=0)
    g.nodes.append(helper.make_node("Transpose", [low], [RGB_LOW], name=_P + "rgb_low_rows",
                                    perm=[0, 2, 1, 3]))
    return _finish(g, "cutout_compose_downscale",
                   [_rgba_info(["n", "W"]),
                    helper.make_tensor_value_info(ROWS, TensorProto.INT32, [6])],
                   [helper.make_tensor_value_info(RGB_LOW, TensorProto.FLOAT, [1, "q", 3, "w"])],
                   Params())


def fields_model(**params: Any) -> onnx.ModelProto:
    """Step 2: rgb_low float [1, h, 3, w] (step 1's strips joined) + the model's mask
    uint8 [1, mh, mw] -> fields float [1, h, P, w] (P = Params.planes(): a, b, Fb,
    Fb - Bb; rows outermost, so that a strip's rows are one contiguous range)."""
    prm = Params(**params)
    g = _Graph()
    rgb_low = g.op("Transpose", [RGB_LOW], "rgb_low_nchw", perm=[0, 2, 1, 3])
    hw = g.op("Gather", [g.op("Shape", [RGB_LOW], "rgb_low_shape"), g.i64("hw_idx", [1, 3])],
              "mask_hw")
    stack = g.op("Concat", _fields(g, rgb_low, _mask_at(g, hw), prm), "fields_nchw", axis=1)
    g.nodes.append(helper.make_node("Transpose", [stack], [FIELDS], name=_P + "fields_rows",
                                    perm=[0, 2, 1, 3]))
    return _finish(g, "cutout_compose_fields",
                   [helper.make_tensor_value_info(RGB_LOW, TensorProto.FLOAT, [1, "h", 3, "w"]),
                    helper.make_tensor_value_info(MASK, TensorProto.UINT8, [1, "mh", "mw"])],
                   [helper.make_tensor_value_info(FIELDS, TensorProto.FLOAT,
                                                  [1, "h", sum(prm.planes()), "w"])], prm)


def strip_model(**params: Any) -> onnx.ModelProto:
    """Step 3: a strip of the cut-out. rgba uint8 [1, n, W, 4] = photo rows [y0, y0 + n),
    fields float [1, m, P, w] = field rows [r0, r0 + m), rows int32 [y0, r0, H, h] ->
    cutout uint8 [1, n, W, 4]: those rows of what compose_model gives for the whole."""
    prm = Params(**params)
    g = _Graph()
    rows = g.op("Cast", [ROWS], "rows_i64", to=TensorProto.INT64)
    y0, r0, photo_h, low_h = (_scalar(g, rows, i, f"r{i}") for i in range(4))
    nchw, rgb = _photo_nchw(g)
    shape = g.op("Shape", [INPUT], "strip_shape")
    count = _scalar(g, shape, 1, "strip_rows")
    width = g.op("Slice", [shape, g.i64("s2", [2]), g.i64("s3", [3])], "strip_w")
    fields = g.op("Transpose", [FIELDS], "fields_nchw", perm=[0, 2, 1, 3])
    rows = _rows_of_resize(g, fields, y0, count, r0, photo_h, low_h, "fr")
    planes = g.split(rows, prm.planes(), ["a_rows", "b_rows", "fg_rows", "d_rows"])
    full = [_columns_to(g, x, width, f"{n}_full") for x, n in zip(planes, ["a", "b", "fg", "d"])]
    _uint8_nhwc(g, _full_res(g, nchw, rgb, full, prm.guide))
    return _finish(g, "cutout_compose_strip",
                   [_rgba_info(["n", "W"]),
                    helper.make_tensor_value_info(FIELDS, TensorProto.FLOAT,
                                                  [1, "m", sum(prm.planes()), "w"]),
                    helper.make_tensor_value_info(ROWS, TensorProto.INT32, [4])],
                   [_cutout_info(["n", "W"])], prm)


# What ships (bundled, run on WASM; the native pipeline runs the same files).
STRIP_FILES = {"downscale": "compose-downscale.onnx", "fields": "compose-fields.onnx",
               "strip": "compose-strip.onnx"}


def strip_graphs(**params: Any) -> dict[str, bytes]:
    """file name -> serialized graph (byte-identical for the same parameters)."""
    models = {"downscale": downscale_model(), "fields": fields_model(**params),
              "strip": strip_model(**params)}
    return {STRIP_FILES[k]: m.SerializeToString(deterministic=True) for k, m in models.items()}


def compose_bytes(**params: Any) -> bytes:
    """The serialized graph, byte-identical for the same parameters (stable builds)."""
    return compose_model(**params).SerializeToString(deterministic=True)
