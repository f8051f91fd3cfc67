"""The presets' projections come from the validated formulas (issue 14 item 5).

Each preset's ternary products are ``FetchedProductSpec.cycles`` with the preset's cores,
lanes, port width, latency, bursts in flight and channel bandwidth (the multi-core AXI
product RTL within 1.3 %), its element-wise work the whole-token engine's per-instruction
cycles (measured exactly). The expected values below are recomputed here from the presets'
fields and the specs, independently of :mod:`mmfree.model.system`.
"""

import math
from dataclasses import replace

import numpy as np
import pytest

from mmfree.golden.hgrn_bit import HGRNBitConfig
from mmfree.model.config import PRESETS, Q, Workload, builtin_model
from mmfree.model.cycles import engine_elementwise_cycles, ternary_matvec_cycles
from mmfree.model.system import project
from mmfree.spec import FetchedProductSpec

SIZES = ("370M", "1.3B", "2.7B")


def _port(hw):
    """Latency (cycles) and beats per cycle of a core's port, from the preset's fields."""
    clock = hw.clock_mhz.value * 1e6
    latency = max(2, math.ceil(hw.mem_latency_ns.value * 1e-9 * clock - 1e-9))
    channel = hw.dram_gbps_per_channel.value * 1e9 * hw.dram_efficiency.value
    share = min(channel, channel * hw.dram_channels / hw.ternary_cores)
    return latency, min(1.0, share / (hw.port_bits / 8 * clock))


def _token_cycles(size, hw):
    """Cycles of one decode token: every BitLinear of the released block as a fetched
    product, plus the engine program's element-wise instructions."""
    m = builtin_model(size)
    cfg = HGRNBitConfig(vocab_size=m.vocab, hidden_size=m.d, num_hidden_layers=m.layers,
                        intermediate_size=m.inter)
    latency, rate = _port(hw)
    spec = FetchedProductSpec(cores=hw.ternary_cores, lanes=hw.lanes,
                              packed=hw.weight_bits < 2, data_width=hw.port_bits,
                              max_burst=hw.max_burst, outstanding=hw.outstanding,
                              fifo_depth=hw.fifo_depth,
                              tree_levels_per_stage=hw.tree_levels_per_stage, max_dim=65536)
    spec.validate()
    products = sum(float(spec.cycles(rows, k, latency, rate))
                   for _, rows, k in cfg.bitlinears())
    lanes = int(hw.elementwise_per_cycle.value)
    return products + engine_elementwise_cycles(cfg, lanes)["total"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_the_validated_formula(name):
    hw = PRESETS[name]
    assert hw.product_model == "fetched"
    for size in SIZES:
        p = project(builtin_model(size), hw, Workload(1, 16, 16))
        want = _token_cycles(size, hw)
        assert np.isclose(float(p.decode.compute_cycles), want, rtol=1e-12), (name, size)
        # the decode time is those cycles at the clock: the other DRAM traffic (state,
        # embedding row) hides behind them on every preset
        assert np.isclose(p.tokens_per_s, hw.clock_mhz.value * 1e6 / want, rtol=1e-12)


def test_the_engine_program_is_linear_in_the_layers():
    # the projection takes the program's per-layer and end cycles; the whole program is
    # their sum (the lower bounds of layer 0 cost what the others cost)
    for size in SIZES:
        m = builtin_model(size)
        cfg = HGRNBitConfig(vocab_size=m.vocab, hidden_size=m.d, num_hidden_layers=m.layers,
                            intermediate_size=m.inter)
        e = engine_elementwise_cycles(cfg, 16)
        assert e["total"] == e["end"] + m.layers * e["per_layer"]
        assert e["instructions"] == 42 * m.layers + 9


def test_memory_bound_ports_set_the_kv260_rate():
    """The KV260's four 128-bit ports share one DDR4 channel: 0.84 beats per cycle each,
    so its products run at the memory's rate, not the lanes'; the projection must say so
    and land within 2 % of the weights' bytes over the channel's bandwidth."""
    hw = PRESETS["kv260"]
    p = project(builtin_model("1.3B"), hw, Workload(1, 16, 16))
    assert p.decode.binding == "DRAM"
    ternary = [op for op in p.decode.ops if op.unit == "ternary"]
    assert all(bool(op.memory_bound) for op in ternary)
    m = builtin_model("1.3B")
    bytes_per_token = m.linear_weights * hw.weight_bits / 8
    channel_s = bytes_per_token / hw.dram_bytes_per_s
    product_s = sum(float(op.cycles) * (m.layers if op.per_layer else 1)
                    for op in ternary) / (hw.clock_mhz.value * 1e6)
    assert 1.0 <= product_s / channel_s < 1.02
    # the analytical roofline of the same hardware is not the validated number
    lanes_s = sum(float(ternary_matvec_cycles(-(-op.m // hw.ternary_cores), op.k, hw.lanes, True))
                  * (m.layers if op.per_layer else 1) for op in ternary) / (
        hw.clock_mhz.value * 1e6)
    assert product_s > 1.1 * lanes_s


def test_port_parameters_reach_the_projection():
    """One burst in flight and a long latency starve the d5005's ports: the products slow
    down exactly as FetchedProductSpec.cycles says, and the binding becomes DRAM."""
    hw = PRESETS["d5005"]
    slow = replace(hw, outstanding=1, mem_latency_ns=Q(1000, "assumed", "test"))
    fast_p = project(builtin_model("370M"), hw, Workload(1, 16, 16))
    slow_p = project(builtin_model("370M"), slow, Workload(1, 16, 16))
    assert fast_p.decode.binding == "compute" and slow_p.decode.binding == "DRAM"
    assert np.isclose(float(slow_p.decode.compute_cycles), _token_cycles("370M", slow))
    assert slow_p.tokens_per_s < 0.5 * fast_p.tokens_per_s
