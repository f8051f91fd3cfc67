"""The engine's per-token program: compiled from a config, interpreted over the golden
contract's ops, it gives fixed_token_step's logits, argmax and states bit for bit."""

import itertools

import numpy as np
import pytest

from mmfree.golden import hgrn_fixed as fx
from mmfree.golden.hgrn_bit import HGRNBitConfig, HGRNBitModel
from mmfree.spec import BitLinearUnitSpec, VectorUnitSpec
from mmfree.spec.engine import EngineCycles, EngineOp, compile_token, program_cycles
from mmfree.spec.program import Interpreter, element_width, load_image, weight_order

SMALL = HGRNBitConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                      intermediate_size=64)
# lower bounds off, tied embeddings, the released MLP formula (I 256 for d 96), 3 layers
OTHER = HGRNBitConfig(vocab_size=61, hidden_size=96, num_hidden_layers=3,
                      use_lower_bound=False, tie_word_embeddings=True)


@pytest.mark.parametrize("config, lanes, seed", [(SMALL, 8, 3), (OTHER, 16, 11),
                                                 (SMALL, 1, 5)])
def test_interpreted_program_is_the_fixed_point_token(config, lanes, seed):
    fm = fx.FixedModel(HGRNBitModel.random(config, seed))
    prog = compile_token(config, fm.cfg, lanes)
    it = Interpreter(prog, fm)
    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    for sequence in range(2):
        state = fm.init_state()
        it.reset()
        for token in rng.integers(0, config.vocab_size, 3):
            want = fx.fixed_token_step(fm, int(token), state)
            got = it.step(int(token))
            assert np.array_equal(got.logits, want.logits), (sequence, token)
            assert got.argmax == want.argmax
            for a, b in zip(got.state, want.state, strict=True):
                assert np.array_equal(a, b)
            state = want.state
    assert len(it.trace) == 6 * config.num_hidden_layers + 1


def test_program_shape_and_memory_map():
    prog = compile_token(SMALL, lanes=8)
    ops = [i.op for i in prog]
    assert ops.count(EngineOp.BITLINEAR) == 6 * 2 + 1 and ops[-1] == EngineOp.END
    assert ops.count(EngineOp.SUMSQ) == 3 * 2 + 1 and ops.count(EngineOp.FMA2) == 2
    for addr, _ in prog.memory.regions.values():
        assert addr % 8 == 0
    spans = sorted(prog.memory.regions.values())
    for (a0, n0), (a1, _) in itertools.pairwise(spans):
        assert a0 + n0 <= a1  # no overlap
    names = [n for n, _ in weight_order(prog, fx.FixedModel(HGRNBitModel.random(SMALL, 1)))]
    assert names == [n for n, _, _ in SMALL.bitlinears()]
    assert element_width(prog) == 18  # res and state formats; |acc| <= 127 * 64 fits 15
    assert "FMA2" in prog.listing()


def test_cycle_formula_is_the_sum_of_its_instructions():
    prog = compile_token(SMALL, lanes=8)
    vec, bl = VectorUnitSpec(lanes=8, width=24, max_dim=128), BitLinearUnitSpec(lanes=8,
                                                                               max_dim=64)
    model = EngineCycles(vec, bl)
    got = program_cycles(prog, vec, bl)
    assert got["total"] == sum(model.instr(i, prog.fixed) for i in prog)
    want_bl = sum(model.ISSUE + model.OPERAND + bl.cycles(m, k) + model.DONE
                  for _, m, k in SMALL.bitlinears())
    assert got["by_op"]["BITLINEAR"] == want_bl
    # a 32-element SUMSQ on 8 lanes: 4 groups, the reduction's latency, the sequencer's
    assert model.instr(prog.instrs[0], prog.fixed) == (model.ISSUE + model.OPERAND + 4
                                                       + vec.reduce_latency + model.DONE)


def test_bad_configurations_name_the_parameter():
    with pytest.raises(ValueError, match="lanes 48 does not divide the MLP width 64"):
        compile_token(SMALL, lanes=48)
    with pytest.raises(ValueError, match="rounding 'floor'"):
        compile_token(SMALL, fx.FixedConfig(rounding="floor"))
    fm = fx.FixedModel(HGRNBitModel.random(OTHER, 1))
    with pytest.raises(ValueError, match="config is not the one"):
        load_image(compile_token(SMALL), fm)


def test_cycle_model_gives_the_engine_formula():
    from mmfree.model.cycles import engine_token_cycles
    from mmfree.spec.engine import EngineSpec

    prog = compile_token(SMALL, lanes=8)
    spec = EngineSpec.for_program(prog)
    assert engine_token_cycles(SMALL, 8) == {**program_cycles(prog, spec.vector(),
                                                              spec.bitlinear()), "exact": True}
    # the engine's BitLinear terms are the BitLinear unit's spec, plus the sequencer's
    total = engine_token_cycles(SMALL, 8)["by_op"]["BITLINEAR"]
    assert total == sum(spec.bitlinear().cycles(m, k) + EngineCycles.ISSUE
                        + EngineCycles.OPERAND + EngineCycles.DONE
                        for _, m, k in SMALL.bitlinears())
