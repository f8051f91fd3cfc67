"""The whole-token fixed-point contract (mmfree.golden.hgrn_fixed): every op against exact
rational arithmetic or float64 within its stated bound, corner cases (saturation extremes,
zero vectors, argmax ties), the config's validation and the token against the float
reference."""

import math
from fractions import Fraction

import numpy as np
import pytest

from mmfree.golden import hgrn_bit as H
from mmfree.golden.hgrn_fixed import (
    OP_KINDS,
    ROUNDINGS,
    FixedConfig,
    FixedModel,
    Fmt,
    embed_fixed,
    fixed_token_step,
    requantise,
    sc_normalise,
    sc_rescale,
    sc_rmsnorm_scale,
    sc_rsqrt,
    sigmoid_table,
    silu_table,
    sqrt_mantissa,
    table_max_error,
    vec_add,
    vec_argmax,
    vec_fma2,
    vec_mul,
    vec_rmsnorm,
    vec_sigmoid,
    vec_silu,
    vec_sub,
    vec_sumsq,
)
from mmfree.golden.quantiser import NormBitLinear, NormQuantFormat, weighted_dequant_factor

CFG = FixedConfig()


def exact_round(num: Fraction, mode: str) -> int:
    """A rational rounded as ``mode`` names it, independently of the module."""
    fl = math.floor(num)
    rest = num - fl
    if mode == "floor":
        return fl
    if mode == "truncate":
        return fl if num >= 0 else math.ceil(num)
    if mode == "half_up":
        return fl + (rest >= Fraction(1, 2))
    if mode == "half_away":
        mag = abs(num)
        r = math.floor(mag + Fraction(1, 2))
        return r if num >= 0 else -r
    if rest != Fraction(1, 2):  # half_even
        return fl + (rest > Fraction(1, 2))
    return fl + (fl % 2)


@pytest.mark.parametrize("mode", ROUNDINGS)
def test_requantise_rounds_and_saturates_exactly(mode, seed):
    rng = np.random.default_rng(seed)
    fmt = Fmt(12, 4, mode)
    v = np.concatenate([rng.integers(-(1 << 20), 1 << 20, 400), np.arange(-40, 41),
                        [-(1 << 40), (1 << 40)]])
    for shift in (-3, 0, 1, 3, 8):
        got = requantise(v, shift, fmt)
        want = [min(max(exact_round(Fraction(int(a), 1 << shift) if shift >= 0
                                    else Fraction(int(a) << -shift), mode), fmt.lo), fmt.hi)
                for a in v]
        assert got.tolist() == want, (mode, shift)


def test_vector_ops_saturate_at_the_extremes():
    fmt = Fmt(8, 3)
    assert vec_add([127, -128, 5], [1, -1, -3], fmt).tolist() == [127, -128, 2]
    assert vec_sub([-128, 127], [1, -1], fmt).tolist() == [-128, 127]
    assert vec_mul([127, -128], [127, -128], 0, fmt).tolist() == [127, 127]
    assert vec_mul([-128], [127], 0, fmt).tolist() == [-128]
    assert vec_mul([3], 5, -2, fmt).tolist() == [60]  # exact left shift
    assert vec_mul([3], 5, -60, fmt).tolist() == [127]  # no int64 overflow


def test_fma2_rounds_once(seed):
    rng = np.random.default_rng(seed)
    fmt = Fmt(18, 15)
    a, b = rng.integers(0, 1 << 16, 300), rng.integers(-(1 << 17), 1 << 17, 300)
    c, d = rng.integers(-(1 << 15), 1 << 15, 300), rng.integers(0, 1 << 16, 300)
    got = vec_fma2(a, b, c, d, 4, 16, fmt)
    for k in range(300):
        num = Fraction(int(a[k]) * int(b[k]) + (int(c[k]) * int(d[k]) << 4), 1 << 16)
        assert got[k] == min(max(exact_round(num, "half_up"), fmt.lo), fmt.hi)
    with pytest.raises(ValueError, match="align"):
        vec_fma2(a, b, c, d, -1, 16, fmt)


