"""Toggle counting from a VCD of a real simulation (Icarus, our Verilog-2005 VCD dump)."""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mmfree.sim import cosim
from mmfree.sim.activity import count_toggles

from ..conftest import require_simulator


class _Counter(wiring.Component):
    """A free-running 6-bit counter; ``en`` gates it."""

    en: In(1)
    count: Out(6)

    def elaborate(self, platform):
        m = Module()
        c = Signal(6)
        with m.If(self.en):
            m.d.sync += c.eq(c + 1)
        m.d.comb += self.count.eq(c)
        return m


def test_counter_toggles_match_popcount(tmp_path):
    """The counter register flips popcount(i ^ (i+1 mod 64)) bits on each increment; the
    count of its flips from the VCD must equal that sum exactly."""
    require_simulator("icarus")
    cycles = 100
    res = cosim.run(_Counter(), "counter", "icarus", "mmfree.sim.tb.counter",
                    config={"cycles": cycles}, seed=1, waves="vcd", root=tmp_path)
    assert res.failed == 0
    vcd = res.run_dir / "waves.vcd"
    reg = count_toggles(vcd, scope="counter", names={"count"})
    want = sum(bin((i % 64) ^ ((i + 1) % 64)).count("1") for i in range(cycles))
    assert reg.bits == 6 and reg.toggles == want
    everything = count_toggles(vcd, scope="counter")
    assert everything.toggles > reg.toggles and everything.cycles >= cycles
    assert 0 < everything.alpha < 1
