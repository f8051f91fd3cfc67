"""Golden fixed-point quantiser and the tiny MatMul-free LM (no simulator needed)."""

import numpy as np
import pytest

from mmfree.golden.bitlinear import quantize_activations, rms_norm
from mmfree.golden.quantiser import (
    FixedBitLinear,
    dequant_factor,
    divide,
    quantise,
    to_block_float,
)
from mmfree.golden.tiny_model import (
    Greedy,
    IntegerBackend,
    TinyConfig,
    TinyModel,
    WeightFileError,
    deviation,
    float_backend,
    generate,
    load_weights,
    save_weights,
)


def test_quantiser_matches_float_bitlinear_quantisation(seed):
    """q is BitLinear's absmax int8 of RMSNorm(x) up to rounding ties and R's truncation
    (at most 1 LSB), and D * sqrt(K) / (127 * 2**Q) is 1 / s_x to r's precision."""
    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    equal = total = 0
    for _ in range(200):
        k = int(rng.integers(1, 300))
        x = rng.normal(0, rng.uniform(0.01, 100), k)
        m, _ = to_block_float(x)
        res = quantise(m)
        q_ref, s_x = quantize_activations(rms_norm(x, eps=0.0))
        assert np.max(np.abs(res.q - q_ref)) <= 1
        equal, total = equal + int(np.sum(res.q == q_ref)), total + k
        assert dequant_factor(res.scale, k) == pytest.approx(1 / s_x[0], rel=2e-4)
    assert equal / total > 0.98  # over ~30,000 values (about 99.9 % measured): rare, not absent


def test_quantiser_corners():
    zero = quantise(np.zeros(8, dtype=np.int64))
    assert zero.scale == 0 and not zero.q.any()
    assert zero.recip == (1 << 31) - 1  # the divider's all-ones quotient for divisor 0
    ext = quantise(np.array([-32768, 32767, 0, 1]))
    assert list(ext.q) == [-127, 127, 0, 0] and ext.amax == 32768
    one = quantise(np.array([1]))
    assert list(one.q) == [127] and one.rsqrt == 1 << 32 and one.scale == 1 << 32
    half_up = quantise(np.array([2, 1]), recip_frac=1)  # R = 127: 1 * 127 / 2 = 63.5 -> 64
    assert list(half_up.q) == [127, 64]
    with pytest.raises(ValueError, match="16-bit"):
        quantise(np.array([40000]))
    with pytest.raises(TypeError):
        quantise(np.array([0.5]))
    assert divide(7, 0, 4) == 15 and divide(7, 2, 4) == 3


def test_rsqrt_is_exact_floor(seed):
    """r = floor(2**Q / sqrt(N)) exactly: r**2 * N <= 2**(2Q) < (r + 1)**2 * N."""
    rng = np.random.default_rng(seed)
    for _ in range(300):
        m = rng.integers(-32768, 32768, int(rng.integers(1, 64)))
        res = quantise(m)
        n, r = res.sumsq, res.rsqrt
        assert n == sum(int(v) ** 2 for v in m)
        if n:
            assert r * r * n <= 1 << 64 < (r + 1) * (r + 1) * n


def test_block_float():
    m, e = to_block_float(np.array([1.0, -0.5, 0.25]))
    assert np.abs(m).max() <= 32767 and np.abs(m).max() > 16383
    assert np.allclose(np.ldexp(m.astype(float), -e), [1.0, -0.5, 0.25], atol=2.0**-e)
    assert to_block_float(np.zeros(3))[0].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="NaN"):
        to_block_float(np.array([1.0, np.nan]))


def test_model_calls_have_the_documented_shapes():
    """The BitLinear products of a token (the cycle model counts these: model.cycles)."""
    cfg = TinyConfig(d=96, layers=3, vocab=200)
    assert cfg.inter == 256
    calls = cfg.calls()
    # per layer: MLGRU c/f/g stacked (3d x d), o (d x d), GLU gate/up stacked (2I x d),
    # down (d x I); then the lm_head (vocab x d)
    assert calls[:4] == [("layers.0.mlgru.cfg", 288, 96), ("layers.0.mlgru.o", 96, 96),
                         ("layers.0.glu.gate_up", 512, 96), ("layers.0.glu.down", 96, 256)]
    assert len(calls) == 13 and calls[-1] == ("lm_head", 200, 96)
    assert [n for n, _, _ in calls[4:8]] == [f"layers.1.{n}" for n in
                                             ("mlgru.cfg", "mlgru.o", "glu.gate_up", "glu.down")]
    with pytest.raises(ValueError, match="d must"):
        TinyConfig(d=0)


