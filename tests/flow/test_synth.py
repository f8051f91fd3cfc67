# amaranth: UnusedElaboratable=no
"""Synthesis checks with Yosys for ECP5: the MAC array's multipliers map to DSP blocks."""

import pytest

from mmfree.flow.generate import to_verilog
from mmfree.flow.synth import synth_stats
from mmfree.hdl import build
from mmfree.hdl.tensor_core import TensorCore
from mmfree.spec import TernaryCoreSpec


@pytest.mark.parametrize("width", [8, 4])
def test_tensor_core_uses_one_dsp_per_mac(width):
    stats = synth_stats(to_verilog(TensorCore(width=width), "tcore"), "tcore", "ecp5")
    print(f"int{width} tensor core on ECP5: {stats}")
    assert stats.get("MULT18X18D") == 64, stats
    assert stats.get("LUT4", 0) > 0 and stats.get("TRELLIS_FF", 0) > 0


def test_ternary_core_infers_no_multiplier():
    stats = synth_stats(to_verilog(build(TernaryCoreSpec(lanes=16)), "tern"), "tern", "ecp5")
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


def test_flow_ecp5_reports_fmax_and_caches(tmp_path, monkeypatch):
    from mmfree.flow.synth import run_flow
    monkeypatch.setenv("MMFREE_CACHE", str(tmp_path))
    first = run_flow(lambda: build(TernaryCoreSpec(lanes=16)), "tern16", "ecp5-25k", 100)
    print(f"16-lane ternary core, ECP5-25 speed 6: Fmax {first.fmax_mhz:.1f} MHz")
    assert first.fits and not first.cached and first.fmax_mhz > 20
    assert first.utilization["TRELLIS_FF"][0] > 0 and first.critical_path
    again = run_flow(lambda: build(TernaryCoreSpec(lanes=16)), "tern16", "ecp5-25k", 100)
    assert again.cached and again.fmax_mhz == first.fmax_mhz


def test_flow_says_plainly_when_a_unit_does_not_fit(tmp_path, monkeypatch):
    from mmfree.flow.synth import run_flow
    monkeypatch.setenv("MMFREE_CACHE", str(tmp_path))
    r = run_flow(lambda: TensorCore(width=8), "tcore", "ecp5-25k", 100)
    assert not r.fits and r.problem == "does not fit: needs 64 MULT18X18D, the part has 28"


def test_flow_ice40_through_the_pin_wrapper_and_xilinx_counts(tmp_path, monkeypatch):
    from mmfree.flow.synth import run_flow
    monkeypatch.setenv("MMFREE_CACHE", str(tmp_path))
    ice = run_flow(lambda: build(TernaryCoreSpec(lanes=8)), "tern8", "ice40-up5k", 30)
    assert ice.fits and ice.fmax_mhz > 0 and ice.utilization["SB_IO"][0] <= 4
    xil = run_flow(lambda: build(TernaryCoreSpec(lanes=8)), "tern8", "xilinx-7", 100)
    assert xil.fmax_mhz is None and xil.cells.get("FDRE", 0) > 0


def test_registered_ports_put_a_flip_flop_on_every_port_bit():
    from mmfree.flow.generate import ports
    from mmfree.flow.ooc import RegisteredPorts
    from mmfree.hdl import TernaryCore
    bits = sum(p.width for p in ports(TernaryCore(lanes=4))[2:])  # all but clk and rst
    alone = synth_stats(to_verilog(build(TernaryCoreSpec(lanes=4)), "t"), "t", "ecp5")
    wrapped = synth_stats(to_verilog(RegisteredPorts(build(TernaryCoreSpec(lanes=4))), "w"), "w",
                          "ecp5")
    assert wrapped["TRELLIS_FF"] == alone["TRELLIS_FF"] + bits