def test_sumsq_and_argmax():
    assert vec_sumsq([3, -4, 0]) == 25
    big = np.full(65536, -(1 << 23))
    assert vec_sumsq(big) == 65536 * (1 << 46)  # exact at the contract's limit
    assert vec_argmax([1, 7, 7, -3, 7]) == 1  # ties: the lowest index
    assert vec_argmax([-5, -5]) == 0
    with pytest.raises(TypeError, match="integers"):
        vec_sumsq([0.5])


def test_scalar_normalise_rsqrt_and_sqrt(seed):
    rng = np.random.default_rng(seed)
    assert sc_normalise(0, 17) == (0, 0) and sc_rsqrt(0, 17) == (0, 0)
    for n in [1, 2, 3, 1 << 40, (1 << 62) - 1, *rng.integers(1, 1 << 62, 200).tolist()]:
        m, e = sc_normalise(n, 17)
        assert 1 << 16 <= m < 1 << 17 and m * 2.0 ** e <= n < (m + 1) * 2.0 ** e
        for q in (8, 12, 17):
            r, s = sc_rsqrt(n, q)
            assert 1 << (q - 2) <= r <= 1 << (q - 1)
            assert abs(r * 2.0 ** -s * math.sqrt(n) - 1) <= 2.0 ** (2 - q)
    for k in (1, 2, 3, 128, 256, 1000, 2048, 65536):
        m, e = sqrt_mantissa(k, 17)
        assert 1 << 16 <= m < 1 << 17 and m == math.isqrt(k << (2 * e))


def test_rmsnorm_matches_float_and_keeps_zero(seed):
    rng = np.random.default_rng(seed)
    for k in (1, 5, 128, 1000):
        x = rng.integers(-(1 << 17), 1 << 17, k)
        w = rng.normal(1, 0.2, k)
        v, e = np.round(w * 2.0 ** 14).astype(np.int64), 14
        eps = 1e-6
        eps_q = round(eps * k * 4.0 ** 12)
        y = vec_rmsnorm(x, 12, v, e, eps_q, sqrt_mantissa(k, 17), CFG)
        xf = x * 2.0 ** -12
        want = xf / np.sqrt(np.mean(xf * xf) + eps) * (v * 2.0 ** -e)
        # half an LSB (2**-11) of z carried through |w|, half an LSB of y, and the scale's
        # relative error (rsqrt 2**-15, sqrt(K) and two truncations 2**-16 each)
        bound = 2.0 ** -12 * (1 + np.abs(v * 2.0 ** -e)) + np.abs(want) * 2.0 ** -14
        sat = np.abs(want) >= 16 - 2.0 ** -11
        assert np.all((np.abs(y * 2.0 ** -11 - want) <= bound) | sat), k
    zero = np.zeros(64, dtype=np.int64)
    for eps_q in (0, 17):
        assert not vec_rmsnorm(zero, 12, np.ones(64, np.int64), 0, eps_q,
                               sqrt_mantissa(64, 17), CFG).any()
    assert sc_rmsnorm_scale(0, 0, (1, 0), 12, 11, CFG) == (0, 0)


@pytest.mark.parametrize(("table_bits", "sig", "silu"),
                         [(10, 2.4e-5, 5.2e-4), (8, 2.0e-4, 1.25e-3), (6, 3.0e-3, 1.53e-2)])
