"""The multi-core BitLinear unit's spec, the host's memory map of the matrices, and the
engine's parameters for it (no simulator: the co-simulation is tests/sim/tb/test_engine.py)."""

import numpy as np
import pytest

from mmfree.golden.hgrn_bit import HGRNBitConfig, HGRNBitModel
from mmfree.golden.hgrn_fixed import FixedModel
from mmfree.golden.weight_image import image_bytes, interleave_rows
from mmfree.spec import EngineSpec, FetchedProductSpec, MultiCoreBitLinearSpec
from mmfree.spec.engine import EngineCycles, EngineOp, compile_token, program_cycles
from mmfree.spec.multicore_bitlinear import IMAGE_ALIGN, matrix_addresses
from mmfree.spec.program import Interpreter

CFG = HGRNBitConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, intermediate_size=32)


def test_interleaved_rows_cover_the_matrix_in_row_order():
    rng = np.random.default_rng(1)
    w = rng.integers(-1, 2, size=(7, 5))
    shares = interleave_rows(w, 3)
    assert [s.shape for s in shares] == [(3, 5)] * 3
    merged = np.stack(shares, axis=1).reshape(9, 5)  # round-robin: row r from core r % 3
    assert np.array_equal(merged[:7], w) and not merged[7:].any()
    with pytest.raises(ValueError, match="cores"):
        interleave_rows(w, 0)


def test_cycles_compose_front_end_product_and_merge():
    spec = MultiCoreBitLinearSpec(cores=3, lanes=4, max_dim=64).validate()
    fp = FetchedProductSpec(cores=3, lanes=4, max_dim=64, act_width=8).validate()
    for m, k, lat in ((7, 16, 8), (9, 64, 30), (1, 12, 2)):
        g = -(-k // 4)
        want = spec.vector_cycles(g) + fp.cycles(m, k, lat, 1.0) + (m - 1) % 3
        assert spec.cycles(m, k, lat, 1.0) == want
    # a 10th row: one more row per core (G = 4 groups at one per cycle), and the last row
    # is core 0's (offset 0) instead of core 2's (offset 2)
    assert spec.cycles(10, 16) - spec.cycles(9, 16) == 4 - 2
    assert spec.exact(64, 64, 30, 1.0) and not spec.exact(64, 64, 30, 0.7)


def test_validation_names_the_parameter():
    with pytest.raises(ValueError, match="cores"):
        MultiCoreBitLinearSpec(cores=0).validate()
    with pytest.raises(ValueError, match="data_width"):
        MultiCoreBitLinearSpec(lanes=12, data_width=64).validate()
    spec = MultiCoreBitLinearSpec(cores=4, lanes=16).validate()
    with pytest.raises(ValueError, match="cores 4 exceed the 3 lane groups"):
        spec.check_shape(8, 48)
    spec.check_shape(8, 64)


def test_matrix_addresses_are_aligned_and_do_not_overlap():
    spec = MultiCoreBitLinearSpec(cores=3, lanes=16, packed=True, max_dim=1024).validate()
    shapes = [(100, 70), (5, 1024), (64, 64)]
    addrs = matrix_addresses(shapes, spec, base=10)
    assert all(a % IMAGE_ALIGN == 0 for a in addrs) and addrs[0] == IMAGE_ALIGN
    for (m, k), a, nxt in zip(shapes, addrs, addrs[1:], strict=False):
        share = image_bytes(-(-m // 3), -(-k // 16), 16, True)
        assert a + share <= nxt


def test_engine_with_cores_binds_each_bitlinear_to_its_image():
    program = compile_token(CFG, lanes=4)
    stream = EngineSpec.for_program(program)
    axi = EngineSpec.for_program(program, cores=2, data_width=32)
    assert isinstance(axi.bitlinear(), MultiCoreBitLinearSpec)
    assert not isinstance(stream.bitlinear(), MultiCoreBitLinearSpec)
    # cores 0 keeps today's engine: the same instruction word and top name
    assert "waddr" not in dict((n, b) for n, b, _ in stream.instr_fields())
    assert stream.top_name() in axi.top_name() and stream.top_name() != axi.top_name()
    image = Interpreter(program, FixedModel(HGRNBitModel.random(CFG, 1))).image
    words = axi.encode(program, image)
    addrs = axi.matrix_addresses(program)
    bls = [(w, ins) for w, ins in zip(words, program, strict=True)
           if ins.op == EngineOp.BITLINEAR]
    assert [w["waddr"] for w, _ in bls] == [addrs[ins.imm] for _, ins in bls]
    assert [w["rows_pc"] for w, _ in bls] == [-(-ins.m // 2) for _, ins in bls]
    # the token's cycles: the stream unit's BitLinears replaced by the cores'
    t_axi = program_cycles(program, axi.vector(), axi.bitlinear(), 20, 1.0)["by_op"]
    t_str = program_cycles(program, stream.vector(), stream.bitlinear())["by_op"]
    assert {k: v for k, v in t_axi.items() if k != "BITLINEAR"} == \
        {k: v for k, v in t_str.items() if k != "BITLINEAR"}
    overhead = EngineCycles.ISSUE + EngineCycles.OPERAND + EngineCycles.DONE
    assert t_axi["BITLINEAR"] == sum(
        overhead + int(axi.bitlinear().cycles(ins.m, ins.n, 20, 1.0)) for _, ins in bls)
    with pytest.raises(ValueError, match="cores"):
        EngineSpec.for_program(program, cores=17)
