"""Synthesis checks with Yosys for ECP5: the MAC array's multipliers map to DSP blocks."""

import pytest

from mmfree.hdl.generate import to_verilog
from mmfree.hdl.synth import synth_stats
from mmfree.hdl.tensor_core import TensorCore


@pytest.mark.parametrize("width", [8, 4])
def test_tensor_core_uses_one_dsp_per_mac(width):
    stats = synth_stats(to_verilog(TensorCore(width=width), "tcore"), "tcore", "ecp5")
    print(f"int{width} tensor core on ECP5: {stats}")
    assert stats.get("MULT18X18D") == 64, stats
    assert stats.get("LUT4", 0) > 0 and stats.get("TRELLIS_FF", 0) > 0


def test_ternary_core_infers_no_multiplier():
    from mmfree.hdl.generate import ternary_core
    stats = synth_stats(to_verilog(ternary_core(lanes=16), "tern"), "tern", "ecp5")
    print(f"16-lane ternary core on ECP5: {stats}")
    assert "MULT18X18D" not in stats, stats


@pytest.mark.parametrize("mode", ["expand", "select"])
def test_sparse_decode_resources(mode):
    from mmfree.hdl.sparse_decode import SparseDecode
    stats = synth_stats(to_verilog(SparseDecode(mode=mode), "sdec"), "sdec", "ecp5")
    print(f"int8 sparse decode ({mode}) on ECP5: {stats}")
    assert "MULT18X18D" not in stats and stats.get("LUT4", 0) > 0


def test_sparse_tensor_core_keeps_64_multipliers():
    from mmfree.hdl.sparse_decode import SparseTensorCore
    stats = synth_stats(to_verilog(SparseTensorCore(), "stc"), "stc", "ecp5")
    print(f"int8 sparse tensor core on ECP5: {stats}")
    assert stats.get("MULT18X18D") == 64, stats
