"""Reference kernels, in numpy, for the MIL ops coremltools has no `value_inference()` for.

Each kernel takes the op's inputs as numpy values (`args`, keyed by the MIL parameter names; an
optional input the program leaves out is absent) and returns the op's output, or a tuple for an op
with several. The executor (convcheck.validate.mil.program) casts every result to the dtype the
program declares for it, so a kernel may compute wider: convolutions, matmuls and recurrences
accumulate in float32 (float64 inputs stay float64), as Apple's CPU kernels and most accelerators do
for fp16 programs.

Semantics follow the MIL op definitions in coremltools (`coremltools.converters.mil.mil.ops.defs`),
not any one framework: each kernel is checked against torch on random tensors in
tests/unit/test_mil_kernels.py.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Kernel = Callable[[dict[str, Any]], Any]
#: MIL op type -> kernel. An op neither here nor with a coremltools value_inference is `unsupported`.
KERNELS: dict[str, Kernel] = {}


def kernel(*names: str) -> Callable[[Kernel], Kernel]:
    def register(fn: Kernel) -> Kernel:
        for name in names:
            KERNELS[name] = fn
        return fn
    return register


def _wide(x: np.ndarray) -> np.ndarray:
    """The accumulation type: float32 for fp16 (and fp32) inputs, float64 stays float64."""
    return np.asarray(x, dtype=np.float64 if np.asarray(x).dtype == np.float64 else np.float32)  # no copy when already so


def _ints(value: Any, n: int, default: int) -> list[int]:
    if value is None:
        return [default] * n
    flat = [int(v) for v in np.ravel(value)]
    return flat * n if len(flat) == 1 else flat  # one value for every axis, or one per axis


def _pads(pad_type: str, pad: Any, sizes: list[int], kernel_sizes: list[int], strides: list[int],
          dilations: list[int]) -> list[tuple[int, int]]:
    """(before, after) padding per spatial axis for MIL's pad_type (valid / same / same_lower / custom)."""
    n = len(sizes)
    if pad_type == "valid":
        return [(0, 0)] * n
    if pad_type == "custom":
        flat = _ints(pad, 2 * n, 0)
        return [(flat[2 * i], flat[2 * i + 1]) for i in range(n)]
    if pad_type not in ("same", "same_lower"):
        raise ValueError(f"unknown pad_type {pad_type!r}")
    out = []
    for size, k, s, d in zip(sizes, kernel_sizes, strides, dilations):
        effective = (k - 1) * d + 1
        total = max((math.ceil(size / s) - 1) * s + effective - size, 0)
        small, large = total // 2, total - total // 2
        out.append((large, small) if pad_type == "same_lower" else (small, large))
    return out


def _windows(x: np.ndarray, kernel_sizes: list[int], strides: list[int], dilations: list[int]) -> np.ndarray:
    """[N, C, *out, *K] view of every (dilated, strided) window over the trailing spatial axes."""
    spatial = list(range(2, x.ndim))
    effective = [(k - 1) * d + 1 for k, d in zip(kernel_sizes, dilations)]
    view = sliding_window_view(x, effective, axis=spatial)
    n = len(spatial)
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides) + \
        tuple(slice(None, None, d) for d in dilations)
    return view[index[: 2 + 2 * n]]


