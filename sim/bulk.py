"""The bulk co-simulation harness, host side: a generated Verilog wrapper around a unit.

Per-beat cocotb drivers (:mod:`mmfree.sim.kit.streams`) run Python on every clock edge, which
caps a co-simulation at tens of thousands of cycles per second. The bulk harness moves the
stream handshakes into Verilog so the simulator runs at its own speed and Python touches only
whole *segments* (a batch of beats with its stall and reset settings):

* :func:`wrapper_verilog` derives a Verilog-2005 wrapper from the unit's stream signatures
  (not hand-written per unit). For every **input stream** it holds a beat memory
  (``$readmemh`` of ``bulk_<port>.hex`` in the run folder, whole, read again at the start
  of a segment when the testbench changed it), plays beats ``base .. base+count-1`` of it,
  and drives ``valid`` bubbles from a seeded xorshift32 generator (a presented beat is held
  until it transfers).
  For every **output stream** a seeded generator drives ``ready`` and every transfer is
  written with its cycle stamp to ``bulk_<port>.out`` (``$fwrite``, flushed at the end of
  each segment). Plain ports of the unit (``error`` ...) pass through. A **reset schedule**
  per segment (reset before the sources start, and/or at a given cycle of the segment, with
  the inputs still offered during reset) keeps reset mid-stream covered, and the wrapper
  counts reset-contract violations (an input accepted in reset, an output valid in the
  drain after a reset). ``seg_done`` takes the segment's number when it ends.
* :func:`run_unit` builds the wrapped unit (stimulus files are inputs of a run, not of the
  build: a new seed or stimulus reuses the compiled model) and runs a bulk testbench. The
  testbench side is :class:`mmfree.sim.kit.bulk.BulkHarness`.

Memory depths are build parameters (:func:`depths_for`): long streams are cut into segments
that fit, so a 10^6-beat regression needs no 10^6-deep memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import Shape
from amaranth.lib import wiring

from ..flow.generate import ports
from ..spec import UnitSpec
from . import cosim

__all__ = ["CLOCKS", "COVERAGE_ARGS", "DEFAULT_DEPTH", "StreamPort", "run_unit",
           "stream_ports", "wrapper_name", "wrapper_verilog"]

DEFAULT_DEPTH = 4096  #: beats held per input stream unless a testbench asks for more
COVERAGE_ARGS = ("--coverage-line", "--coverage-toggle")  #: Verilator build arguments
CLOCKS = ("hdl", "gpi")  #: where the wrapper's clock comes from (see :func:`wrapper_verilog`)


@dataclass(frozen=True)
class StreamPort:
    """One ``lib.stream`` port of a unit, as the wrapper sees it."""

    name: str
    is_input: bool  #: the unit consumes it (the wrapper is its source)
    width: int  #: payload bits


def stream_ports(component: wiring.Component
                 ) -> tuple[list[StreamPort], list[tuple[str, str, int]]]:
    """The unit's stream ports (in signature order) and its other ports as
    ``(name, "input"|"output", width)`` (clock and reset excluded)."""
    streams: list[StreamPort] = []
    plain: list[tuple[str, str, int]] = []
    for name, member in component.signature.members.items():
        if member.is_signature and {"valid", "ready", "payload"} <= set(member.signature.members):
            width = Shape.cast(member.signature.members["payload"].shape).width
            streams.append(StreamPort(name, member.flow == wiring.In, width))
    names = {s.name for s in streams}
    for p in ports(component):
        if p.name in ("clk", "rst") or p.name.split("__")[0] in names:
            continue
        plain.append((p.name, p.direction, p.width))
    return streams, plain


def wrapper_name(unit_top: str) -> str:
    return f"{unit_top}_bulk"


def _public(decl: str) -> str:
    """A port declaration marked public for Verilator's VPI (a comment to other tools)."""
    head, sep, tail = decl.partition(";")
    return f"{head} /*verilator public_flat_rw*/{sep}{tail}"


def _addr_bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


