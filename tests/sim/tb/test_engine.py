"""Co-simulation of the whole-token engine: tokens of small random checkpoints, logits and
argmax bit-identical to the fixed-point model, cycles = the program's formula; a reset in
the middle of a token."""

import pytest

from mmfree.golden.hgrn_bit import HGRNBitConfig
from mmfree.spec import EngineSpec
from mmfree.spec.engine import compile_token

from . import cosim_report

# (hidden, layers, MLP width, vocab, lanes). The default run: the smallest on Icarus
# (about 100 s on the shared machine). Under -m slow: the smallest on Verilator (about 6 min,
# most of it the build), and 3 random checkpoints of each of 2 sizes on Verilator.
SMALL = (16, 1, 32, 40, 4)
SIZES = {"d32": (32, 2, 64, 100, 8), "d64": (64, 2, 256, 300, 16)}
CASES = [pytest.param("icarus", SMALL, 1, id="icarus-small"),
         pytest.param("verilator", SMALL, 1, id="verilator-small", marks=pytest.mark.slow)]
CASES += [pytest.param("verilator", dims, seed, id=f"verilator-{name}-seed{seed}",
                       marks=pytest.mark.slow)
          for name, dims in SIZES.items() for seed in (1, 2, 3)]


@pytest.mark.cosim
@pytest.mark.parametrize("sim, dims, seed_model", CASES)
def test_engine_runs_whole_tokens(sim, dims, seed_model, seed):
    d, layers, inter, vocab, lanes = dims
    cfg = HGRNBitConfig(vocab_size=vocab, hidden_size=d, num_hidden_layers=layers,
                        intermediate_size=inter)
    spec = EngineSpec.for_program(compile_token(cfg, lanes=lanes))
    model = {"config": {k: v for k, v in cfg.to_dict().items() if k != "model_type"},
             "seed": seed_model, "tokens": 2, "sequences": 2}
    r = cosim_report(spec, sim, seed, extra={"model": model})
    print(f"cycles per token: measured {r.get('cycles')}, predicted "
          f"{r.get('predicted_cycles')}; wall s per token {r.get('wall_s')}")
    assert r["mismatches"] == 0 and r["tokens"] == 8, r
    assert r["cycle_checks"] == 4 and r["cycle_mismatches"] == 0, r


# The weights over AXI (cores > 0): (simulator, engine parameters, channel latency and rate).
# Default run: 2 cores on Icarus, and 2 cores sharing 1 channel through the AR arbiter (about
# 40 s each on the shared machine). Under -m slow: 3 cores of packed weights (M not a multiple
# of the cores) and 4 cores on a 32-bit bus whose channels give 7 beats in 10 (cycles an
# estimate: within 2 %), on Icarus; 2 cores on Verilator; 4 cores on 2 such channels.
AXI_CASES = [
    pytest.param("icarus", {"cores": 2}, 8, [1, 1], id="icarus-2c"),
    pytest.param("icarus", {"cores": 2, "channels": 1}, 8, [1, 1], id="icarus-2c-1ch"),
    pytest.param("icarus", {"cores": 3, "packed": True}, 30, [1, 1], id="icarus-3c-packed",
                 marks=pytest.mark.slow),
    pytest.param("icarus", {"cores": 4, "data_width": 32}, 20, [7, 10],
                 id="icarus-4c-32bit-ddr4", marks=pytest.mark.slow),
    pytest.param("verilator", {"cores": 2}, 30, [1, 1], id="verilator-2c",
                 marks=pytest.mark.slow),
    pytest.param("icarus", {"cores": 4, "channels": 2, "data_width": 32}, 20, [7, 10],
                 id="icarus-4c-2ch-32bit-ddr4", marks=pytest.mark.slow),
]


