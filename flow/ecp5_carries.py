"""ECP5 carry chains before place-and-route: no feed cells, LUTs folded into the chains.

:func:`pack_ecp5_carries` rewrites a Yosys ``synth_ecp5`` JSON netlist with its function
unchanged (``tests/flow/test_synth.py`` proves it by SAT); :func:`mmfree.flow.synth.run_flow`
applies it to every ECP5 design before nextpnr.
"""

from __future__ import annotations

import itertools

__all__ = ["pack_ecp5_carries"]

_LUT_PINS = ("A", "B", "C", "D")


def _init(value: object) -> int:
    """A LUT INIT parameter of a Yosys JSON netlist (binary string, MSB first) as an int."""
    return int(value, 2) if isinstance(value, str) else int(value)


def _bit(init: int, a: int, b: int, c: int, d: int) -> int:
    return (init >> (a | b << 1 | c << 2 | d << 3)) & 1


def _fold_lut_into_half(half: tuple[str, ...], cell: dict, lut: dict) -> bool:
    """Fold the LUT4 ``lut`` that drives input B of one half of the CCU2C ``cell`` (pins
    ``half`` = A, B, C, D names of that half, then its INIT and INJECT1 parameter names) into
    that half's own LUT, if the half's C and D inputs are constants and the LUT has at most
    three signal inputs. Returns whether it did (the cell is then rewired)."""
    pa, pb, pc, pd, pinit, pinject = half
    con, prm = cell["connections"], cell["parameters"]
    if prm.get(pinject, "NO") != "NO":
        return False
    c_val, d_val = con[pc][0], con[pd][0]
    if not (isinstance(c_val, str) and isinstance(d_val, str)):
        return False
    lut_in = [lut["connections"][p][0] for p in _LUT_PINS]
    nets = list(dict.fromkeys(b for b in lut_in if not isinstance(b, str)))
    if len(nets) > 3 or any(b not in ("0", "1") for b in lut_in if isinstance(b, str)):
        return False
    a_net = con[pa][0]
    if isinstance(a_net, str) and a_net not in ("0", "1"):
        return False
    old, lut_init = _init(prm[pinit]), _init(lut["parameters"]["INIT"])
    variables = list(dict.fromkeys([*([a_net] if not isinstance(a_net, str) else []), *nets]))
    for order in itertools.permutations(nets):
        pins = [*order, *["1"] * (3 - len(order))]  # new B, C, D; spare inputs tied high
        need: dict[int, int] = {}
        ok = True
        for values in itertools.product((0, 1), repeat=len(variables)):
            val = dict(zip(variables, values, strict=True))
            get = lambda b, val=val: int(b) if isinstance(b, str) else val[b]  # noqa: E731
            a = get(a_net)
            b_old = _bit(lut_init, *(get(b) for b in lut_in))
            prop = _bit(old, a, b_old, int(c_val), int(d_val))
            gen = _bit(old, a, b_old, 0, 0)
            nb, nc, nd = (get(b) for b in pins)
            for entry, value in [((a | nb << 1 | nc << 2 | nd << 3), prop),
                                 *([((a | nb << 1), gen)] if prop == 0 else [])]:
                if need.setdefault(entry, value) != value:
                    ok = False
            if not ok:
                break
        if ok:
            prm[pinit] = format(sum(v << e for e, v in need.items()), "016b")
            con[pb], con[pc], con[pd] = ([b] for b in pins)
            return True
    return False


