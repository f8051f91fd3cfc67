"""ECP5: the flip-flops behind a block RAM's read data moved into the DP16KD's own output
register, in a Yosys JSON netlist, as vendor tools do (:func:`pack_bram_output_registers`)."""

from __future__ import annotations

__all__ = ["pack_bram_output_registers"]

_BRAM = "DP16KD"
_DATA_PINS = 18  #: DOA0..17 and DOB0..17


def _plain_ff(cell: dict) -> bool:
    """A TRELLIS_FF that loads every rising edge with neither enable nor reset (a
    ``reset_less`` register in Amaranth)."""
    prm, con = cell["parameters"], cell["connections"]
    return (cell["type"] == "TRELLIS_FF" and prm.get("CLKMUX") == "CLK"
            and prm.get("CEMUX", "").strip() == "1" and "CE" not in con
            and con.get("LSR", ["0"]) == ["0"] and prm.get("GSR") == "DISABLED"
            and prm.get("REGSET", "RESET") == "RESET")


def pack_bram_output_registers(netlist: dict, top: str) -> dict[str, int]:
    """Move the register behind each ECP5 block RAM's read data into the DP16KD's output
    register (``REGMODE`` ``OUTREG``), in a Yosys JSON netlist.

    Yosys 0.70's ``synth_ecp5`` maps every memory to a DP16KD without its output register,
    so the read data leaves the block its clock-to-output time after the edge (5.8 ns at
    speed 6 in nextpnr's timing database) and a register-to-register path through it has
    only what remains of the period for the route out. With ``OUTREG`` the block's own
    register holds the data one cycle later, and the route out starts from it.

    A block is rewritten when every data output it uses (``DOA*`` and ``DOB*``, which in
    the 36-bit pseudo-dual-port mode are both read data) drives exactly one load, the data
    input of a flip-flop that loads every cycle with neither enable nor reset
    (:func:`_plain_ff`) clocked by the block's clock net (one clock for both ports), and
    the block's resets are tied low. Those
    flip-flops are removed and their output nets are driven by the block's pins instead;
    both ``REGMODE`` parameters become ``OUTREG`` (as the 36-bit mode programs them) and
    the output clock enables are tied high, so the output register loads every cycle like
    the flip-flops it replaces. The function is
    unchanged: the data a read of edge ``t`` returns is in the register after edge
    ``t + 1`` either way (a read that is disabled, ``CE`` low, holds the block's latch, and
    the register reloads it). A block with anything else behind it (a read-during-write
    bypass, an output multiplexer between cascaded blocks, a register with an enable or a
    reset) is left as it is.

    Returns the number of blocks rewritten and of flip-flops removed.
    """
    mod = netlist["modules"][top]
    cells = mod["cells"]
    port_bits = {b for port in mod["ports"].values() for b in port["bits"]}
    loads: dict[object, list[tuple[str, str]]] = {}
    for name, cell in cells.items():
        for pin, bits in cell["connections"].items():
            for b in bits:
                if not isinstance(b, str) and cell["port_directions"].get(pin) != "output":
                    loads.setdefault(b, []).append((name, pin))
    counts = {"blocks": 0, "flip_flops": 0}
    for name in sorted(n for n, c in cells.items() if c["type"] == _BRAM):
        bram = cells[name]
        prm, con = bram["parameters"], bram["connections"]
        if any(prm.get(f"REGMODE_{p}", "NOREG") != "NOREG" for p in "AB") or any(
                prm.get(f"CLK{p}MUX", f"CLK{p}") != f"CLK{p}" for p in "AB"):
            continue
        clock = con.get("CLKB", ["0"])[0]
        if isinstance(clock, str) or con.get("CLKA", ["0"])[0] not in (clock, "0") or any(
                con.get(rst, ["0"]) != ["0"] for rst in ("RSTA", "RSTB")):
            continue  # two clocks, or a live reset (it would clear the output register)
        moves: list[tuple[str, str]] = []  # (data pin, flip-flop)
        ok = True
        for pin in (f"DO{p}{i}" for p in "AB" for i in range(_DATA_PINS)):
            bit = con.get(pin, ["x"])[0]
            if isinstance(bit, str) or not loads.get(bit):
                continue  # unused
            sinks = loads[bit]
            ff = sinks[0][0] if len(sinks) == 1 and sinks[0][1] == "DI" else None
            if (ff is None or bit in port_bits or not _plain_ff(cells[ff])
                    or cells[ff]["connections"]["CLK"][0] != clock):
                ok = False
                break
            moves.append((pin, ff))
        if not ok or not moves:
            continue
        for pin, ff in moves:
            con[pin] = list(cells[ff]["connections"]["Q"])
            del cells[ff]
        prm.update({"REGMODE_A": "OUTREG", "REGMODE_B": "OUTREG"})
        con.update({"OCEA": ["1"], "OCEB": ["1"]})
        counts["blocks"] += 1
        counts["flip_flops"] += len(moves)
    return counts
