"""ECP5: flip-flops moved into the registers of the MULT18X18D multipliers, in a Yosys JSON
netlist, as vendor tools do (:func:`pack_dsp_registers`)."""

from __future__ import annotations

__all__ = ["pack_dsp_registers"]

_DSP = "MULT18X18D"
_DSP_WIDTH = 18  #: A and B operand pins per MULT18X18D
_PRODUCT_PINS = 36


def _simple_ff(cell: dict) -> bool:
    """A TRELLIS_FF that is a plain D flip-flop on the rising edge: no clock enable, no
    initial value from GSR, and at most a synchronous reset to 0 (``LSR`` active high)."""
    prm, con = cell["parameters"], cell["connections"]
    sync_or_none = prm.get("SRMODE") == "LSR_OVER_CE" or con.get("LSR", ["0"]) == ["0"]
    return (cell["type"] == "TRELLIS_FF" and prm.get("CLKMUX") == "CLK"
            and prm.get("CEMUX", "").strip() == "1" and "CE" not in con
            and prm.get("LSRMUX", "LSR") == "LSR" and prm.get("REGSET") == "RESET"
            and prm.get("GSR") == "DISABLED" and sync_or_none)


def pack_dsp_registers(netlist: dict, top: str) -> dict[str, int]:
    """Move flip-flops into the registers of the ECP5 multipliers (MULT18X18D), in a Yosys
    JSON netlist, as vendor tools do (Yosys 0.70's ``synth_ecp5`` leaves every multiplier
    combinational, so each one costs a route into the DSP block, its multiply and a route
    out within one clock period).

    * Operand registers: when every non-constant bit of a multiplier's A (or B) operand
      comes from plain flip-flops (:func:`_simple_ff`) of one clock and one reset net, the
      DSP's input register for that operand takes their place: its pins are connected to the
      flip-flops' D nets. A flip-flop left without loads is removed; one that also feeds
      other logic stays (its copy in the DSP is the same register).
    * Product registers: when every product bit that is used drives exactly one plain
      flip-flop, and those flip-flops feed only the data inputs of other flip-flops (so the
      route out of the DSP block lands in a register, not in an adder; those may have an
      enable or a reset, as the BitLinear front end's ``scale`` register that takes
      ``D = Â r``), the DSP's output register replaces them.

    The function is unchanged: the DSP registers load every cycle like the flip-flops they
    replace, reset synchronously to 0 on the same net (``RESETMODE`` ``SYNC``) and start at 0.
    Returns the number of operand registers and product registers placed in DSP blocks.
    """
    cells = netlist["modules"][top]["cells"]
    port_bits = {b for port in netlist["modules"][top]["ports"].values() for b in port["bits"]}
    driver: dict[object, tuple[str, str]] = {}
    loads: dict[object, list[tuple[str, str]]] = {}
    for name, cell in cells.items():
        for pin, bits in cell["connections"].items():
            for b in bits:
                if isinstance(b, str):
                    continue  # a constant
                if cell["port_directions"].get(pin) == "output":
                    driver[b] = (name, pin)
                else:
                    loads.setdefault(b, []).append((name, pin))

    def ff_of(bit: object, pin: str) -> str | None:
        """The plain flip-flop whose pin ``pin`` (``Q``) drives ``bit``, if any."""
        name, out = driver.get(bit, ("", ""))
        return name if out == pin and _simple_ff(cells[name]) else None

    def ff_domain(name: str) -> tuple[object, object]:
        con = cells[name]["connections"]
        return con["CLK"][0], con.get("LSR", ["0"])[0]

    counts = {"operand": 0, "product": 0}
    removed: set[str] = set()
    for name in sorted(n for n, c in cells.items() if c["type"] == _DSP):
        dsp = cells[name]
        con, prm, dirs = dsp["connections"], dsp["parameters"], dsp["port_directions"]
        if any(k.startswith("REG_") for k in prm) or "CLK0" in con:
            continue  # already registered by someone else: leave it alone
        clock = None
        for operand, rst in (("A", "RST0"), ("B", "RST1")):
            bits = [con[f"{operand}{i}"][0] for i in range(_DSP_WIDTH)]
            ffs = {b: ff_of(b, "Q") for b in bits if not isinstance(b, str)}
            if not ffs or None in ffs.values():
                continue
            domains = {ff_domain(ff) for ff in ffs.values()}
            if len(domains) != 1 or (clock is not None and next(iter(domains))[0] != clock):
                continue
            clock, reset = next(iter(domains))
            for i, b in enumerate(bits):
                if b in ffs:
                    d_bit = cells[ffs[b]]["connections"]["DI"][0]
                    con[f"{operand}{i}"] = [d_bit]
                    loads[b].remove((name, f"{operand}{i}"))
                    loads.setdefault(d_bit, []).append((name, f"{operand}{i}"))
            prm.update({f"REG_INPUT{operand}_CLK": "CLK0", f"REG_INPUT{operand}_CE": "CE0",
                        f"REG_INPUT{operand}_RST": rst})
            con[rst], dirs[rst] = [reset], "input"
            counts["operand"] += 1
            for ff in set(ffs.values()):
                if not loads.get(cells[ff]["connections"]["Q"][0]):
                    removed.add(ff)
        used = [(i, con[f"P{i}"][0]) for i in range(_PRODUCT_PINS)
                if f"P{i}" in con and loads.get(con[f"P{i}"][0])]
        outs = []
        for _, b in used:
            sinks = loads[b]
            ff = sinks[0][0] if len(sinks) == 1 and sinks[0][1] == "DI" else None
            if ff is None or b in port_bits or not _simple_ff(cells[ff]):
                break
            q = cells[ff]["connections"]["Q"][0]
            if q in port_bits or not all(p == "DI" and cells[c]["type"] == "TRELLIS_FF"
                                         for c, p in loads.get(q, [])):
                break
            outs.append(ff)
        domains = {ff_domain(ff) for ff in outs}
        if used and len(outs) == len(used) and len(domains) == 1 and (
                clock is None or next(iter(domains))[0] == clock):
            clock, reset = next(iter(domains))
            for (i, b), ff in zip(used, outs, strict=True):
                q = cells[ff]["connections"]["Q"][0]
                con[f"P{i}"] = [q]
                driver[q] = (name, f"P{i}")
                loads[b] = []
                removed.add(ff)
            prm.update({"REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": "CE0",
                        "REG_OUTPUT_RST": "RST2"})
            con["RST2"], dirs["RST2"] = [reset], "input"
            counts["product"] += 1
        if clock is not None:
            prm.update({"GSR": "DISABLED", "RESETMODE": "SYNC"})
            con["CLK0"], con["CE0"] = [clock], ["1"]
            dirs["CLK0"] = dirs["CE0"] = "input"
            for rst in ("RST0", "RST1", "RST2"):
                if rst not in con:
                    con[rst], dirs[rst] = ["0"], "input"
    for ff in removed:
        del cells[ff]
    return counts
