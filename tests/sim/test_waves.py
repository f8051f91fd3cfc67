"""Waveforms: ``waves.fst`` on either simulator (Verilator's: tests/cli/test_stock_machine.py)."""

from mmfree.sim import cosim

from ..conftest import require_simulator
from ..flow.test_toolchain import _Time0


def is_fst(path) -> bool:
    """An FST file starts with its header block (block type 0, then the section length)."""
    data = path.read_bytes()[:9]
    return len(data) == 9 and data[0] == 0 and int.from_bytes(data[1:9], "big") > 8


def test_icarus_writes_fst_waves(tmp_path):
    require_simulator("icarus")
    res = cosim.run(_Time0(), "time0", "icarus", "mmfree.sim.tb.settle",
                    config={"expect_settled": True}, seed=1, waves=True, root=tmp_path)
    assert res.failed == 0
    waves = res.run_dir / cosim.WAVES
    assert cosim.WAVES == "waves.fst" and waves.exists() and is_fst(waves)
    assert not (res.run_dir / "waves.vcd").exists()