def test_tables_within_the_stated_error(table_bits, sig, silu):
    cfg = CFG.replace(table_bits=table_bits)
    assert sigmoid_table(cfg).shape == silu_table(cfg).shape == ((1 << table_bits) + 1,)
    assert table_max_error("sigmoid", cfg) <= sig
    assert table_max_error("silu", cfg) <= silu
    assert table_max_error("silu", cfg, cfg.state_frac) <= silu
    assert np.all(np.diff(sigmoid_table(cfg)) >= 0)
    # sigmoid(-x) = 1 - sigmoid(x) holds exactly in the ROM: hardware may store half of it
    t = sigmoid_table(cfg)
    assert np.array_equal(t + t[::-1], np.full(t.shape, cfg.one))


def test_tables_at_the_extremes():
    act = CFG.act
    x = np.array([act.lo, act.lo + 1, -1, 0, 1, act.hi - 1, act.hi])
    s = vec_sigmoid(x, CFG.act_frac, CFG)
    assert s[0] == sigmoid_table(CFG)[0] and s[-1] == sigmoid_table(CFG)[-1]
    assert s[3] == CFG.one // 2 and 0 <= s.min() and s.max() <= CFG.one
    y = vec_silu(x, CFG.act_frac, CFG)
    assert y[-1] >= act.hi - 1 and y[0] == 0 and y[3] == 0  # within the 1.1 LSB bound
    # beyond the table (state inputs reach +-R only in wide formats): x itself, or 0
    short = FixedConfig(state_width=24, state_frac=15, table_range_log2=2)
    xs = np.array([-(1 << 22), -(4 << 15) - 1, (5 << 15) + 17, (1 << 22) - 1])
    assert vec_silu(xs, 15, short).tolist() == [0, 0, (5 << 11) + 1, act.hi]
    # an input coarser than the knots reads the knots themselves
    coarse = vec_sigmoid(np.arange(-64, 64), 2, CFG)
    assert coarse.tolist() == sigmoid_table(CFG)[np.arange(0, 128) << 3].tolist()


def test_rescale_matches_the_float_dequantisation(seed):
    rng = np.random.default_rng(seed)
    arith = NormBitLinear()
    for _ in range(20):
        k = int(rng.integers(2, 300))
        m = rng.integers(-(1 << 15), 1 << 15, k)
        wv, e_w = arith.norm_weight(rng.normal(1, 0.2, k))
        codes = rng.integers(-1, 2, (8, k)).astype(np.int8)
        acc, d, e = arith.device(m, wv, codes)
        s_w = float(rng.uniform(5, 30))
        c = math.sqrt(k) / (127 * s_w) * 2.0 ** -e_w
        ce = 16 - math.floor(math.log2(c))
        const = (round(c * 2.0 ** ce), ce)
        g, shift = sc_rescale(d, e, const, 11, CFG)
        got = vec_mul(acc, g, shift, Fmt(24, 11)) * 2.0 ** -11
        want = acc * weighted_dequant_factor(d, e, k, e_w) / s_w
        assert np.all(np.abs(got - want) <= 2.0 ** -12 + np.abs(want) * 2.0 ** -14)
    assert sc_rescale(0, 0, (1 << 16, 0), 11, CFG) == (0, 0)


@pytest.mark.parametrize(("changes", "field"), [
    ({"act_width": 17}, "act_width"), ({"state_frac": 10}, "state_frac"),
    ({"rounding": "up"}, "rounding"), ({"table_bits": 1}, "table_bits"),
    ({"res_frac": 18}, "res_frac"), ({"gate_frac": True}, "gate_frac"),
    ({"bitlinear": 8}, "bitlinear")])
def test_config_errors_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        CFG.replace(**changes)
    with pytest.raises(ValueError, match="unknown field"):
        CFG.replace(widths=3)


def test_op_kinds_are_the_module_functions():
    import mmfree.golden.hgrn_fixed as mod

    assert all(callable(getattr(mod, k)) for k in OP_KINDS)


