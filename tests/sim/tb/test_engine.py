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
