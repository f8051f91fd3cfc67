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


def test_channels_validated_and_cores_mapped_to_slots():
    with pytest.raises(ValueError, match="channels 3 must divide cores 4"):
        MultiCoreBitLinearSpec(cores=4, channels=3).validate()
    with pytest.raises(ValueError, match="channels must be at most cores"):
        MultiCoreBitLinearSpec(cores=2, channels=4).validate()
    with pytest.raises(ValueError, match="channels 1 needs cores"):
        EngineSpec(channels=1).validate()
    one = MultiCoreBitLinearSpec(cores=4).validate()
    same = MultiCoreBitLinearSpec(cores=4, channels=4).validate()
    assert (one.ports, one.sharing, one.port_id_width, one.slot_shift) == (4, 1, 1, 32)
    assert same.top_name() == one.top_name() and same.core_address(3, 64) == 64
    spec = MultiCoreBitLinearSpec(cores=6, channels=2, addr_width=20).validate()
    assert (spec.ports, spec.sharing, spec.port_id_width, spec.slot_shift) == (2, 3, 3, 18)
    assert [(spec.channel_of(c), spec.slot_of(c)) for c in range(6)] == [
        (0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
    assert spec.core_address(5, 0x40) == (2 << 18) | 0x40 and spec.top_name().endswith("_ch2")
    # the slot is 2**18 bytes: images beyond it are refused naming addr_width
    with pytest.raises(ValueError, match="addr_width 20"):
        matrix_addresses([(6 * 4096, 256), (6, 256)], spec)
    assert EngineSpec(cores=4, channels=2).validate().ports == 2
    assert "_ch2" in EngineSpec(cores=4, channels=2).top_name()
    assert EngineSpec(cores=4, channels=4).top_name() == EngineSpec(cores=4).top_name()


def test_shared_cycles_bounds():
    """Two cores on one channel: the later core's first burst waits behind the other's
    (compute-bound: + b1 / r and the arbiter's AR stage over the own-channel formula), or
    the channel carries both shares back to back (memory-bound: about twice the fetch);
    with 64-bit beats (two groups each) and four cores the channel binds and its last
    burst drains at the core's one group per cycle."""
    own = MultiCoreBitLinearSpec(cores=2, lanes=16, max_dim=256).validate()
    shared = MultiCoreBitLinearSpec(cores=2, lanes=16, max_dim=256, channels=1).validate()
    f = own.product().fetcher()
    m, k = 64, 256  # R = 32 rows of G = 16 groups: 512 groups, 256 beats per core
    assert not shared.exact(m, k, 30, 1.0) and own.exact(m, k, 30, 1.0)
    # compute-bound: the second core starts one 16-beat burst and the AR stage later; it is
    # core 1, the last row's, so the merge adds nothing after it (own channels: + 1)
    assert shared.cycles(m, k, 30, 1.0) == own.cycles(m, k, 30 + 1 + 16, 1.0) - 1
    # memory-bound (32-bit port: one group per beat): the channel's 2 * 512 beats
    own32 = MultiCoreBitLinearSpec(cores=2, lanes=16, max_dim=256, data_width=32).validate()
    sh32 = MultiCoreBitLinearSpec(cores=2, lanes=16, max_dim=256, data_width=32,
                                  channels=1).validate()
    g = 16
    front = sh32.vector_cycles(g)
    by_channel = f.AR_START + 31 + 2 * 512 - 1 + f.FIFO_LATENCY + 1 + 1 + own32.latency
    # core 1 is served last and computes the last row: the merge adds nothing after it
    assert sh32.cycles(m, k, 30, 1.0) == front + by_channel
    assert sh32.cycles(m, k, 30, 1.0) > own32.cycles(m, k, 30, 1.0) + 400

    four = MultiCoreBitLinearSpec(cores=4, lanes=16, max_dim=256, channels=1).validate()
    # 4 cores x 16 rows x 16 groups: 128 beats each, 512 on the channel at one per cycle;
    # core 3's last 16-beat burst starts 496 beats after the first and its 32 groups leave
    # at one per cycle; then the command register and the core's latency
    by_burst = f.AR_START + 31 + 512 - 16 + f.FIFO_LATENCY + 31 + 1 + 1 + four.latency
    assert four.cycles(m, k, 30, 1.0) == four.vector_cycles(g) + by_burst


def test_axi_port_parameters_are_the_fetchers():
    """The AXI port's parameters are declared once (``axi_port_param``): the multi-core
    unit, the fetched product and the fetcher give the same defaults, help and limits, so
    a FIFO shorter than a burst is refused by the multi-core spec itself, naming it."""
    from mmfree.spec import WeightFetcherSpec
    from mmfree.spec.weight_fetcher import AXI_PORT_PARAMS

    for name in AXI_PORT_PARAMS:
        ref = WeightFetcherSpec.describe(name)
        assert MultiCoreBitLinearSpec.describe(name) == ref
        assert FetchedProductSpec.describe(name) == ref
    with pytest.raises(ValueError, match=r"fifo_depth must be in 32\.\.4096, got 16"):
        MultiCoreBitLinearSpec(max_burst=32, fifo_depth=16).validate()