def test_flow_with_registered_ports_is_cached_apart(tmp_path, monkeypatch):
    from mmfree.flow.synth import run_flow
    monkeypatch.setenv("MMFREE_CACHE", str(tmp_path))
    plain = run_flow(lambda: build(TernaryCoreSpec(lanes=4)), "tern4", "ecp5-25k", 100)
    boxed = run_flow(lambda: build(TernaryCoreSpec(lanes=4)), "tern4", "ecp5-25k", 100,
                     registered_ports=True)
    assert not boxed.cached and boxed.registered_ports and boxed.fits and boxed.fmax_mhz
    assert boxed.utilization["TRELLIS_FF"][0] > plain.utilization["TRELLIS_FF"][0]
    split = boxed.path_split()
    assert split["routing"] > 0 and abs(sum(split.values()) - 1000 / boxed.fmax_mhz) < 0.05
    with pytest.raises(ValueError, match="ECP5"):
        run_flow(lambda: build(TernaryCoreSpec(lanes=4)), "tern4", "ice40-up5k", 30,
                 registered_ports=True)


def _check_netlist(netlist, top):
    """Every net has at most one driver, and every cell input that is not a constant has a
    driver (a cell output or a top-level input)."""
    mod = netlist["modules"][top]
    drivers = {}
    for port in mod["ports"].values():
        if port["direction"] == "input":
            for b in port["bits"]:
                drivers[b] = "port"
    for name, cell in mod["cells"].items():
        for pin, bits in cell["connections"].items():
            if cell["port_directions"][pin] == "output":
                for b in bits:
                    if not isinstance(b, str):
                        assert b not in drivers, f"net {b} driven twice ({name}.{pin})"
                        drivers[b] = name
    for name, cell in mod["cells"].items():
        for pin, bits in cell["connections"].items():
            if cell["port_directions"][pin] == "input":
                for b in bits:
                    assert isinstance(b, str) or b in drivers, f"{name}.{pin} undriven"


@pytest.mark.parametrize("dsp_pipeline,ports,operands,products", [
    (False, False, 0, 0),   # operands from ports; products feed the adder tree: unchanged
    (True, False, 0, 64),   # the first product register of each multiplier moves in
    (True, True, 128, 64),  # and, behind registered ports, both operand registers too
])
def test_dsp_register_packing(dsp_pipeline, ports, operands, products):
    """pack_dsp_registers on the int4 array: which registers move into the 64 MULT18X18D,
    what replaces them, and that the netlist stays well formed."""
    from mmfree.flow.ooc import RegisteredPorts
    from mmfree.flow.synth import pack_dsp_registers, synth_netlist
    core = TensorCore(width=4, dsp_pipeline=dsp_pipeline)
    netlist = synth_netlist(to_verilog(RegisteredPorts(core) if ports else core, "top"), "top")
    cells = netlist["modules"]["top"]["cells"]
    ffs = sum(c["type"] == "TRELLIS_FF" for c in cells.values())
    assert pack_dsp_registers(netlist, "top") == {"operand": operands, "product": products}
    _check_netlist(netlist, "top")
    dsps = [c for c in cells.values() if c["type"] == "MULT18X18D"]
    assert len(dsps) == 64
    product_bits = 2 * 4  # a signed 4 x 4 product
    for dsp in dsps:
        prm, con = dsp["parameters"], dsp["connections"]
        assert (prm.get("REG_OUTPUT_CLK") == "CLK0") == bool(products)
        assert (prm.get("REG_INPUTA_CLK") == "CLK0") == bool(operands)
        assert (prm.get("REG_INPUTB_CLK") == "CLK0") == bool(operands)
        if products or operands:
            assert con["CLK0"] != ["0"] and con["CE0"] == ["1"]
            assert prm["RESETMODE"] == "SYNC" and prm["GSR"] == "DISABLED"
    removed = ffs - sum(c["type"] == "TRELLIS_FF" for c in cells.values())
    # each product register was product_bits flip-flops; the port registers of the A and B
    # tiles (16 x 4 bits each) feed only multipliers, so they go once every multiplier that
    # reads them has its own copy
    assert removed == products * product_bits + (2 * 16 * 4 if operands else 0)