def _gen_lines(k: int) -> list[str]:
    """Generator ``k`` (xorshift32 13/17/5, one step a cycle) into the blocking temporary
    ``r`` and its register; its four bytes decide the stalls of up to four streams."""
    salt = (0x9E3779B9 * (k + 1)) & 0xFFFFFFFF
    return [f"    r = g{k} ^ (g{k} << 13);", "    r = r ^ (r >> 17);", "    r = r ^ (r << 5);",
            f"    g{k} <= start ? (seed ^ 32'h{salt:08x}) | 32'd1 : r;"]


def wrapper_verilog(component: wiring.Component, unit_top: str,
                    depths: dict[str, int] | None = None, clock: str = "hdl") -> str:
    """Verilog-2005 text of the bulk wrapper around module ``unit_top`` (``component``'s
    generated Verilog). ``depths`` gives the beat memory depth of input streams (default
    :data:`DEFAULT_DEPTH`). ``clock``: ``"hdl"`` generates the clock in the wrapper (a
    ``#``-delay loop, period :data:`~mmfree.sim.cosim.CLOCK_PERIOD_NS`; ``clk`` is then an
    output the testbench may watch), ``"gpi"`` takes it from cocotb's C-level clock.

    All sequential logic is one ``always`` block and the stall decisions are registered:
    Icarus pays per process woken and per continuous operator, so the wrapper costs it
    little next to the unit."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, not {clock!r}")
    streams, plain = stream_ports(component)
    depths = depths or {}
    sources = [s for s in streams if s.is_input]
    sinks = [s for s in streams if not s.is_input]
    top = wrapper_name(unit_top)
    port_names = ["clk", "seg", "seg_done", "seed", "pre_reset", "rst_at", "rst_len", "drain",
                  "max_cycles", "timed_out", "violations", "cycle", "unit_rst"]
    half = cosim.CLOCK_PERIOD_NS // 2
    decl = [
        "  input clk;" if clock == "gpi" else "  output reg clk;",
        "  input [31:0] seg;           // a new value starts a segment",
        "  output reg [31:0] seg_done; // the last segment that ended",
        "  input [31:0] seed;          // of the stall generators, taken at the start",
        "  input [15:0] pre_reset;     // reset cycles before the sources start",
        "  input [31:0] rst_at;        // reset this many cycles after the sources start (0: no)",
        "  input [15:0] rst_len;       // cycles of that reset",
        "  input [15:0] drain;         // cycles the sinks stay watched at the end",
        "  input [31:0] max_cycles;    // segment timeout",
        "  output reg timed_out;",
        "  output reg [31:0] violations;",
        "  output reg [63:0] cycle;",
        "  output unit_rst;",
    ]
    nets: list[str] = []
    seq: list[str] = []
    inst = [".clk(clk)", ".rst(unit_rst)"]
    for name, direction, width in plain:
        port_names.append(name)
        rng = f"[{width - 1}:0] " if width > 1 else ""
        decl.append(f"  {direction} {rng}{name};")
        inst.append(f".{name}({name})")
    gens = -(-len(streams) // 4)
    for k in range(gens):
        nets.append(f"  reg [31:0] g{k};")
    for k in range(gens):
        seq += _gen_lines(k)
        for j, st in enumerate(streams[4 * k:4 * k + 4]):
            seq.append(f"    {st.name}_go <= r[{8 * j + 7}:{8 * j}] >= {st.name}_stall;")
    for s in sources:
        d = depths.get(s.name, DEFAULT_DEPTH)
        a = _addr_bits(d)
        z = f"{a + 1}'d0"
        one = f"{a + 1}'d1"
        n = s.name
        port_names += [f"{n}_base", f"{n}_count", f"{n}_load", f"{n}_stall", f"{n}_first",
                       f"{n}_sent"]
        decl += [
            f"  input [{a}:0] {n}_base;   // first beat of the segment",
            f"  input [{a}:0] {n}_count;  // beats of the segment",
            f"  input {n}_load;  // read the memory again from bulk_{n}.hex at the start",
            f"  input [7:0] {n}_stall;    // P(bubble) = stall / 256",
            f"  output reg [63:0] {n}_first;  // cycle of the segment's first transfer",
            f"  output reg [{a}:0] {n}_sent;",
        ]
        nets += [
            f"  // source {n}: {d} beats of {s.width} bits",
            f"  reg [{s.width - 1}:0] {n}_mem [0:{d - 1}];",
            f"  reg [{a}:0] {n}_idx, {n}_left;",
            f"  reg {n}_held, {n}_go, {n}_have;",
            f"  wire {n}_ready;",
            f"  wire {n}_valid = src_on & {n}_have & ({n}_held | {n}_go);",
        ]
        seq += [
            "    if (start) begin",
            f"      if ({n}_load) $readmemh(\"bulk_{n}.hex\", {n}_mem);",
            f"      {n}_idx <= {n}_base;",
            f"      {n}_left <= {n}_count;",
            f"      {n}_have <= {n}_count != {z};",
            f"      {n}_held <= 1'b0;",
            f"      {n}_first <= {{64{{1'b1}}}};",
            f"      {n}_sent <= {z};",
            f"    end else if ({n}_valid & {n}_ready & unit_rst) begin",
            "      violations <= violations + 32'd1;  // accepted in reset",
            f"    end else if ({n}_valid & {n}_ready) begin",
            f"      {n}_idx <= {n}_idx + {one};",
            f"      {n}_left <= {n}_left - {one};",
            f"      {n}_have <= {n}_left != {one};",
            f"      {n}_sent <= {n}_sent + {one};",
            f"      {n}_held <= 1'b0;",
            f"      if ({n}_first == {{64{{1'b1}}}}) {n}_first <= cycle;",
            "    end else begin",
            f"      {n}_held <= {n}_valid;",
            "    end",
        ]
        inst += [f".{n}__valid({n}_valid)", f".{n}__ready({n}_ready)",
                 f".{n}__payload({n}_mem[{n}_idx[{a - 1}:0]])"]
    for s in sinks:
        n = s.name
        port_names += [f"{n}_expect", f"{n}_stall", f"{n}_got"]
        decl += [
            f"  input [31:0] {n}_expect;  // transfers that end the segment",
            f"  input [7:0] {n}_stall;    // P(not ready) = stall / 256",
            f"  output reg [31:0] {n}_got;",
        ]
        nets += [
            f"  // sink {n}: {s.width} bits, every transfer to bulk_{n}.out",
            f"  integer {n}_fd;",
            f"  initial {n}_fd = $fopen(\"bulk_{n}.out\", \"w\");",
            f"  reg {n}_go;",
            f"  wire {n}_valid;",
            f"  wire [{s.width - 1}:0] {n}_payload;",
        ]
        seq += [
            f"    if (start) {n}_got <= 32'd0;",
            f"    else if ({n}_valid & {n}_go) {n}_got <= {n}_got + 32'd1;",
            f"    if ({n}_valid & {n}_go) $fwrite({n}_fd, \"%h %h\\n\", cycle, {n}_payload);",
            f"    if (finish) $fflush({n}_fd);",
            f"    if ((state == POST) & {n}_valid) violations <= violations + 32'd1;  // leak",
        ]
        inst += [f".{n}__valid({n}_valid)", f".{n}__ready({n}_go)",
                 f".{n}__payload({n}_payload)"]
    src_done = " & ".join(f"~{s.name}_have" for s in sources) or "1'b1"
    snk_done = " & ".join(f"({s.name}_got >= {s.name}_expect)" for s in sinks) or "1'b1"
    control = [
        "  // ---- segment control: IDLE -> PRE (reset) -> RUN [-> RST -> POST] | DRAIN -> IDLE",
        "  localparam IDLE = 3'd0, PRE = 3'd1, RUN = 3'd2, RST = 3'd3, POST = 3'd4, DRAIN = 3'd5;",
        "  reg [2:0] state;",
        "  reg [31:0] count;",
        "  reg [31:0] r;  // generator temporary",
        *([] if clock == "gpi" else ["  initial clk = 1'b0;", f"  always #{half} clk = ~clk;"]),
        "  initial begin",
        "    state = IDLE; seg_done = 32'd0; cycle = 64'd0; timed_out = 1'b0;",
        "    violations = 32'd0; count = 32'd0;",
        "  end",
        "  wire start = (state == IDLE) & (seg != seg_done);",
        "  wire src_on = (state == RUN) | (state == RST);",
        "  assign unit_rst = (state == PRE) | (state == RST);",
        "  wire finish = ((state == DRAIN) | (state == POST)) & (count == 32'd0);",
    ]
    fsm = [
        "    cycle <= cycle + 64'd1;",
        "    case (state)",
        "      IDLE: if (start) begin",
        "        timed_out <= 1'b0;",
        "        state <= (pre_reset != 16'd0) ? PRE : RUN;",
        "        count <= (pre_reset != 16'd0) ? {16'd0, pre_reset} : 32'd0;",
        "      end",
        "      PRE: begin",
        "        count <= count - 32'd1;",
        "        if (count == 32'd1) begin state <= RUN; count <= 32'd0; end",
        "      end",
        "      RUN: begin",
        "        count <= count + 32'd1;",
        "        if ((rst_at != 32'd0) & (count + 32'd1 == rst_at)) begin",
        "          state <= RST; count <= {16'd0, rst_len};",
        f"        end else if (({src_done}) & ({snk_done})) begin",
        "          state <= DRAIN; count <= {16'd0, drain};",
        "        end else if (count == max_cycles) begin",
        "          timed_out <= 1'b1; state <= DRAIN; count <= 32'd0;",
        "        end",
        "      end",
        "      RST: begin",
        "        count <= count - 32'd1;",
        "        if (count <= 32'd1) begin state <= POST; count <= {16'd0, drain}; end",
        "      end",
        "      POST, DRAIN: begin",
        "        if (count == 32'd0) begin state <= IDLE; seg_done <= seg; end",
        "        else count <= count - 32'd1;",
        "      end",
        "      default: state <= IDLE;",
        "    endcase",
    ]
    decl = [_public(line) for line in decl]
    lines = [
        "// Bulk co-simulation wrapper generated by mmfree.sim.bulk: stream sources replay",
        f"// beat memories, sinks capture every transfer with its cycle stamp. Unit: {unit_top}.",
        "`default_nettype none",
        f"module {top} ({', '.join(port_names)});",
        *decl,
        *control,
        *nets,
        "  always @(posedge clk) begin",
        *fsm,
        *seq,
        "  end",
        f"  {unit_top} unit ({', '.join(inst)});",
        "endmodule",
        "`default_nettype wire",
        "",
    ]
    return "\n".join(lines)


def run_unit(spec: UnitSpec, simulator: str, test_module: str, *, seed: int,
             depths: dict[str, int] | None = None, extra: dict | None = None,
             testcase: str | None = None, waves: bool = False,
             build_args: list[str] | None = None, clock: str = "hdl",
             coverage: Path | None = None,
             progress: Callable[[dict], None] | None = None) -> cosim.CosimResult:
    """Build the unit ``spec`` describes inside its bulk wrapper and run the bulk testbench
    ``test_module`` on ``simulator``. The testbench gets the unit's parameters, ``depths``
    (as ``bulk_depths``) and ``extra`` as its configuration. ``build_args`` adds simulator
    build arguments. ``coverage`` (Verilator only): build with line and toggle coverage
    and write the run's ``coverage.dat`` to that path (:mod:`mmfree.sim.coverage` reads
    it)."""
    from ..hdl import build
    component = build(spec)
    top = spec.top_name()
    wrapper = wrapper_verilog(component, top, depths, clock)
    depths = dict(depths or {})
    args = list(build_args or [])
    plusargs = []
    if coverage is not None:
        if simulator != "verilator":
            raise ValueError("coverage is collected on Verilator only")
        args += list(COVERAGE_ARGS)
        plusargs.append(f"+verilator+coverage+file+{Path(coverage).resolve()}")
    if clock == "hdl" and simulator == "verilator":
        # the wrapper's # delays; the PyPI wheel's verilated.mk leaves the coroutine flags
        # of --timing empty, so they are given here
        args += ["--timing", "-CFLAGS", "-std=c++20", "-CFLAGS", "-fcoroutines"]
    return cosim.run(component, top, simulator, test_module,
                     config={**spec.params(), **(extra or {}), "bulk_depths": depths,
                             "bulk_clock": clock},
                     seed=seed, testcase=testcase, waves=waves,
                     extra_build_args=args, plusargs=plusargs, progress=progress,
                     wrapper=(wrapper_name(top), wrapper))