@kernel("conv")
def conv(args: dict[str, Any]) -> np.ndarray:
    x, weight = _wide(args["x"]), _wide(args["weight"])
    n = x.ndim - 2
    groups = int(args.get("groups", 1) or 1)
    strides = _ints(args.get("strides"), n, 1)
    dilations = _ints(args.get("dilations"), n, 1)
    ksize = list(weight.shape[2:])
    pads = _pads(str(args.get("pad_type", "valid")), args.get("pad"), list(x.shape[2:]), ksize, strides, dilations)
    x = np.pad(x, [(0, 0), (0, 0)] + pads)
    win = _windows(x, ksize, strides, dilations)  # [N, C, *out, *K]
    batch, channels = x.shape[:2]
    out_spatial = win.shape[2:2 + n]
    win = win.reshape(batch, groups, channels // groups, *out_spatial, *ksize)
    w = weight.reshape(groups, weight.shape[0] // groups, weight.shape[1], *ksize)
    letters = "hwd"[:n]
    kletters = "ijk"[:n]
    y = np.einsum(f"ngc{letters}{kletters},goc{kletters}->ngo{letters}", win, w, optimize=True)
    y = y.reshape(batch, weight.shape[0], *out_spatial)
    if args.get("bias") is not None:
        y = y + _wide(args["bias"]).reshape((1, -1) + (1,) * n)
    return y


@kernel("conv_transpose")
def conv_transpose(args: dict[str, Any]) -> np.ndarray:
    """The gradient of `conv`: zeros between input elements (stride), a full padding of the dilated
    kernel, the flipped kernel with in/out channels swapped, then the op's padding cropped away."""
    x, weight = _wide(args["x"]), _wide(args["weight"])
    n = x.ndim - 2
    groups = int(args.get("groups", 1) or 1)
    strides = _ints(args.get("strides"), n, 1)
    dilations = _ints(args.get("dilations"), n, 1)
    ksize = list(weight.shape[2:])
    batch, cin = x.shape[:2]
    cout = weight.shape[1] * groups
    stretched_shape = [batch, cin] + [(size - 1) * s + 1 for size, s in zip(x.shape[2:], strides)]
    stretched = np.zeros(stretched_shape, dtype=x.dtype)
    stretched[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)] = x
    full = [(k - 1) * d for k, d in zip(ksize, dilations)]
    padded = np.pad(stretched, [(0, 0), (0, 0)] + [(f, f) for f in full])
    # [Cin, Cout/g, *K] -> per group [Cout/g, Cin/g, *K], flipped spatially
    w = weight.reshape(groups, cin // groups, cout // groups, *ksize)
    w = np.flip(np.swapaxes(w, 1, 2), axis=tuple(range(3, 3 + n)))
    w = w.reshape(cout, cin // groups, *ksize)
    y = conv({"x": padded, "weight": w, "groups": groups, "dilations": dilations, "pad_type": "valid"})
    full_sizes = list(y.shape[2:])
    pad_type = str(args.get("pad_type", "valid"))
    if args.get("output_shape") is not None:
        wanted = [int(v) for v in np.ravel(args["output_shape"])][-n:]
    else:
        wanted = None
    crops: list[tuple[int, int]] = []
    for i, size in enumerate(full_sizes):
        if pad_type == "custom":
            flat = _ints(args.get("pad"), 2 * n, 0)
            before, after = flat[2 * i], flat[2 * i + 1]
        elif pad_type == "same":
            total = size - x.shape[2 + i] * strides[i]
            before, after = total // 2, total - total // 2
        else:
            before, after = 0, 0
        if wanted is not None:
            after = size - before - wanted[i]
        crops.append((before, after))
    y = y[(slice(None), slice(None)) + tuple(slice(b, size - a) for (b, a), size in zip(crops, full_sizes))]
    if args.get("bias") is not None:
        y = y + _wide(args["bias"]).reshape((1, -1) + (1,) * n)
    return y


@kernel("batch_norm")
def batch_norm(args: dict[str, Any]) -> np.ndarray:
    x = _wide(args["x"])
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = _wide(args["mean"]).reshape(shape), _wide(args["variance"]).reshape(shape)
    eps = float(args.get("epsilon", 1e-5))
    y = (x - mean) / np.sqrt(var + eps)
    if args.get("gamma") is not None:
        y = y * _wide(args["gamma"]).reshape(shape)
    if args.get("beta") is not None:
        y = y + _wide(args["beta"]).reshape(shape)
    return y


@kernel("instance_norm")
def instance_norm(args: dict[str, Any]) -> np.ndarray:
    x = _wide(args["x"])
    axes = tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + float(args.get("epsilon", 1e-5)))
    if args.get("gamma") is not None:
        y = y * _wide(args["gamma"]).reshape(shape)
    if args.get("beta") is not None:
        y = y + _wide(args["beta"]).reshape(shape)
    return y


def _pool(args: dict[str, Any], reduce: str) -> np.ndarray:
    x = _wide(args["x"])
    n = x.ndim - 2
    ksize = _ints(args["kernel_sizes"], n, 1)
    strides = _ints(args.get("strides"), n, 1)
    sizes = list(x.shape[2:])
    pad_type = str(args.get("pad_type", "valid"))
    pads = _pads(pad_type, args.get("pad"), sizes, ksize, strides, [1] * n)
    if pad_type in ("valid", "custom") and bool(args.get("ceil_mode", False)):
        # ceil mode: extra rows at the end so that the last partial window counts, unless it would
        # start in the padding only (the MIL / PyTorch rule).
        grown = []
        for (before, after), size, k, s in zip(pads, sizes, ksize, strides):
            out = math.ceil((size + before + after - k) / s) + 1
            if (out - 1) * s >= size + before:
                out -= 1
            grown.append((before, max(after, (out - 1) * s + k - size - before)))
        pads = grown
    fill = -np.inf if reduce == "max" else 0.0
    padded = np.pad(x, [(0, 0), (0, 0)] + pads, constant_values=fill)
    win = _windows(padded, ksize, strides, [1] * n)
    axes = tuple(range(-n, 0))
    if reduce == "max":
        return win.max(axis=axes)
    if reduce == "l2":
        return np.sqrt((win ** 2).sum(axis=axes))
    total = win.sum(axis=axes)
    # The denominator: real elements only (exclude_padding_from_average), or real elements plus the
    # declared padding (never the extra tail ceil mode adds).
    declared = _pads(pad_type, args.get("pad"), sizes, ksize, strides, [1] * n)
    exclude = bool(args.get("exclude_padding_from_average", False))
    if not exclude and pads == declared:
        return total / float(np.prod(ksize))
    real = np.ones([1, 1] + sizes, dtype=x.dtype)
    counted = real if exclude else np.pad(real, [(0, 0), (0, 0)] + declared, constant_values=1.0)
    rest = pads if exclude else [(p[0] - d[0], p[1] - d[1]) for p, d in zip(pads, declared)]
    count = _windows(np.pad(counted, [(0, 0), (0, 0)] + rest), ksize, strides, [1] * n).sum(axis=axes)
    return total / np.maximum(count, 1.0)


@kernel("max_pool")
def max_pool(args: dict[str, Any]) -> np.ndarray:
    return _pool(args, "max")


@kernel("avg_pool")
def avg_pool(args: dict[str, Any]) -> np.ndarray:
    return _pool(args, "avg")


@kernel("l2_pool")
def l2_pool(args: dict[str, Any]) -> np.ndarray:
    return _pool(args, "l2")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # no overflow warning for large |x|


@kernel("silu")
def silu(args: dict[str, Any]) -> np.ndarray:
    x = _wide(args["x"])
    return x * _sigmoid(x)


def _nearest_index(size_in: int, size_out: int, scale: float) -> np.ndarray:
    return np.minimum(np.floor(np.arange(size_out) / scale).astype(np.int64), size_in - 1)


@kernel("upsample_nearest_neighbor")
def upsample_nearest_neighbor(args: dict[str, Any]) -> np.ndarray:
    x = args["x"]
    sh, sw = float(args.get("scale_factor_height", 1)), float(args.get("scale_factor_width", 1))
    h, w = x.shape[-2:]
    oh, ow = int(math.floor(h * sh)), int(math.floor(w * sw))
    return x[..., _nearest_index(h, oh, sh), :][..., _nearest_index(w, ow, sw)]


def _linear_axis(x: np.ndarray, axis: int, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of `x` along `axis` at the (clamped) fractional positions `grid`."""
    size = x.shape[axis]
    grid = np.clip(grid, 0.0, size - 1)
    lo = np.floor(grid).astype(np.int64)
    hi = np.minimum(lo + 1, size - 1)
    frac = (grid - lo).astype(x.dtype)
    shape = [1] * x.ndim
    shape[axis] = -1
    frac = frac.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - frac) + np.take(x, hi, axis=axis) * frac


def _grid(size_in: int, size_out: int, mode: str) -> np.ndarray:
    i = np.arange(size_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if size_out == 1:
            return np.array([(size_in - 1) / 2.0 if mode == "ALIGN_CORNERS" else 0.0])
        return i * (size_in - 1) / (size_out - 1)
    if mode == "DEFAULT":
        return i * ((size_in - size_in / size_out) / (size_out - 1)) if size_out > 1 else np.zeros(1)
    if mode == "OFFSET_CORNERS":
        delta = max(1, size_in - 1) / size_out
        return 0.5 * delta + i * delta
    if mode == "UNALIGN_CORNERS":
        spacing = size_in / size_out
        return i * spacing + 0.5 * spacing - 0.5
    raise ValueError(f"unknown sampling mode {mode!r}")


@kernel("upsample_bilinear")
def upsample_bilinear(args: dict[str, Any]) -> np.ndarray:
    x = _wide(args["x"])
    h, w = x.shape[-2:]
    oh = int(math.floor(h * float(args.get("scale_factor_height", 1))))
    ow = int(math.floor(w * float(args.get("scale_factor_width", 1))))
    mode = "STRICT_ALIGN_CORNERS" if bool(args.get("align_corners", True)) else "UNALIGN_CORNERS"
    return _linear_axis(_linear_axis(x, -2, _grid(h, oh, mode)), -1, _grid(w, ow, mode))


@kernel("resize_bilinear")
def resize_bilinear(args: dict[str, Any]) -> np.ndarray:
    x = _wide(args["x"])
    h, w = x.shape[-2:]
    oh, ow = int(args.get("target_size_height", 1)), int(args.get("target_size_width", 1))
    mode = str(args.get("sampling_mode", "DEFAULT"))
    return _linear_axis(_linear_axis(x, -2, _grid(h, oh, mode)), -1, _grid(w, ow, mode))


@kernel("resize_nearest_neighbor")
def resize_nearest_neighbor(args: dict[str, Any]) -> np.ndarray:
    x = args["x"]
    h, w = x.shape[-2:]
    oh, ow = int(args.get("target_size_height", 1)), int(args.get("target_size_width", 1))
    return x[..., _nearest_index(h, oh, oh / h), :][..., _nearest_index(w, ow, ow / w)]


@kernel("pixel_shuffle")
def pixel_shuffle(args: dict[str, Any]) -> np.ndarray:
    x, r = args["x"], int(args["upscale_factor"])
    n, c, h, w = x.shape
    return x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)


@kernel("pixel_unshuffle")
def pixel_unshuffle(args: dict[str, Any]) -> np.ndarray:
    x, r = args["x"], int(args["downscale_factor"])
    n, c, h, w = x.shape
    return x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, h // r, w // r)


@kernel("depth_to_space")
def depth_to_space(args: dict[str, Any]) -> np.ndarray:
    """DCR order (TensorFlow's): the block offsets are the outer part of the channel axis."""
    x, b = args["x"], int(args["block_size"])
    n, c, h, w = x.shape
    return x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2).reshape(n, c // (b * b), h * b, w * b)


@kernel("space_to_depth")
def space_to_depth(args: dict[str, Any]) -> np.ndarray:
    x, b = args["x"], int(args["block_size"])
    n, c, h, w = x.shape
    return x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4).reshape(n, c * b * b, h // b, w // b)


@kernel("gather_nd")
def gather_nd(args: dict[str, Any]) -> np.ndarray:
    x, indices = args["x"], np.asarray(args["indices"]).astype(np.int64)
    k = indices.shape[-1]
    dims = np.array(x.shape[:k])
    indices = np.where(indices < 0, indices + dims, indices)
    return x[tuple(np.moveaxis(indices, -1, 0))]


@kernel("one_hot")
def one_hot(args: dict[str, Any]) -> np.ndarray:
    indices = np.asarray(args["indices"]).astype(np.int64)
    size = int(args["one_hot_vector_size"])
    axis = int(args.get("axis", -1))
    on, off = args.get("on_value", 1), args.get("off_value", 0)
    hot = np.arange(size) == indices[..., None]
    out = np.where(hot, on, off)
    return np.moveaxis(out, -1, axis if axis >= 0 else out.ndim + axis)


@kernel("reshape_like")
def reshape_like(args: dict[str, Any]) -> np.ndarray:
    x = args["x"]
    refs = args["ref_tensors"]
    begins, ends = _ints(args["begins"], len(refs), 0), _ints(args["ends"], len(refs), 0)
    masks = [bool(m) for m in np.ravel(args["end_masks"])]
    shape: list[int] = []
    for ref, begin, end, mask in zip(refs, begins, ends, masks):
        dims = list(np.shape(ref))
        shape.extend(dims[begin:] if mask else dims[begin:end])
    return x.reshape(shape)


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0),
    "linear": lambda v: v,
    "scaled_tanh": lambda v: np.tanh(v),  # alpha/beta 1: what the converters emit
    "sigmoid_hard": lambda v: np.clip(0.2 * v + 0.5, 0, 1),
}


def _activation(name: Any) -> Callable[[np.ndarray], np.ndarray]:
    key = str(name).lower()
    if key not in _ACTIVATIONS:
        raise NotImplementedError(f"recurrent activation {name!r}")
    return _ACTIVATIONS[key]


@kernel("lstm")
def lstm(args: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MIL's lstm: x [s, b, I]; gates ordered input, forget, output, cell; returns (sequence, h, c)."""
    x = _wide(args["x"])
    direction = str(args.get("direction", "forward"))
    rec, cell_act, act = (_activation(args.get(k, d)) for k, d in
                          (("recurrent_activation", "sigmoid"), ("cell_activation", "tanh"), ("activation", "tanh")))
    clip = args.get("clip")
    h0, c0 = _wide(args["initial_h"]), _wide(args["initial_c"])
    hidden = args["weight_hh"].shape[1]

    def run(w_ih: Any, w_hh: Any, bias: Any, peephole: Any, h: np.ndarray, c: np.ndarray,
            reverse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w_ih, w_hh = _wide(w_ih), _wide(w_hh)
        b = _wide(bias) if bias is not None else 0.0
        p = _wide(peephole) if peephole is not None else np.zeros(3 * hidden, dtype=x.dtype)
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        seq = np.zeros((x.shape[0], x.shape[1], hidden), dtype=x.dtype)
        for t in steps:
            z = x[t] @ w_ih.T + h @ w_hh.T + b
            if clip is not None:
                z = np.clip(z, -float(clip), float(clip))
            zi, zf, zo, zc = np.split(z, 4, axis=-1)
            i = rec(zi + p[:hidden] * c)
            f = rec(zf + p[hidden:2 * hidden] * c)
            c = f * c + i * cell_act(zc)
            o = rec(zo + p[2 * hidden:] * c)
            h = o * act(c)
            seq[t] = h
        return seq, h, c

    forward = run(args["weight_ih"], args["weight_hh"], args.get("bias"), args.get("peephole"),
                  h0[:, :hidden], c0[:, :hidden], direction == "backward")
    if direction == "bidirectional":
        backward = run(args["weight_ih_back"], args["weight_hh_back"], args.get("bias_back"),
                       args.get("peephole_back"), h0[:, hidden:], c0[:, hidden:], True)
        seq = np.concatenate([forward[0], backward[0]], axis=-1)
        h, c = np.concatenate([forward[1], backward[1]], -1), np.concatenate([forward[2], backward[2]], -1)
    else:
        seq, h, c = forward
    if not bool(args.get("output_sequence", False)):
        seq = h[None]
    return seq, h, c


@kernel("gru")
def gru(args: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """MIL's gru (iOS17 form): gates ordered reset, update, new; returns (sequence, h)."""
    x = _wide(args["x"])
    rec, act = _activation(args.get("recurrent_activation", "sigmoid")), _activation(args.get("activation", "tanh"))
    w_ih, w_hh = _wide(args["weight_ih"]), _wide(args["weight_hh"])
    hidden = w_hh.shape[1]
    b_ih = _wide(args["input_bias"]) if args.get("input_bias") is not None else np.zeros(3 * hidden, x.dtype)
    b_hh = _wide(args["bias"]) if args.get("bias") is not None else np.zeros(3 * hidden, x.dtype)
    if args.get("reset_after") is not None and not bool(args["reset_after"]):
        raise NotImplementedError("gru with reset_after=False")
    h = _wide(args["initial_h"])
    reverse = str(args.get("direction", "forward")) == "reverse"
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    seq = np.zeros((x.shape[0], x.shape[1], hidden), dtype=x.dtype)
    for t in steps:
        zx, zh = x[t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        r = rec(zx[:, :hidden] + zh[:, :hidden])
        z = rec(zx[:, hidden:2 * hidden] + zh[:, hidden:2 * hidden])
        n = act(zx[:, 2 * hidden:] + r * zh[:, 2 * hidden:])
        h = (1 - z) * n + z * h
        seq[t] = h
    if not bool(args.get("output_sequence", False)):
        seq = h[None]
    return seq, h


@kernel("rnn")
def rnn(args: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    x = _wide(args["x"])
    act = _activation(args.get("activation", "tanh"))
    w_ih, w_hh = _wide(args["weight_ih"]), _wide(args["weight_hh"])
    b = _wide(args["bias"]) if args.get("bias") is not None else 0.0
    h = _wide(args["initial_h"])
    reverse = str(args.get("direction", "forward")) == "reverse"
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    seq = np.zeros((x.shape[0], x.shape[1], w_hh.shape[1]), dtype=x.dtype)
    for t in steps:
        h = act(x[t] @ w_ih.T + h @ w_hh.T + b)
        seq[t] = h
    if not bool(args.get("output_sequence", False)):
        seq = h[None]
    return seq, h


# -- precision-sensitive ops whose value_inference computes in the input's dtype ---------------------
# coremltools' value_inference of matmul / linear runs numpy on fp16 arrays, whose matmul accumulates
# in fp16 element by element: not what any Core ML backend does. These accumulate in float32.
@kernel("matmul")
def matmul(args: dict[str, Any]) -> np.ndarray:
    x, y = _wide(args["x"]), _wide(args["y"])
    if bool(args.get("transpose_x", False)):
        x = np.swapaxes(x, -1, -2) if x.ndim > 1 else x
    if bool(args.get("transpose_y", False)):
        y = np.swapaxes(y, -1, -2) if y.ndim > 1 else y
    return np.matmul(x, y)


@kernel("linear")
def linear(args: dict[str, Any]) -> np.ndarray:
    y = np.matmul(_wide(args["x"]), _wide(args["weight"]).T)
    if args.get("bias") is not None:
        y = y + _wide(args["bias"])
    return y


@kernel("einsum")
def einsum(args: dict[str, Any]) -> np.ndarray:
    values = [_wide(v) for v in args["values"]]
    return np.einsum(str(args["equation"]), *values, optimize=True)


@kernel("layer_norm")
def layer_norm(args: dict[str, Any]) -> np.ndarray:
    x = _wide(args["x"])
    axes = tuple(int(a) for a in np.ravel(args["axes"])) if args.get("axes") is not None else tuple(range(x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + float(args.get("epsilon", 1e-5)))
    if args.get("gamma") is not None:
        y = y * _wide(args["gamma"])
    if args.get("beta") is not None:
        y = y + _wide(args["beta"])
    return y


@kernel("softmax")
def softmax(args: dict[str, Any]) -> np.ndarray:
    x = _wide(args["x"])
    axis = int(args.get("axis", -1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@kernel("gelu")
def gelu(args: dict[str, Any]) -> np.ndarray:
    from math import pi, sqrt

    x = _wide(args["x"])
    mode = str(args.get("mode", "EXACT"))
    if mode == "EXACT":
        return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1.0 + np.tanh(sqrt(2.0 / pi) * (x + 0.044715 * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x * _sigmoid(1.702 * x)
    raise ValueError(f"unknown gelu mode {mode!r}")


def _erf(x: np.ndarray) -> np.ndarray:
    """erf in float64 (numpy has none): scipy's where installed, else math.erf element by element."""
    try:
        from scipy.special import erf as vectorised

        return vectorised(x.astype(np.float64)).astype(x.dtype)
    except ImportError:
        from math import erf
    flat = x.astype(np.float64).ravel()
    return np.fromiter((erf(v) for v in flat), dtype=np.float64, count=flat.size).reshape(x.shape).astype(x.dtype)


# -- shape ops: coremltools' value_inference reads the static (possibly symbolic) type, not the value --
@kernel("shape")
def shape(args: dict[str, Any]) -> np.ndarray:
    return np.array(np.shape(args["x"]), dtype=np.int32)


@kernel("reshape")
def reshape(args: dict[str, Any]) -> np.ndarray:
    """MIL reshape: at most one -1 (inferred); 0 (iOS17) keeps the input's size on that axis."""
    x = np.asarray(args["x"])
    wanted = [int(v) for v in np.ravel(args["shape"])]
    wanted = [x.shape[i] if v == 0 else v for i, v in enumerate(wanted)]
    return x.reshape(wanted)


@kernel("fill_like")
def fill_like(args: dict[str, Any]) -> np.ndarray:
    return np.full(np.shape(args["ref_tensor"]), args.get("value", 0.0))


@kernel("flatten2d")
def flatten2d(args: dict[str, Any]) -> np.ndarray:
    x = np.asarray(args["x"])
    axis = int(args.get("axis", 1))
    axis = axis if axis >= 0 else x.ndim + axis
    return x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))


@kernel("split")
def split(args: dict[str, Any]) -> tuple[np.ndarray, ...]:
    x = np.asarray(args["x"])
    axis = int(args["axis"])
    if args.get("split_sizes") is not None:
        bounds = np.cumsum([int(v) for v in np.ravel(args["split_sizes"])])[:-1]
        return tuple(np.split(x, bounds, axis=axis))
    return tuple(np.split(x, int(args["num_splits"]), axis=axis))


@kernel("slice_by_index")
def slice_by_index(args: dict[str, Any]) -> np.ndarray:
    x = np.asarray(args["x"])
    rank = x.ndim
    begin = [int(v) for v in np.ravel(args["begin"])]
    end = [int(v) for v in np.ravel(args["end"])]
    stride = [int(v) for v in np.ravel(args["stride"])] if args.get("stride") is not None else [1] * rank

    def mask(name: str) -> list[bool]:
        value = args.get(name)
        return [bool(v) for v in np.ravel(value)] if value is not None else [False] * rank

    begin_mask, end_mask, squeeze = mask("begin_mask"), mask("end_mask"), mask("squeeze_mask")
    index: list[Any] = []
    for axis in range(rank):
        b = None if begin_mask[axis] else begin[axis]
        e = None if end_mask[axis] else end[axis]
        if squeeze[axis]:
            index.append(begin[axis])
        else:
            index.append(slice(b, e, stride[axis]))
    return x[tuple(index)]


@kernel("gather")
def gather(args: dict[str, Any]) -> np.ndarray:
    x, indices = np.asarray(args["x"]), np.asarray(args["indices"]).astype(np.int64)
    axis = int(args.get("axis", 0))
    batch_dims = int(args.get("batch_dims", 0))
    axis = axis if axis >= 0 else x.ndim + axis
    indices = np.where(indices < 0, indices + x.shape[axis], indices)
    if batch_dims == 0:
        return np.take(x, indices, axis=axis)
    # Gather per batch element over the leading batch_dims axes.
    lead = x.shape[:batch_dims]
    flat_x = x.reshape((-1,) + x.shape[batch_dims:])
    flat_i = indices.reshape((-1,) + indices.shape[batch_dims:])
    parts = [np.take(flat_x[b], flat_i[b], axis=axis - batch_dims) for b in range(flat_x.shape[0])]
    out = np.stack(parts)
    return out.reshape(lead + out.shape[1:])


@kernel("expand_dims")
def expand_dims(args: dict[str, Any]) -> np.ndarray:
    x = np.asarray(args["x"])
    requested = [int(a) for a in np.ravel(args["axes"])]
    rank = x.ndim + len(requested)  # a negative axis counts from the end of the output
    for axis in sorted(a if a >= 0 else a + rank for a in requested):
        x = np.expand_dims(x, axis)
    return x


@kernel("squeeze")
def squeeze(args: dict[str, Any]) -> np.ndarray:
    x = np.asarray(args["x"])
    if args.get("axes") is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(int(a) for a in np.ravel(args["axes"])))
