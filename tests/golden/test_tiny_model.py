"""Golden tiny MatMul-free LM (no simulator needed)."""

import numpy as np
import pytest

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
