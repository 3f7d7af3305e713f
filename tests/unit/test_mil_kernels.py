"""The MIL executor's reference kernels against torch (and explicit loops) on random tensors.

A kernel that is wrong would turn a faithful Core ML conversion into a mismatch, or worse hide a
converter bug: each is checked here in the MIL op's own parameter conventions (pad_type, weight
layouts, gate orders), including the corner cases converters emit (groups, dilation, ceil mode,
excluded padding, odd sizes).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from convcheck.validate.mil.kernels import KERNELS  # noqa: E402

pytestmark = pytest.mark.framework
RNG = np.random.default_rng(7)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def close(actual: np.ndarray, expected, atol: float = 2e-5) -> None:
    expected = expected.detach().numpy() if hasattr(expected, "detach") else np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=1e-4)


def t(x: np.ndarray):
    return torch.from_numpy(x)


@pytest.mark.parametrize("case", [
    dict(spatial=(9, 11), k=(3, 3), stride=(1, 1), dil=(1, 1), groups=1, pad_type="custom", pad=(1, 1, 1, 1)),
    dict(spatial=(9, 11), k=(3, 2), stride=(2, 3), dil=(1, 1), groups=2, pad_type="valid", pad=None),
    dict(spatial=(10, 10), k=(3, 3), stride=(1, 1), dil=(2, 2), groups=4, pad_type="custom", pad=(2, 2, 2, 2)),
    dict(spatial=(13,), k=(5,), stride=(2,), dil=(1,), groups=1, pad_type="custom", pad=(2, 1)),
    dict(spatial=(4, 5, 6), k=(2, 3, 3), stride=(1, 2, 1), dil=(1, 1, 1), groups=1, pad_type="valid", pad=None),
])
def test_conv(case):
    cin, cout = 4, 8
    x = rand(2, cin, *case["spatial"])
    w = rand(cout, cin // case["groups"], *case["k"])
    b = rand(cout)
    got = KERNELS["conv"]({"x": x, "weight": w, "bias": b, "strides": np.array(case["stride"]),
                           "dilations": np.array(case["dil"]), "groups": case["groups"],
                           "pad_type": case["pad_type"], "pad": None if case["pad"] is None else np.array(case["pad"])})
    n = len(case["spatial"])
    xt = t(x)
    if case["pad"] is not None:
        # torch pads (last axis first); MIL's pad is (before, after) per axis, first axis first.
        pairs = [case["pad"][2 * i:2 * i + 2] for i in range(n)]
        xt = F.pad(xt, [p for pair in reversed(pairs) for p in pair])
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    close(got, conv(xt, t(w), t(b), stride=case["stride"], dilation=case["dil"], groups=case["groups"]))


def test_conv_same_padding_matches_torch_same():
    x, w = rand(1, 3, 10, 7), rand(5, 3, 4, 3)
    got = KERNELS["conv"]({"x": x, "weight": w, "pad_type": "same", "strides": np.array([1, 1])})
    close(got, F.conv2d(t(x), t(w), padding="same"))


@pytest.mark.parametrize("stride,pad,groups,out_pad", [((2, 2), (1, 1, 1, 1), 1, (1, 1)), ((1, 1), (0, 0, 0, 0), 2, (0, 0)),
                                                       ((3, 2), (2, 2, 0, 0), 1, (1, 0))])
def test_conv_transpose(stride, pad, groups, out_pad):
    cin, cout = 4, 6
    x, w, b = rand(2, cin, 5, 6), rand(cin, cout // groups, 3, 3), rand(cout)
    expected = F.conv_transpose2d(t(x), t(w), t(b), stride=stride, padding=(pad[0], pad[2]), groups=groups,
                                  output_padding=out_pad)
    got = KERNELS["conv_transpose"]({"x": x, "weight": w, "bias": b, "strides": np.array(stride), "groups": groups,
                                     "pad_type": "custom", "pad": np.array(pad),
                                     "output_shape": np.array(expected.shape, dtype=np.int32)})
    close(got, expected)


def test_batch_and_instance_norm():
    x, mean, var, g, b = rand(2, 5, 4, 3), rand(5), np.abs(rand(5)) + 0.1, rand(5), rand(5)
    close(KERNELS["batch_norm"]({"x": x, "mean": mean, "variance": var, "gamma": g, "beta": b, "epsilon": 1e-3}),
          F.batch_norm(t(x), t(mean), t(var), t(g), t(b), training=False, eps=1e-3))
    close(KERNELS["instance_norm"]({"x": x, "gamma": g, "beta": b, "epsilon": 1e-5}),
          F.instance_norm(t(x), weight=t(g), bias=t(b), eps=1e-5), atol=1e-4)


@pytest.mark.parametrize("ceil", [False, True])
def test_max_pool(ceil):
    x = rand(2, 3, 11, 9)
    got = KERNELS["max_pool"]({"x": x, "kernel_sizes": np.array([3, 3]), "strides": np.array([2, 2]),
                               "pad_type": "custom", "pad": np.array([1, 1, 1, 1]), "ceil_mode": ceil})
    close(got, F.max_pool2d(t(x), 3, 2, padding=1, ceil_mode=ceil))


@pytest.mark.parametrize("exclude,ceil", [(False, False), (True, False), (True, True), (False, True)])
def test_avg_pool(exclude, ceil):
    x = rand(2, 3, 11, 8)
    got = KERNELS["avg_pool"]({"x": x, "kernel_sizes": np.array([3, 3]), "strides": np.array([2, 2]),
                               "pad_type": "custom", "pad": np.array([1, 1, 1, 1]), "ceil_mode": ceil,
                               "exclude_padding_from_average": exclude})
    close(got, F.avg_pool2d(t(x), 3, 2, padding=1, ceil_mode=ceil, count_include_pad=not exclude))


def test_avg_pool_valid_is_the_plain_mean():
    x = rand(1, 2, 8, 8)
    got = KERNELS["avg_pool"]({"x": x, "kernel_sizes": np.array([2, 2]), "strides": np.array([2, 2]),
                               "pad_type": "valid"})
    close(got, F.avg_pool2d(t(x), 2, 2))


def test_activations_and_normalisations():
    x = rand(3, 7, 16)
    close(KERNELS["silu"]({"x": x}), F.silu(t(x)))
    close(KERNELS["gelu"]({"x": x, "mode": "EXACT"}), F.gelu(t(x)))
    close(KERNELS["gelu"]({"x": x, "mode": "TANH_APPROXIMATION"}), F.gelu(t(x), approximate="tanh"))
    close(KERNELS["softmax"]({"x": x, "axis": 1}), F.softmax(t(x), dim=1))
    g, b = rand(16), rand(16)
    close(KERNELS["layer_norm"]({"x": x, "axes": np.array([-1]), "gamma": g, "beta": b, "epsilon": 1e-5}),
          F.layer_norm(t(x), (16,), t(g), t(b)), atol=1e-4)


@pytest.mark.parametrize("align", [True, False])
def test_upsample(align):
    x = rand(1, 2, 5, 4)
    close(KERNELS["upsample_nearest_neighbor"]({"x": x, "scale_factor_height": 2, "scale_factor_width": 3}),
          F.interpolate(t(x), scale_factor=(2, 3), mode="nearest"))
    close(KERNELS["upsample_bilinear"]({"x": x, "scale_factor_height": 2.0, "scale_factor_width": 2.0,
                                        "align_corners": align}),
          F.interpolate(t(x), scale_factor=2, mode="bilinear", align_corners=align))


def test_matmul_linear_and_fp16_accumulation():
    x, y = rand(2, 3, 5, 64), rand(2, 3, 64, 4)
    close(KERNELS["matmul"]({"x": x, "y": y}), t(x) @ t(y), atol=1e-4)
    close(KERNELS["matmul"]({"x": x, "y": np.swapaxes(y, -1, -2).copy(), "transpose_y": True}), t(x) @ t(y), atol=1e-4)
    w, b = rand(7, 64), rand(7)
    close(KERNELS["linear"]({"x": x, "weight": w, "bias": b}), F.linear(t(x), t(w), t(b)), atol=1e-4)
    # fp16 operands accumulate in fp32: one rounding at the end, not one per partial sum.
    h = KERNELS["matmul"]({"x": x.astype(np.float16), "y": y.astype(np.float16)}).astype(np.float16)
    exact = x.astype(np.float16).astype(np.float64) @ y.astype(np.float16).astype(np.float64)
    assert np.abs(h - exact).max() <= np.abs(exact).max() * 2 ** -10


def test_lstm_matches_torch_in_mil_gate_order():
    seq, batch, inp, hidden = 6, 2, 5, 4
    torch.manual_seed(0)
    for bidirectional in (False, True):
        ref = torch.nn.LSTM(inp, hidden, bidirectional=bidirectional)
        x = rand(seq, batch, inp)
        dirs = 2 if bidirectional else 1
        h0, c0 = rand(dirs, batch, hidden), rand(dirs, batch, hidden)
        expected, (hn, cn) = ref(t(x), (t(h0), t(c0)))

        def mil(suffix: str) -> dict[str, np.ndarray]:
            # torch gates: input, forget, cell(g), output -> MIL: input, forget, output, cell
            def reorder(a):
                i, f, g, o = np.split(a, 4, axis=0)
                return np.concatenate([i, f, o, g])
            w_ih = getattr(ref, f"weight_ih_l0{suffix}").detach().numpy()
            w_hh = getattr(ref, f"weight_hh_l0{suffix}").detach().numpy()
            bias = (getattr(ref, f"bias_ih_l0{suffix}") + getattr(ref, f"bias_hh_l0{suffix}")).detach().numpy()
            return {"w_ih": reorder(w_ih), "w_hh": reorder(w_hh), "b": reorder(bias)}

        fwd = mil("")
        args = {"x": x, "initial_h": np.concatenate(list(h0), -1), "initial_c": np.concatenate(list(c0), -1),
                "weight_ih": fwd["w_ih"], "weight_hh": fwd["w_hh"], "bias": fwd["b"], "output_sequence": True,
                "direction": "bidirectional" if bidirectional else "forward"}
        if bidirectional:
            back = mil("_reverse")
            args.update(weight_ih_back=back["w_ih"], weight_hh_back=back["w_hh"], bias_back=back["b"])
        out, h, c = KERNELS["lstm"](args)
        close(out, expected, atol=1e-5)
        close(h, torch.cat(list(hn), -1), atol=1e-5)
        close(c, torch.cat(list(cn), -1), atol=1e-5)


def test_gru_matches_torch():
    torch.manual_seed(1)
    ref = torch.nn.GRU(5, 4)
    x, h0 = rand(6, 2, 5), rand(1, 2, 4)
    expected, hn = ref(t(x), t(h0))
    out, h = KERNELS["gru"]({"x": x, "initial_h": h0[0], "weight_ih": ref.weight_ih_l0.detach().numpy(),
                             "weight_hh": ref.weight_hh_l0.detach().numpy(), "input_bias": ref.bias_ih_l0.detach().numpy(),
                             "bias": ref.bias_hh_l0.detach().numpy(), "output_sequence": True})
    close(out, expected)
    close(h, hn[0])


def test_index_and_shape_ops():
    x = rand(4, 6, 5)
    idx = np.array([[0, -1], [2, 3]], dtype=np.int32)
    close(KERNELS["gather"]({"x": x, "indices": idx, "axis": 1}), torch.index_select(t(x), 1, t(np.array([0, 5, 2, 3]))
                                                                                     .long()).reshape(4, 2, 2, 5))
    close(KERNELS["gather_nd"]({"x": x, "indices": np.array([[1, 2], [3, 0]], dtype=np.int32)}), x[[1, 3], [2, 0]])
    got = KERNELS["slice_by_index"]({"x": x, "begin": np.array([1, 0, 4]), "end": np.array([3, 6, 0]),
                                     "stride": np.array([1, 2, -1]), "begin_mask": np.array([False, True, False]),
                                     "end_mask": np.array([False, False, True]),
                                     "squeeze_mask": np.array([False, False, False])})
    close(got, x[1:3, ::2, 4::-1])
    assert KERNELS["reshape"]({"x": x, "shape": np.array([0, -1])}).shape == (4, 30)
    assert KERNELS["expand_dims"]({"x": x, "axes": np.array([-1, 0])}).shape == (1, 4, 6, 5, 1)
    assert list(KERNELS["shape"]({"x": x})) == [4, 6, 5]
    parts = KERNELS["split"]({"x": x, "axis": 1, "split_sizes": np.array([1, 5])})
    assert [p.shape for p in parts] == [(4, 1, 5), (4, 5, 5)]
    hot = KERNELS["one_hot"]({"indices": np.array([0, 2]), "one_hot_vector_size": 3, "axis": -1})
    close(hot, F.one_hot(t(np.array([0, 2])), 3))


def test_pixel_shuffle_and_depth_to_space():
    x = rand(1, 8, 3, 2)
    close(KERNELS["pixel_shuffle"]({"x": x, "upscale_factor": 2}), F.pixel_shuffle(t(x), 2))
    close(KERNELS["pixel_unshuffle"]({"x": KERNELS["pixel_shuffle"]({"x": x, "upscale_factor": 2}),
                                      "downscale_factor": 2}), x)
    # DCR (TensorFlow's order): output[n, c, h*b + i, w*b + j] = input[n, (i*b + j)*C' + c, h, w]
    got = KERNELS["depth_to_space"]({"x": x, "block_size": 2})
    want = np.zeros((1, 2, 6, 4), np.float32)
    for c in range(2):
        for h in range(3):
            for w in range(2):
                for i in range(2):
                    for j in range(2):
                        want[0, c, h * 2 + i, w * 2 + j] = x[0, (i * 2 + j) * 2 + c, h, w]
    close(got, want)
    close(KERNELS["space_to_depth"]({"x": got, "block_size": 2}), x)