def test_token_is_integer_and_close_to_the_float_reference(seed):
    """A random small model (d 64, 2 layers): every state and logit an integer inside its
    format, the device called with the act mantissas, logits close to float64's."""
    cfg = H.HGRNBitConfig(vocab_size=97, hidden_size=64, num_hidden_layers=2,
                          hidden_ratio=2)
    model = H.HGRNBitModel.random(cfg, seed % 1000)
    fm = FixedModel(model)
    calls = []

    def device(m, v, codes):
        assert m.dtype == np.int64 and m.min() >= fm.cfg.act.lo and m.max() <= fm.cfg.act.hi
        calls.append(codes.shape)
        return fm.arith.device(m, v, codes)

    ids = np.random.default_rng(seed).integers(0, 97, 6)
    st, sf = fm.init_state(), model.init_state()
    rel = []
    for tok in ids:
        r = fixed_token_step(fm, int(tok), st, device)
        for s in r.state:
            assert s.dtype == np.int64 and s.min() >= CFG.state.lo and s.max() <= CFG.state.hi
        assert r.logits.dtype == np.int64 and r.argmax == int(np.argmax(r.logits))
        assert embed_fixed(fm, int(tok)).max() <= CFG.res.hi
        lf, sf = H.run_step(model, int(tok), sf, H.float_bitlinear)
        li = fm.logits_float(r.logits)
        rel.append(math.sqrt(np.mean((li - lf) ** 2) / np.mean(lf ** 2)))
        st = r.state
    assert len(calls) == 6 * len(cfg.bitlinears())
    print(f"relative logit RMS vs float: mean {np.mean(rel):.4f}, max {max(rel):.4f}")
    assert np.mean(rel) < 0.05
    # deterministic: the same token from the same state gives the same integers
    again = fixed_token_step(fm, int(ids[0]), fm.init_state())
    first = fixed_token_step(fm, int(ids[0]), fm.init_state())
    assert np.array_equal(again.logits, first.logits)


def test_coarse_formats_change_the_logits(seed):
    """Each swept field reaches the token (a sweep row that changed nothing would lie)."""
    cfg = H.HGRNBitConfig(vocab_size=61, hidden_size=32, num_hidden_layers=2,
                          hidden_ratio=2)
    model = H.HGRNBitModel.random(cfg, 7)
    base = fixed_token_step(FixedModel(model), 5, FixedModel(model).init_state()).logits
    for changes in ({"table_bits": 4}, {"rsqrt_bits": 6}, {"res_width": 10, "res_frac": 4},
                    {"act_width": 8, "act_frac": 3, "state_frac": 5}, {"rounding": "floor"},
                    {"state_width": 13, "state_frac": 11}, {"scale_bits": 8},
                    {"bitlinear": NormQuantFormat(act_bits=4)}):
        fm = FixedModel(model, CFG.replace(**changes))
        step = fixed_token_step(fm, 5, fm.init_state())
        step = fixed_token_step(fm, 9, step.state)  # the state matters from token 2 on
        ref = fixed_token_step(FixedModel(model), 9,
                               fixed_token_step(FixedModel(model), 5,
                                                FixedModel(model).init_state()).state)
        assert not np.array_equal(step.logits, ref.logits), changes
    assert base.shape == (61,)


def test_token_without_lower_bounds_and_with_tied_embeddings():
    """``use_lower_bound`` false (every lb 0: f is the sigmoid itself) and tied lm_head."""
    cfg = H.HGRNBitConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2,
                          hidden_ratio=2, use_lower_bound=False, tie_word_embeddings=True)
    model = H.HGRNBitModel.random(cfg, 3)
    fm = FixedModel(model)
    assert all(not lb.any() for lb in fm.lb)
    assert all((oml == CFG.one).all() for oml in fm.one_minus_lb)
    r = fixed_token_step(fm, 4, fm.init_state())
    lf, _ = H.run_step(model, 4, model.init_state(), H.float_bitlinear)
    li = fm.logits_float(r.logits)
    assert math.sqrt(np.mean((li - lf) ** 2) / np.mean(lf ** 2)) < 0.05