def pack_ecp5_carries(netlist: dict, top: str, fold_luts: bool = True,
                      reset_inverters: bool = True) -> dict[str, int]:
    """Tidy the carry chains (CCU2C) of a ``synth_ecp5`` netlist before nextpnr, with the
    function unchanged, in three steps:

    * **No feed-out cells.** Yosys leaves the carry out of every chain's last cell
      connected to an unused wire, and nextpnr then spends a whole CCU2C to route it out.
      Unused carry outs are disconnected.
    * **No feed-in cells for a constant carry in.** A chain starts from a constant carry in,
      which nextpnr also brings in through an extra CCU2C. When the first cell's low sum
      output is unused (an adder whose lowest bit only makes a carry, as in
      :func:`mmfree.hdl._arith.signed_sum`), its low half is turned into a carry generator:
      its LUT becomes 0 where the constant C and D inputs select it (so the carry in no
      longer propagates) and its carry-generate entries become the carry out that the
      constant carry in would have produced; the carry in is disconnected.
    * **LUTs folded into the chain.** Yosys puts the logic in front of an adder input (the
      sign select of the ternary core's adders, ``b ^ negate``, and its zero mask) into
      LUT4s of their own, although each CCU2C half has a 4-input LUT of which the adder
      uses two (C and D hold constants). A LUT4 with at most three signal inputs that drives
      only B inputs of CCU2C halves is folded into each of those halves: its inputs take
      the half's B, C and D pins, and the half's INIT is recomputed from the truth tables,
      so that the propagate output and the carry generate (which the hardware reads from
      the A/B corner of the same INIT, see ``CCU2C`` in the Lattice cell library) both
      match the old pair exactly; an input order for which they cannot both match is not
      used. The LUT4 is then removed.
    * **Inverted synchronous resets.** A flip-flop whose reset is a LUT4 inverting one
      signal uses the slice's reset inverter (``LSRMUX`` = ``INV``) instead.

    ``fold_luts`` and ``reset_inverters`` switch the last two steps (to measure each one).
    Returns the counts of each change. Every step is local and checked by truth table;
    ``tests/flow/test_synth.py`` proves the netlist before and after equivalent with Yosys.
    """
    mod = netlist["modules"][top]
    cells = mod["cells"]
    port_bits = {b for port in mod["ports"].values() for b in port["bits"]}
    loads: dict[object, list[tuple[str, str]]] = {}
    driver: dict[object, tuple[str, str]] = {}
    for name, cell in cells.items():
        for pin, bits in cell["connections"].items():
            for b in bits:
                if isinstance(b, str):
                    continue
                if cell["port_directions"][pin] == "output":
                    driver[b] = (name, pin)
                else:
                    loads.setdefault(b, []).append((name, pin))

    def unused(bit: object) -> bool:
        return isinstance(bit, str) or (bit not in port_bits and not loads.get(bit))

    def relink(cell: str, pin: str, new: object) -> None:
        """Connect ``pin`` of ``cell`` to ``new``, keeping the load lists right."""
        old = cells[cell]["connections"][pin][0]
        if not isinstance(old, str):
            loads[old].remove((cell, pin))
        if not isinstance(new, str):
            loads.setdefault(new, []).append((cell, pin))
        cells[cell]["connections"][pin] = [new]

    counts = {"feed_out": 0, "feed_in": 0, "luts_folded": 0, "reset_inverters": 0}
    emptied: set[str] = set()
    halves = (("A0", "B0", "C0", "D0", "INIT0", "INJECT1_0"),
              ("A1", "B1", "C1", "D1", "INIT1", "INJECT1_1"))
    chains = sorted(n for n, c in cells.items() if c["type"] == "CCU2C")
    for name in chains:
        con, prm = cells[name]["connections"], cells[name]["parameters"]
        if "COUT" in con and unused(con["COUT"][0]) and con["COUT"] != ["x"]:
            con["COUT"] = ["x"]
            counts["feed_out"] += 1
        cin, c0, d0 = con["CIN"][0], con["C0"][0], con["D0"][0]
        if (cin in ("0", "1") and unused(con["S0"][0]) and c0 in ("0", "1") and d0 == "1"
                and prm.get("INJECT1_0", "NO") == "NO"):
            old, new = _init(prm["INIT0"]), _init(prm["INIT0"])
            for a, b in itertools.product((0, 1), repeat=2):
                prop_entry = a | b << 1 | int(c0) << 2 | 8
                carry = int(cin) if old >> prop_entry & 1 else old >> (a | b << 1) & 1
                new &= ~(1 << prop_entry)
                new = new & ~(1 << (a | b << 1)) | carry << (a | b << 1)
            prm["INIT0"] = format(new, "016b")
            con["CIN"] = ["x"]
            counts["feed_in"] += 1
    for name in chains if fold_luts else ():
        cell = cells[name]
        for half in halves:
            b = cell["connections"][half[1]][0]
            if isinstance(b, str) or b in port_bits or driver.get(b, ("", ""))[1] != "Z":
                continue
            lut_name = driver[b][0]
            lut = cells.get(lut_name)
            if lut is None or lut["type"] != "LUT4" or any(
                    cells[c]["type"] != "CCU2C" or p not in ("B0", "B1") for c, p in loads[b]):
                continue
            before = [cell["connections"][p][0] for p in half[1:4]]
            if _fold_lut_into_half(half, cell, lut):
                after = [cell["connections"][p][0] for p in half[1:4]]
                for pin, old, new in zip(half[1:4], before, after, strict=True):
                    cell["connections"][pin] = [old]
                    relink(name, pin, new)
                counts["luts_folded"] += 1
                emptied.add(lut_name)
    for name in sorted(n for n, c in cells.items()
                       if c["type"] == "TRELLIS_FF" and reset_inverters):
        ff = cells[name]
        lsr = ff["connections"].get("LSR", ["0"])[0]
        if isinstance(lsr, str) or ff["parameters"].get("LSRMUX", "LSR") != "LSR" \
                or driver.get(lsr, ("", ""))[1] != "Z":
            continue
        lut = cells.get(driver[lsr][0])
        if lut is None or lut["type"] != "LUT4":
            continue
        ins = [lut["connections"][p][0] for p in _LUT_PINS]
        nets = {b for b in ins if not isinstance(b, str)}
        if len(nets) != 1 or any(b not in ("0", "1") for b in ins if isinstance(b, str)):
            continue
        net = nets.pop()
        init = _init(lut["parameters"]["INIT"])
        if [_bit(init, *(v if b == net else int(b) for b in ins)) for v in (0, 1)] != [1, 0]:
            continue
        relink(name, "LSR", net)
        ff["parameters"]["LSRMUX"] = "INV"
        counts["reset_inverters"] += 1
        emptied.add(driver[lsr][0])
    for lut_name in sorted(emptied):  # LUTs left without loads
        if lut_name in cells and unused(cells[lut_name]["connections"]["Z"][0]):
            for pin in _LUT_PINS:
                relink(lut_name, pin, "x")
            del cells[lut_name]
    return counts