@pytest.mark.cosim
@pytest.mark.parametrize("sim, params, latency, rate", AXI_CASES)
def test_engine_with_axi_weights(sim, params, latency, rate, seed):
    """Whole tokens with every BitLinear's weights read by C cores from cocotbext-axi
    memories: bit-identical to the fixed-point model, cycles per token = program_cycles
    (within 2 % where a channel's rate limits the fetch and the formula is an estimate)."""
    d, layers, inter, vocab, lanes = SMALL
    cfg = HGRNBitConfig(vocab_size=vocab, hidden_size=d, num_hidden_layers=layers,
                        intermediate_size=inter)
    program = compile_token(cfg, lanes=lanes)
    spec = EngineSpec.for_program(program, **params)
    model = {"config": {k: v for k, v in cfg.to_dict().items() if k != "model_type"},
             "seed": 1, "tokens": 2, "sequences": 2}
    r = cosim_report(spec, sim, seed, extra={"model": model, "mem_latency": latency,
                                             "mem_rate": rate})
    exact = spec.cycles_exact(program, latency, rate[0] / rate[1])
    print(f"cycles per token (measured, predicted): {r.get('cycles')}; exact: {exact}")
    assert r["mismatches"] == 0 and r["tokens"] == 8, r
    assert r["cycle_checks"] == 4 and r["cycle_mismatches"] == 0, r
    if exact:
        assert all(c[1] == c[2] for c in r["cycles"]), r["cycles"]
    else:
        assert all(abs(c[1] - c[2]) <= 0.02 * c[2] for c in r["cycles"]), r["cycles"]


@pytest.mark.slow
@pytest.mark.cosim
def test_engine_370m_layer_with_axi_weights_on_verilator(seed):
    """Issue 14 item 7: one layer of the 370M dimensions (d 1024, I 2816; a 256-token
    vocabulary keeps lm_head small), random weights, on 2 cores x 16 lanes reading 64-bit
    AXI channels of latency 30: one token bit-identical to the fixed-point model, its cycles
    equal to program_cycles (exact: the channels keep the cores fed)."""
    import time
    cfg = HGRNBitConfig(vocab_size=256, hidden_size=1024, num_hidden_layers=1,
                        intermediate_size=2816)
    program = compile_token(cfg, lanes=16)
    spec = EngineSpec.for_program(program, cores=2)
    assert spec.cycles_exact(program, 30, 1.0)
    model = {"config": {k: v for k, v in cfg.to_dict().items() if k != "model_type"},
             "seed": 1, "tokens": 1, "sequences": 1}
    t0 = time.monotonic()
    r = cosim_report(spec, "verilator", seed, testcase="test_tokens",
                     extra={"model": model, "mem_latency": 30, "mem_rate": [1, 1]})
    print(f"370M layer: cycles (measured, predicted) {r.get('cycles')}; wall s per token "
          f"{r.get('wall_s')}; {time.monotonic() - t0:.0f} s with the build")
    assert r["mismatches"] == 0 and r["tokens"] == 1, r
    assert r["cycle_checks"] == 1 and r["cycle_mismatches"] == 0, r


# The default run: one round on Icarus (about 30 s on the shared machine); under -m slow
# three rounds on Verilator.
RESET_CASES = [pytest.param("icarus", 1, id="icarus-small"),
               pytest.param("verilator", 3, id="verilator-small", marks=pytest.mark.slow)]


@pytest.mark.cosim
@pytest.mark.parametrize("sim, rounds", RESET_CASES)
def test_engine_reset_mid_token(sim, rounds, seed):
    """A reset at a random cycle of a running token (``rounds`` times): the host zeroes the
    states only, and the next tokens are bit-identical with cycles = program_cycles."""
    d, layers, inter, vocab, lanes = SMALL
    cfg = HGRNBitConfig(vocab_size=vocab, hidden_size=d, num_hidden_layers=layers,
                        intermediate_size=inter)
    spec = EngineSpec.for_program(compile_token(cfg, lanes=lanes))
    model = {"config": {k: v for k, v in cfg.to_dict().items() if k != "model_type"},
             "seed": 1, "reset_mid_token": True, "rounds": rounds}
    r = cosim_report(spec, sim, seed, extra={"model": model}, testcase="test_reset_mid_token")
    print(f"seed {seed}: resets at cycles {r.get('reset_at')} of {r.get('predicted_cycles')}")
    assert r["resets"] == rounds and len(r["reset_at"]) == rounds, r
    # per round: one token before the reset, two after it, each checked with its cycles
    assert r["mismatches"] == 0 and r["tokens"] == 3 * rounds, r
    assert r["cycle_checks"] == 3 * rounds and r["cycle_mismatches"] == 0, r