def test_generation_is_deterministic_and_integer_close_to_float():
    model = TinyModel.random(TinyConfig(d=64, layers=1), 5)
    a = generate(model, [72, 105], 6, IntegerBackend())
    b = generate(TinyModel.random(TinyConfig(d=64, layers=1), 5), [72, 105], 6,
                 IntegerBackend())
    assert a.tokens == b.tokens and len(a.tokens) == 6
    assert generate(TinyModel.random(TinyConfig(d=64, layers=1), 6), [72, 105], 6,
                    IntegerBackend()).tokens != a.tokens
    dev = deviation(model, [72, 105], 6)
    assert dev.rel_rms_logit < 0.05 and dev.argmax_agree >= 0.8
    f = generate(model, [72, 105], 6, float_backend)
    assert len(f.tokens) == 6


def test_integer_backend_traces_device_results():
    model = TinyModel.random(TinyConfig(d=32, layers=1), 2)
    backend = IntegerBackend()
    generate(model, [1], 1, backend)
    assert [t[0] for t in backend.trace] == [n for n, _, _ in model.config.calls()]
    _, acc, scale = backend.trace[0]
    assert acc.shape == (96,) and scale > 0


def test_greedy_validates():
    with pytest.raises(ValueError, match="prompt"):
        Greedy([], 3)
    with pytest.raises(ValueError, match="n_new"):
        Greedy([1], 0)


def test_weight_file_round_trip_and_errors(tmp_path):
    model = TinyModel.random(TinyConfig(d=32, layers=1, vocab=64), 3)
    path = tmp_path / "w.npz"
    save_weights(model, path)
    again = load_weights(path)
    assert again.config == model.config
    assert generate(again, [5], 3, IntegerBackend()).tokens == \
        generate(model, [5], 3, IntegerBackend()).tokens

    def broken(name, **change):
        arrays = dict(model.weights)
        arrays.update(change)
        arrays = {k: v for k, v in arrays.items() if v is not None}
        p = tmp_path / f"{name}.npz"
        np.savez(p, **arrays)
        return p

    meta = np.array('{"d": 32, "layers": 1, "vocab": 64, "inter": 256}')
    with pytest.raises(WeightFileError, match="no 'config'"):
        load_weights(broken("noconfig"))
    with pytest.raises(WeightFileError, match="missing weight arrays: lm_head"):
        load_weights(broken("missing", config=meta, lm_head=None))
    with pytest.raises(WeightFileError, match="unexpected weight arrays: extra"):
        load_weights(broken("extra", config=meta, extra=np.zeros(2)))
    with pytest.raises(WeightFileError, match=r"embed: shape \(64, 31\)"):
        load_weights(broken("shape", config=meta, embed=np.zeros((64, 31))))
    nan = model.weights["lm_head"].copy()
    nan[0, 0] = np.nan
    with pytest.raises(WeightFileError, match="lm_head: holds NaN"):
        load_weights(broken("nan", config=meta, lm_head=nan))
    with pytest.raises(WeightFileError, match="float array"):
        load_weights(broken("int", config=meta, embed=np.zeros((64, 32), dtype=np.int8)))
    with pytest.raises(WeightFileError, match="bad 'config'"):
        load_weights(broken("badcfg", config=np.array('{"d": -1, "layers": 1, "vocab": 64}')))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(WeightFileError, match="not a readable"):
        load_weights(tmp_path / "junk.npz")


def test_fixed_bitlinear_rescale_is_bitlinear():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=64), rng.integers(-1, 2, (8, 64))
    arith = FixedBitLinear()
    m = arith.mantissas(x)
    acc, scale = arith.device(m, w)
    y = arith.rescale(acc, scale, 64, np.ones(8))
    x_q, s_x = quantize_activations(rms_norm(x, eps=0.0))
    assert np.allclose(y, (w @ x_q) / s_x[0], rtol=0.05, atol=0.5)
