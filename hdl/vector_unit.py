"""The whole-token engine's vector unit: lane-parallel element-wise ops and reductions."""

from __future__ import annotations

import numpy as np
from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import hgrn_fixed as fx
from ..spec.vector_unit import VecOp, VectorUnitSpec
from .credit_queue import CreditQueue, ResultQueue

__all__ = ["VectorUnit", "cmd_layout", "group_layout", "saturate", "saturate_mask",
           "scalar_layout"]


def cmd_layout(spec: VectorUnitSpec) -> data.StructLayout:
    """One command (:meth:`mmfree.spec.VectorUnitSpec.command` fills it): ``op``
    (:class:`~mmfree.spec.vector_unit.VecOp`), ``groups_m1`` (its lane groups ``G`` less
    one), ``mask`` (the lanes of the last group that hold elements, lane 0 lowest: a
    thermometer code), the signed requantisation ``shift``, ``align`` (``FMA2``; the
    interpolation shift of a table op), the output width ``ow``, ``rlog`` (a table op's
    ``log2 R`` in input LSBs) and the signed ``scalar``."""
    return data.StructLayout({"op": 4, "groups_m1": unsigned(spec.group_bits),
                              "mask": unsigned(spec.lanes),
                              "shift": signed(spec.shift_bits),
                              "align": unsigned(max(spec.max_align, spec.width).bit_length()),
                              "ow": unsigned(spec.width.bit_length()),
                              "rlog": unsigned((spec.width + 6).bit_length()),
                              "scalar": signed(spec.width)})


def group_layout(spec: VectorUnitSpec) -> data.ArrayLayout:
    """A lane group: ``lanes`` signed ``width``-bit elements, lane 0 lowest."""
    return data.ArrayLayout(signed(spec.width), spec.lanes)


def scalar_layout(spec: VectorUnitSpec) -> data.StructLayout:
    """A reduction's result: ``value`` (the sum of squares, or the maximum sign-extended),
    and for the argmax the lane group ``group`` and the lane ``lane`` of its lowest index
    ``group * lanes + lane`` (0 and 0 for a sum of squares)."""
    return data.StructLayout({"value": signed(spec.sumsq_width + 1),
                              "group": unsigned(spec.group_bits),
                              "lane": unsigned(max(1, (spec.lanes - 1).bit_length()))})


def _is(op: Value, code: int) -> Value:
    """``op == code`` as an AND of the op's bits (no constant of another width)."""
    return Cat(*(op[k] if (code >> k) & 1 else ~op[k] for k in range(len(op)))).all()


def ext(v: Value, width: int) -> Value:
    """``v`` sign-extended to ``width`` bits as an explicit concatenation (so every Verilog
    operator gets operands of equal width: Verilator's width warnings stay fatal)."""
    return v.as_signed() if len(v) == width else Cat(v, v[-1].replicate(width - len(v))).as_signed()


def shift_left(v: Value, amount: Value, offset: int = 0) -> Value:
    """``v << (amount << offset)`` in ``len(v)`` bits (the bits shifted out are lost): a
    barrel of multiplexers, no operator of mismatched widths. ``offset`` lets a shift be
    split into a coarse step (the amount's high bits) and a fine one (its low bits)."""
    for k in range(len(amount)):
        by = 1 << (k + offset)
        if by >= len(v):
            v = Mux(amount[k], 0, v)
            continue
        v = Mux(amount[k], Cat(Const(0, by), v[:len(v) - by]), v)
    return v.as_signed()


def saturate_mask(ow: Value, width: int) -> Value:
    """The ``width``-bit mask of the bits at and above ``ow - 1``: what a value must have
    all equal to its sign to fit the signed ``ow``-bit range (see :func:`saturate`)."""
    return shift_left(Const((1 << (width + 1)) - 1, width + 1), ow)[1:]


def saturate(m: Module, v: Value, mask: Value, wmax: int, name: str) -> Signal:
    """Signed ``v`` clamped to the signed ``ow``-bit range given by its
    :func:`saturate_mask` (a register): an AND and an OR-reduction instead of two
    comparisons with a bound decoded from ``ow``; a signed ``wmax``-bit result."""
    vw = len(v)
    sign = v[-1]
    over, under = Signal(name=f"{name}_over"), Signal(name=f"{name}_under")
    m.d.comb += [over.eq(~sign & (v & mask[:vw]).any()),
                 under.eq(sign & (~v & mask[:vw]).any())]
    out = Signal(signed(wmax), name=f"{name}_out")
    with m.If(over):
        m.d.comb += out.eq(~mask[:wmax])
    with m.Elif(under):
        m.d.comb += out.eq(mask[:wmax])
    with m.Else():
        m.d.comb += out.eq(v)  # sign-extended or truncated to wmax bits
    return out


class VectorUnit(wiring.Component):
    """Lane-parallel vector unit of the whole-token engine: one command, then
    ``G = ceil(count / lanes)`` operand groups, one per cycle, through one of the
    fixed-point contract's element-wise ops or reductions
    (:class:`mmfree.spec.vector_unit.VecOp`: each op is one function of
    :mod:`mmfree.golden.hgrn_fixed`, bit-exact, rounding ``half_up``). The sigmoid and
    SiLU tables are one ROM (block RAM, registered read) built from
    :func:`~mmfree.golden.hgrn_fixed.sigmoid_table` and
    :func:`~mmfree.golden.hgrn_fixed.silu_table` of :meth:`VectorUnitSpec.fixed`: one read
    per lane per cycle gives a knot ``t0`` and the difference to the next one.

    Ports (valid/ready streams):

    * ``cmd`` in, :func:`cmd_layout`: taken while no command is active.
    * ``a``, ``b``, ``c``, ``d`` in, :func:`group_layout`: the operands; ``b`` for the ops
      that read it (``MUL``, ``ADD``, ``SUB``, ``FMA2``), ``c`` and ``d`` for ``FMA2``; the
      operands an op reads transfer together.
    * ``y`` out, :func:`group_layout`: map results (saturated to the command's ``ow``),
      one group per operand group, in order.
    * ``s`` out, :func:`scalar_layout`: one beat per reduction.

    Timing: free-running pipeline; back-pressure at the input through the output queues'
    credits (:class:`~mmfree.hdl.credit_queue.ResultQueue`). An operand group transferred in
    cycle ``t`` gives its ``y`` group in ``t + MAP_LATENCY`` (9); a reduction's ``s`` beat
    leaves ``reduce_latency = 4 + ceil(log2 lanes)`` cycles after its last operand group.
    A command transfers at the earliest in the cycle after the previous command's last
    operand transfer (:meth:`mmfree.spec.VectorUnitSpec.map_cycles`, ``reduce_cycles``).
    Synchronous reset drops the active command and everything in flight; nothing transfers
    in reset.
    """

    def __init__(self, lanes: int = VectorUnitSpec.lanes, width: int = VectorUnitSpec.width,
                 max_dim: int = VectorUnitSpec.max_dim,
                 max_align: int = VectorUnitSpec.max_align,
                 act_width: int = VectorUnitSpec.act_width,
                 act_frac: int = VectorUnitSpec.act_frac,
                 gate_frac: int = VectorUnitSpec.gate_frac,
                 table_bits: int = VectorUnitSpec.table_bits,
                 table_range_log2: int = VectorUnitSpec.table_range_log2) -> None:
        self.spec = spec = VectorUnitSpec(
            lanes=lanes, width=width, max_dim=max_dim, max_align=max_align,
            act_width=act_width, act_frac=act_frac, gate_frac=gate_frac,
            table_bits=table_bits, table_range_log2=table_range_log2).validate()
        self.lanes, self.width, self.max_dim = lanes, width, max_dim
        self.latency = spec.MAP_LATENCY
        self.reduce_latency = spec.reduce_latency
        group = stream.Signature(group_layout(spec))
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout(spec))),
            "a": In(group), "b": In(group), "c": In(group), "d": In(group),
            "y": Out(stream.Signature(group_layout(spec))),
            "s": Out(stream.Signature(scalar_layout(spec))),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec, n, w = self.spec, self.lanes, self.width
        m.submodules.yq = yq = ResultQueue(group_layout(spec),
                                           CreditQueue.depth_for(spec.MAP_LATENCY))
        m.submodules.sq = sq = ResultQueue(scalar_layout(spec),
                                           CreditQueue.depth_for(spec.reduce_latency))
        wiring.connect(m, yq.o, wiring.flipped(self.y))
        wiring.connect(m, sq.o, wiring.flipped(self.s))
        rst = ResetSignal()
        cp = self.cmd.payload

        # --- command and operand control -------------------------------------------------
        active = Signal()
        op = Signal(4)
        mask = Signal(n)
        left = Signal(spec.group_bits)  # groups after the next one
        pos = Signal(spec.group_bits)  # the next group's index
        first = Signal()  # the next group is the command's first
        shift, align = Signal.like(cp.shift), Signal.like(cp.align)
        ow, scalar = Signal.like(cp.ow), Signal.like(cp.scalar)
        m.d.comb += self.cmd.ready.eq(~active & ~rst)
        # a table op's constants, decoded once per command: the mask of the magnitude bits
        # at and above rlog (the range test against R = 2**rlog), and the interpolation
        # fraction's mask 2**align - 1
        fw = spec.table_frac_bits
        hm_in, fmask_in = Signal(unsigned(w - 1)), Signal(unsigned(w + 1))
        fnhi_in = Signal(unsigned(fw))  # (2**align - 1) * 2**(FW - align): the top align bits
        m.d.comb += [hm_in.eq(~((Const(1, w) << cp.rlog) - 1)[:w - 1]),
                     fmask_in.eq((Const(1, w + 1) << cp.align) - 1),
                     fnhi_in.eq(~(Const((1 << fw) - 1, fw) >> cp.align))]
        hm_cmd = Signal(unsigned(w - 1))
        fmask_cmd = Signal(unsigned(w + 1))
        fnhi_cmd = Signal(unsigned(fw))
        # The command's registers load in every cycle without an active command (their
        # enable is ``~active``, a flip-flop: no LUT between the command's handshake and the
        # hundreds of enables); only ``active`` waits for a valid command. Nothing in flight
        # reads them after the cycle that follows its command's last group, the first cycle
        # in which a next command could be taken anyway.
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += active.eq(1)
        with m.If(~active):
            m.d.sync += [op.eq(cp.op), left.eq(cp.groups_m1), mask.eq(cp.mask),
                         shift.eq(cp.shift), align.eq(cp.align), ow.eq(cp.ow),
                         scalar.eq(cp.scalar), pos.eq(0), first.eq(1),
                         hm_cmd.eq(hm_in), fmask_cmd.eq(fmask_in), fnhi_cmd.eq(fnhi_in)]
        # the op, decoded once when the command is taken (one flag per datapath choice)
        flags = {name: Signal(name=f"is_{name}") for name in
                 ("mul", "muls", "add", "sub", "rsubi", "fma2", "table", "silu", "b", "cd")}
        decode = {"mul": [VecOp.MUL, VecOp.MULS], "muls": [VecOp.MULS], "add": [VecOp.ADD],
                  "sub": [VecOp.SUB], "rsubi": [VecOp.RSUBI], "fma2": [VecOp.FMA2],
                  "table": [VecOp.SIGMOID, VecOp.SILU], "silu": [VecOp.SILU],
                  "b": [op for op in VecOp if op.uses_b], "cd": [VecOp.FMA2]}
        with m.If(~active):
            for name, ops in decode.items():
                m.d.sync += flags[name].eq(Cat(*(_is(cp.op, o) for o in ops)).any())
        uses_b, uses_cd = flags["b"], flags["cd"]
        is_red = Signal()
        m.d.comb += is_red.eq(op[3])
        # ``last`` (no groups after the next one) is a flip-flop: set from the command's
        # count when it is taken, and from ``left == 1`` when a group goes
        last = Signal()
        left_one = Signal()
        m.d.comb += left_one.eq(left[0] & ~left[1:].any())
        credit = Signal()
        m.d.comb += credit.eq(Mux(is_red, ~last | sq.may_take, yq.may_take))
        # the operands this op reads are all valid (the others count as valid)
        have = {"a": self.a.valid, "b": self.b.valid | ~uses_b,
                "c": self.c.valid | ~uses_cd, "d": self.d.valid | ~uses_cd}
        go = Signal()
        m.d.comb += go.eq(active & credit & ~rst & have["a"] & have["b"] & have["c"]
                          & have["d"])
        m.d.comb += [self.a.ready.eq(go), self.b.ready.eq(go & uses_b),
                     self.c.ready.eq(go & uses_cd), self.d.ready.eq(go & uses_cd)]
        fire = go
        m.d.comb += [yq.take.eq(fire & ~is_red), sq.take.eq(fire & is_red & last)]
        with m.If(~active):
            m.d.sync += last.eq(~cp.groups_m1.any())
        with m.If(fire):
            m.d.sync += [pos.eq(pos + 1), first.eq(0), left.eq(left - 1), last.eq(left_one)]
            with m.If(last):
                m.d.sync += active.eq(0)
        with m.If(rst):
            m.d.sync += active.eq(0)

        # --- stage 1: operand registers -------------------------------------------------
        # Every map op is e = P + (Q << align) with P = pa * pb and Q = qc * qd, the operands
        # chosen here per op (MUL a*b; MULS a*s; FMA2 a*b + (c*d << align); ADD a*1 + b*1;
        # SUB a*1 + b*(-1); RSUBI a*(-1) + s*1; tables and reductions a*1): two 18 x 18
        # products with their operand and product registers, then one adder.
        def reg(sig: Value, name: str, valid: bool = False, keep: bool = False) -> Signal:
            # (Signal.like keeps a Signal's attributes: a register of a kept one is kept)
            r = Signal.like(sig, name=name, reset_less=not valid,
                            **({"attrs": {"keep": 1}} if keep else {}))
            m.d.sync += r.eq(sig)
            return r

        def pipe(sig: Value, name: str, stages: int, valid: bool = False) -> list[Signal]:
            """``sig`` delayed by 1 .. ``stages`` cycles (index 0: one cycle)."""
            out = []
            for k in range(stages):
                sig = reg(sig, f"{name}{k + 1}", valid)
                out.append(sig)
            return out

        S = spec.MAP_LATENCY - 1  # register stages before the output queue's entry
        vs = pipe(fire, "v", S, True)
        lasts, reds, firsts = pipe(last, "last", 2), pipe(is_red, "red", S), pipe(first, "first", 2)
        bases = pipe(pos, "base", 2)
        maxs = pipe(op[0], "max", 2)  # ARGMAX (9) rather than SUMSQ (8)
        sils, tabs = pipe(flags["silu"], "silu", S), pipe(flags["table"], "table", S)
        # The per-command values every lane uses are copied per lane at their last stage
        # (``lane_copies``): one flip-flop driving 16 lanes x 65 bits across the unit was
        # the 16-lane unit's critical path (the saturation mask: 10.3 ns of routing). The
        # copies carry ``keep``: without it Yosys's opt_merge folds identical flip-flops back
        # into one (measured: the same flip-flop count, 70.5 MHz routed).
        def lane_copies(sig: Value, name: str) -> list[Signal]:
            return [reg(sig, f"{name}_l{i}", keep=True) for i in range(n)]

        # Where the value exists a stage earlier, the copies are a two-level tree: one copy
        # per group of four lanes at the stage before, then the lane copies from their
        # group's copy (the same delay as ``lane_copies`` of the value's next stage; no
        # flip-flop drives more than four copies across the unit).
        def lane_tree(prev: Value, name: str) -> list[Signal]:
            grp = [reg(prev, f"{name}_g{j}", keep=True) for j in range((n + 3) // 4)]
            return [reg(grp[i // 4], f"{name}_l{i}", keep=True) for i in range(n)]

        negs = pipe(shift[-1], "neg", 4)
        mag = Signal(unsigned(len(shift)))
        m.d.comb += mag.eq(Mux(shift[-1], -shift, shift))
        mags = pipe(mag, "mag", 3)
        # stage 5 takes the coarse step's bits only
        mag5, mag6 = lane_tree(mags[1][2:], "mag5"), lane_tree(mags[2], "mag6")
        mag7 = [reg(mag6[i][:2], f"magf7_l{i}") for i in range(n)]  # the fine step's bits
        # 2**(mag - 1) for a right shift by mag >= 1 (round half up), 0 otherwise
        pw = 2 * w
        ew = pw + spec.max_align + 1  # bits of e = P + (Q << align)
        half = Signal(unsigned(ew - 1))
        # (from the registered magnitude: the command's shift -> its negation -> the decode
        # in one cycle was a 4-lane engine's critical path)
        m.d.comb += half.eq(Mux(negs[0], 0, (Const(1, ew + 1) << mags[0])[1:ew]))
        halfs = pipe(half, "half", 1)
        half5 = lane_tree(halfs[0], "half5")
        # Saturation without the shifted value's high bits: the requantised value (e + half)
        # shifted by k fits the signed ow-bit range when the bits of r = e + half at and
        # above ow - 1 + k (right shift) or ow - 1 - k (left shift) all equal its sign, and,
        # for a left shift by k >= ow, when r = 0 (the zeros shifted in are at and above
        # ow - 1). So the shifters keep only the output's w bits, and the test of r runs
        # beside them against a per-command mask ``sm``: the bits at and above ow - 1 of r's
        # width shifted by k, in two steps (coarse, fine) off the lanes.
        rw = ew + 1  # bits of r
        tmw = max(spec.table_width + 1, w)  # the table value's width: its saturation mask
        msks = pipe(saturate_mask(ow, tmw), "msk", 5)
        mb1 = reg(saturate_mask(ow, rw), "mb1")  # its top bit is set: ow <= w < rw
        mc2 = reg(Mux(negs[0], (mb1.as_signed() >> Cat(Const(0, 2), mags[0][2:])).as_unsigned(),
                      shift_left(mb1, mags[0][2:], 2).as_unsigned()), "smc2")
        mf3 = reg(Mux(negs[1], (mc2.as_signed() >> mags[1][:2]).as_unsigned(),
                      shift_left(mc2, mags[1][:2]).as_unsigned()), "smf3")
        sm6 = lane_tree(mf3, "sm6")
        cmpw = max(len(mag), len(ow))  # (a compare of equal widths)
        mag_c, ow_c = Signal(cmpw), Signal(cmpw, reset_less=True)
        m.d.comb += mag_c.eq(mags[0])
        m.d.sync += ow_c.eq(ow)
        lzs = pipe(negs[0] & (mag_c >= ow_c), "lz", 3)
        lz7 = lane_tree(lzs[2], "lz7")  # a left shift by k >= ow: only 0 fits
        al2 = lane_copies(align, "al2")
        al3 = [reg(al2[i], f"al3_l{i}") for i in range(n)]
        qal = Signal.like(align)
        m.d.comb += qal.eq(Mux(flags["fma2"], align, 0))
        qal3 = lane_tree(qal, "qal3")
        hms = lane_copies(hm_cmd, "hm2")
        fms = lane_copies(fmask_cmd, "fm2")
        fnhi3 = [reg(c, f"fnhi3_l{i}") for i, c in enumerate(lane_copies(fnhi_cmd, "fnhi2"))]
        one, mone = Const(1, signed(w)), Const(-1, signed(w))
        pa = [Signal(signed(w), name=f"pa1_{i}", reset_less=True) for i in range(n)]
        pb = [Signal(signed(w), name=f"pb1_{i}", reset_less=True) for i in range(n)]
        qc = [Signal(signed(w), name=f"qc1_{i}", reset_less=True) for i in range(n)]
        qd = [Signal(signed(w), name=f"qd1_{i}", reset_less=True) for i in range(n)]
        sa = [Signal(signed(w), name=f"sa1_{i}", reset_less=True) for i in range(n)]
        a1 = [Signal(signed(w), name=f"a1_{i}", reset_less=True) for i in range(n)]
        tx1 = [Signal(signed(w), name=f"tx1_{i}", reset_less=True) for i in range(n)]
        # x >> b in two steps: by b's multiple of four here, by the rest in stage 2
        txc1 = [Signal(signed(max(w, spec.table_bits)), name=f"txc1_{i}", reset_less=True)
                for i in range(n)]
        ok_in = Signal(n)
        m.d.comb += ok_in.eq(Mux(last, mask, (1 << n) - 1))
        ok1 = reg(ok_in, "ok1")
        ok2 = reg(ok1, "ok2")
        for i in range(n):
            a, b = self.a.payload[i], self.b.payload[i]
            c, d = self.c.payload[i], self.d.payload[i]
            with m.If(flags["muls"]):
                m.d.sync += pb[i].eq(scalar)
            with m.Elif(flags["mul"] | flags["fma2"]):
                m.d.sync += pb[i].eq(b)
            with m.Elif(flags["rsubi"]):
                m.d.sync += pb[i].eq(mone)
            with m.Else():
                m.d.sync += pb[i].eq(one)
            with m.If(flags["fma2"]):
                m.d.sync += [qc[i].eq(c), qd[i].eq(d)]
            with m.Elif(flags["add"]):
                m.d.sync += [qc[i].eq(b), qd[i].eq(one)]
            with m.Elif(flags["sub"]):
                m.d.sync += [qc[i].eq(b), qd[i].eq(mone)]
            with m.Elif(flags["rsubi"]):
                m.d.sync += [qc[i].eq(scalar), qd[i].eq(one)]
            with m.Else():
                m.d.sync += [qc[i].eq(0), qd[i].eq(0)]
            m.d.sync += [pa[i].eq(a), a1[i].eq(a), sa[i].eq(Mux(ok_in[i], a, 0)),
                         tx1[i].eq(a), txc1[i].eq(a >> Cat(Const(0, 2), align[2:]))]

        # --- stage 2: the products (registered in the DSP blocks) / the table index -----
        p2 = [Signal(signed(pw), name=f"p2_{i}", reset_less=True) for i in range(n)]
        q2 = [Signal(signed(pw), name=f"q2_{i}", reset_less=True) for i in range(n)]
        a2 = [reg(a1[i], f"a2_{i}") for i in range(n)]
        sq2 = [Signal(unsigned(spec.sumsq_width), name=f"sq2_{i}", reset_less=True)
               for i in range(n)]
        for i in range(n):
            m.d.sync += [p2[i].eq(pa[i] * pb[i]), q2[i].eq(qc[i] * qd[i])]
            # a * a < 2**(2w - 2) + 1: the product's sign bit is dropped
            m.d.sync += sq2[i].eq((sa[i] * sa[i])[:pw - 1])
        tb = spec.table_bits
        j2 = [Signal(unsigned(tb), name=f"j2_{i}", reset_less=True) for i in range(n)]
        # (fw: the fraction bits; f < 2**b <= 2**FW)
        f2 = [Signal(unsigned(fw), name=f"f2_{i}", reset_less=True) for i in range(n)]
        above2 = Signal(n, reset_less=True)
        below2 = Signal(n, reset_less=True)
        for i in range(n):
            hm, fmask = hms[i], fms[i]
            # table index: u = clamp(x, -R, R - 1) + R, j = u >> b, f = u mod 2**b. R is
            # 2**(table_bits - 1) times 2**b (VectorUnitSpec.command: rlog = b + table_bits
            # - 1), so inside the range j = (x >> b) + 2**(table_bits - 1), which is x >> b
            # with its top bit (of table_bits) inverted, and f = x mod 2**b: no adder
            x = tx1[i]
            hi_in, lo_in = Signal(name=f"hi_{i}"), Signal(name=f"lo_{i}")
            xs = Signal(tb, name=f"xs_{i}")  # (x >> b) mod 2**table_bits
            # x >= R: x is not negative and has a magnitude bit at or above rlog set;
            # x < -R: x is negative and ~x = -x - 1 has one (no compare, no carry chain)
            mb = x[:w - 1]
            m.d.comb += [hi_in.eq(~x[w - 1] & (mb & hm).any()),
                         lo_in.eq(x[w - 1] & (~mb & hm).any()),
                         xs.eq((txc1[i] >> al2[i][:2])[:tb])]
            # j and f inside the range; the clamp (above: u = 2R - 1, so j and f are all
            # ones; below: u = 0) is applied from above2 and below2, to j in stage 3 and to
            # f in stage 4, so the range test's OR tree ends at a flip-flop rather than at
            # j's and f's choice
            m.d.sync += [j2[i].eq(Cat(xs[:tb - 1], ~xs[tb - 1])),
                         f2[i].eq(Cat(x, x[w - 1]) & fmask),
                         above2[i].eq(hi_in), below2[i].eq(lo_in)]

        # --- stage 3: Q aligned / the table read (block RAM), f normalised ----------------
        p3 = [Signal(signed(ew - 1), name=f"p3_{i}", reset_less=True) for i in range(n)]
        m.d.sync += [p3[i].eq(p2[i]) for i in range(n)]  # at the sum's operand width
        q3 = [Signal(signed(ew - 1), name=f"q3_{i}", reset_less=True) for i in range(n)]
        for i in range(n):
            m.d.sync += q3[i].eq(shift_left(ext(q2[i], ew - 1), qal3[i]))
        # One ROM entry per knot j of both tables (the sigmoid's at j, the SiLU's at
        # 2**b + j): t[j] and t[j + 1] - t[j], so one read gives both knots. The difference
        # is stored in the fewest bits that hold it (the tables are smooth).
        fixed = spec.fixed()
        tables = [np.asarray(t, dtype=np.int64)
                  for t in (fx.sigmoid_table(fixed), fx.silu_table(fixed))]
        tw = spec.table_width
        dmax = max(int(np.abs(np.diff(t)).max()) for t in tables)
        dw = max(2, (dmax + 1).bit_length() + 1)
        assert dw < tw, (dw, tw)  # the interpolation fits a table entry's width
        entries = [(int(t[j]) & ((1 << tw) - 1)) | ((int(t[j + 1] - t[j]) & ((1 << dw) - 1))
                                                   << tw)
                   for t in tables for j in range(len(t) - 1)]
        # one copy per two lanes: a dual-port block RAM serves two read ports (one memory
        # with a port per lane makes Yosys's memory mapper search port assignments until it
        # runs out of memory)
        rom_ports = []
        for k in range(0, n, 2):
            rom = memory.Memory(shape=unsigned(tw + dw), depth=len(entries), init=entries)
            m.submodules[f"rom{k // 2}"] = rom
            rom_ports += [rom.read_port() for _ in range(min(2, n - k))]
        # f * 2**(FW - b) in FW bits: the rounding of (t1 - t0) * f / 2**b then sits at a
        # fixed position (floor((x * 2**s + 2**(FW-1)) / 2**FW) = floor((x + 2**(b-1)) / 2**b))
        fn3 = [Signal(unsigned(fw), name=f"fn3_{i}", reset_less=True) for i in range(n)]
        above3, below3 = reg(above2, "above3"), reg(below2, "below3")
        for i in range(n):
            jc = Signal(unsigned(tb), name=f"jc_{i}")
            m.d.comb += jc.eq(Mux(above2[i], (1 << tb) - 1, Mux(below2[i], 0, j2[i])))
            m.d.comb += rom_ports[i].addr.eq(Cat(jc, sils[1]))
            # f * 2**(FW - b) as (f * 2**FW) >> b: exact, since f < 2**b (f is clamped in
            # stage 4, after this shift)
            m.d.sync += fn3[i].eq((Cat(Const(0, fw), f2[i]) >> al3[i])[:fw])

        # --- stage 4: e = P + Q / the table entry (the block RAM's output register) --------
        e4 = [Signal(signed(ew), name=f"e4_{i}", reset_less=True) for i in range(n)]
        t4 = [Signal(unsigned(tw + dw), name=f"t4_{i}", reset_less=True) for i in range(n)]
        # f's clamp: above the range f = 2**b - 1, so f * 2**(FW - b) is the per-command
        # fnhi (FW bits, the top b set); below it f = 0
        fn4 = [Signal(unsigned(fw), name=f"fn4_{i}", reset_less=True) for i in range(n)]
        for i in range(n):
            m.d.sync += fn4[i].eq(Mux(above3[i], fnhi3[i], Mux(below3[i], 0, fn3[i])))
        above4, below4 = reg(above3, "above4"), reg(below3, "below4")
        for i in range(n):
            m.d.sync += [e4[i].eq(p3[i] + q3[i]),
                         t4[i].eq(rom_ports[i].data)]

        # --- stage 5: requantisation: the rounding add / the left shift's coarse step ----
        # (the shifts by ``mag`` are split into a coarse step by its multiple of four and a
        # fine step by the rest, one per stage: a whole barrel of the 48-bit r after the
        # rounding add does not fit one 150 MHz cycle)
        rs5 = [Signal(signed(ew + 1), name=f"rs5_{i}", reset_less=True) for i in range(n)]
        lc5 = [Signal(signed(w), name=f"lc5_{i}", reset_less=True) for i in range(n)]
        d5 = [Signal(signed(dw), name=f"d5_{i}", reset_less=True) for i in range(n)]
        t05 = [Signal(signed(tw), name=f"t05_{i}", reset_less=True) for i in range(n)]
        # fn at the width that makes the signed x unsigned product exactly tw + fw bits
        fn5 = [Signal(unsigned(tw + fw - dw - 1), name=f"fn5_{i}", reset_less=True)
               for i in range(n)]
        m.d.sync += [fn5[i].eq(fn4[i]) for i in range(n)]
        above5, below5 = reg(above4, "above5"), reg(below4, "below5")
        for i in range(n):
            m.d.sync += [rs5[i].eq(e4[i] + Cat(half5[i], Const(0, 1)).as_signed()),
                         lc5[i].eq(shift_left(e4[i][:w], mag5[i], 2)),
                         t05[i].eq(t4[i][:tw].as_signed()),
                         d5[i].eq(t4[i][tw:].as_signed())]

        # --- stage 6: the right shift's coarse step, the left shift's fine step / the
        # interpolation product (DSP) -------------------------------------------------------
        # the product and t0 * 2**FW + 2**(FW-1) (a concatenation: the rounding constant in
        # the bits below t0) are both ``cw`` bits, so stage 7 is one adder
        cw = tw + fw
        # (the right shift's coarse step keeps the bits its fine step needs for w bits)
        rc6 = [Signal(signed(w + 3), name=f"rc6_{i}", reset_less=True) for i in range(n)]
        ls6 = [Signal(signed(w), name=f"ls6_{i}", reset_less=True) for i in range(n)]
        # the saturation test of r in chunks of four bits, and r's sign
        nchunk = (rw + 3) // 4
        ov6 = [Signal(nchunk, name=f"ov6_{i}", reset_less=True) for i in range(n)]
        un6 = [Signal(nchunk, name=f"un6_{i}", reset_less=True) for i in range(n)]
        sg6 = [Signal(name=f"sg6_{i}", reset_less=True) for i in range(n)]
        pr6 = [Signal(signed(cw), name=f"pr6_{i}", reset_less=True) for i in range(n)]
        ta6 = [Signal(signed(cw), name=f"ta6_{i}", reset_less=True) for i in range(n)]
        above6, below6 = reg(above5, "above6"), reg(below5, "below6")
        for i in range(n):
            for c in range(nchunk):
                bits, msk = rs5[i][4 * c:4 * c + 4], sm6[i][4 * c:4 * c + 4]
                m.d.sync += [ov6[i][c].eq((bits & msk).any()),
                             un6[i][c].eq((~bits & msk).any())]
            m.d.sync += sg6[i].eq(rs5[i][-1])
            m.d.sync += [rc6[i].eq((rs5[i] >> Cat(Const(0, 2), mag6[i][2:]))[:w + 3]),
                         ls6[i].eq(shift_left(lc5[i], mag6[i][:2])),
                         pr6[i].eq(d5[i] * fn5[i]),
                         ta6[i].eq(Cat(Const(1 << (fw - 1), fw), t05[i]).as_signed())]

        # --- stage 7: the right shift's fine step and the choice / t0 plus the rounded
        # interpolation ---------------------------------------------------------------------
        v7 = [Signal(signed(w), name=f"v7_{i}", reset_less=True) for i in range(n)]
        over7 = [Signal(name=f"over7_{i}", reset_less=True) for i in range(n)]
        under7 = [Signal(name=f"under7_{i}", reset_less=True) for i in range(n)]
        neg7 = lane_tree(negs[3], "neg7")
        q7 = [Signal(signed(tw + 1), name=f"q7_{i}", reset_less=True) for i in range(n)]
        above7, below7 = reg(above6, "above7"), reg(below6, "below7")
        for i in range(n):
            rsh = Signal(signed(w), name=f"rsh_{i}")
            m.d.comb += rsh.eq((rc6[i] >> mag7[i])[:w])
            m.d.sync += [v7[i].eq(Mux(neg7[i], ls6[i], rsh)),
                         over7[i].eq(~sg6[i] & ov6[i].any()),
                         under7[i].eq(sg6[i] & (un6[i].any() | lz7[i]))]
            # the bits below FW are dropped: the rounding position
            m.d.sync += q7[i].eq((ta6[i] + pr6[i])[fw:].as_signed())

        # --- stage 8: saturation (the map value and the table value); then the output
        # queue -------------------------------------------------------------------------------
        y8 = [Signal(signed(w), name=f"y8_{i}", reset_less=True) for i in range(n)]
        tv8 = [Signal(signed(w), name=f"tv8_{i}", reset_less=True) for i in range(n)]
        above8, below8 = reg(above7, "above8"), reg(below7, "below8")
        tmsk8 = lane_tree(msks[4], "tmsk8")  # at the table value's width
        for i in range(n):
            # the bounds are the mask's low w bits: 2**(ow-1) - 1 and -2**(ow-1)
            lo = tmsk8[i][:w]
            m.d.sync += [y8[i].eq(Mux(over7[i], ~lo, Mux(under7[i], lo, v7[i]))),
                         tv8[i].eq(saturate(m, q7[i], tmsk8[i], w, f"tv{i}"))]
        ys = []
        is_silu, is_table = sils[S - 1], tabs[S - 1]
        for i in range(n):
            yi = Signal(signed(w), name=f"y_{i}")
            with m.If(~is_table):
                m.d.comb += yi.eq(y8[i])
            with m.Elif(is_silu & above8[i]):
                m.d.comb += yi.eq(y8[i])  # silu(x) = x (requantised) above R
            with m.Elif(is_silu & below8[i]):
                m.d.comb += yi.eq(0)
            with m.Else():
                m.d.comb += yi.eq(tv8[i])
            ys.append(yi)
        m.d.comb += [yq.put.eq(vs[S - 1] & ~reds[S - 1]), yq.data.eq(Cat(*ys))]

        # --- reductions: sum and argmax trees, one register stage per level -------------
        # Each argmax node takes the larger of two (the lower lane on a tie) with a compare
        # made a stage earlier: between the candidates of the two nodes below it, one
        # compare per pair of their inputs (four; one at the first level, whose inputs are
        # a1's lanes), chosen by the nodes' registered choices. So a level is a 2-of-4
        # choice and a select, with no carry chain (the compare and the select in one
        # stage were the 4-lane engine's routed critical path, tm1 -> tm2: 3 ns of logic).
        sw = spec.sumsq_width
        sums = list(sq2)
        iw = scalar_layout(spec)["lane"].shape.width

        class _Node:  # an argmax candidate: value, lane, valid; its inputs a stage earlier
            def __init__(self, v: Value, i: Value, o: Value, kids: list[Value],
                         left: Value) -> None:
                self.v, self.i, self.o, self.kids, self.left = v, i, o, kids, left

        def choose(node: _Node, per_kid: list[Value]) -> Value:
            """Of one value per input of ``node``, the one of the input it chose."""
            return Mux(node.left, per_kid[0], per_kid[1]) if len(per_kid) == 2 else per_kid[0]

        def pair_ge(p: _Node, q: _Node, name: str) -> Signal:
            """p.v >= q.v, from the compares of their inputs registered a stage earlier."""
            ge = [[reg(kp >= kq, f"{name}_{a}{b}") for b, kq in enumerate(q.kids)]
                  for a, kp in enumerate(p.kids)]
            out = Signal(name=f"{name}_ge")
            m.d.comb += out.eq(choose(p, [choose(q, r) for r in ge]))
            return out

        one_bit = Const(1, 1)
        nodes = [_Node(a2[i], Const(i, iw), ok2[i], [a1[i]], one_bit) for i in range(n)]
        valid, lst, first_r, base, is_max = (vs[1] & reds[1], lasts[1], firsts[1], bases[1],
                                              maxs[1])
        level = 0
        while len(sums) > 1:
            level += 1
            nxt_s, nxt_n = [], []
            for j in range(0, len(sums), 2):
                s = Signal(unsigned(sw), name=f"ts{level}_{j // 2}", reset_less=True)
                mv = Signal(signed(w), name=f"tm{level}_{j // 2}", reset_less=True)
                mi = Signal(iw, name=f"ti{level}_{j // 2}", reset_less=True)
                mo = Signal(name=f"to{level}_{j // 2}", reset_less=True)
                if j + 1 < len(sums):
                    p, q = nodes[j], nodes[j + 1]
                    take_left = p.o & (~q.o | pair_ge(p, q, f"tg{level}_{j // 2}"))
                    m.d.sync += [s.eq(sums[j] + sums[j + 1]), mv.eq(Mux(take_left, p.v, q.v)),
                                 mi.eq(Mux(take_left, p.i, q.i)), mo.eq(p.o | q.o)]
                    tk = reg(take_left, f"tk{level}_{j // 2}")  # for the level above
                    nxt_n.append(_Node(mv, mi, mo, [p.v, q.v], tk))
                else:
                    p = nodes[j]
                    m.d.sync += [s.eq(sums[j]), mv.eq(p.v), mi.eq(p.i), mo.eq(p.o)]
                    nxt_n.append(_Node(mv, mi, mo, [p.v], one_bit))
                nxt_s.append(s)
            sums, nodes = nxt_s, nxt_n
            nv = Signal(name=f"tv{level}")
            m.d.sync += nv.eq(valid)
            lst, first_r = reg(lst, f"tl{level}"), reg(first_r, f"tf{level}")
            base, is_max = reg(base, f"tb{level}"), reg(is_max, f"tx{level}")
            valid = nv
        top = nodes[0]
        tsum_r, (tval_r, tidx, tok) = sums[0], (top.v, top.i, top.o)

        # accumulators: the first group of a command starts them afresh
        acc = Signal(unsigned(sw), reset_less=True)
        best = Signal(signed(w), reset_less=True)
        best_i = Signal(iw, reset_less=True)
        best_g = Signal.like(base, reset_less=True)
        best_ok = Signal(reset_less=True)
        new_acc = Signal(unsigned(sw))
        take_new = Signal()
        new_best, new_i, new_ok = Signal(signed(w)), Signal.like(best_i), Signal()
        new_g = Signal.like(best_g)
        # tval > best from compares registered a stage earlier, as in the tree: the top
        # node's inputs against ``best`` and against the ``tval`` of that stage, picked by
        # the node's choice and by whether that ``tval`` became ``best`` (``upd``)
        upd = Signal()
        gt_best = [reg(k > best, f"gtb_{a}") for a, k in enumerate(top.kids)]
        gt_tval = [reg(k > tval_r, f"gtt_{a}") for a, k in enumerate(top.kids)]
        gt = Signal()
        m.d.comb += gt.eq(Mux(upd, choose(top, gt_tval), choose(top, gt_best)))
        m.d.sync += upd.eq(valid & take_new)
        m.d.comb += [
            new_acc.eq(Mux(first_r, 0, acc) + tsum_r),
            take_new.eq(tok & (first_r | ~best_ok | gt)),
            new_best.eq(Mux(take_new, tval_r, best)),
            new_i.eq(Mux(take_new, tidx, best_i)),
            new_g.eq(Mux(take_new, base, best_g)),
            new_ok.eq(tok | (best_ok & ~first_r)),
        ]
        with m.If(valid):
            m.d.sync += [acc.eq(new_acc), best.eq(new_best), best_i.eq(new_i),
                         best_g.eq(new_g), best_ok.eq(new_ok)]
        # the result registered before the output queue's entry (the compare and the
        # queue's LUT RAM write in one cycle were the 4-lane unit's critical path)
        res = Signal(scalar_layout(spec), reset_less=True)
        res_put = Signal()
        m.d.sync += [res_put.eq(valid & lst),
                     res.value.eq(Mux(is_max, new_best, new_acc)),
                     res.lane.eq(Mux(is_max, new_i, 0)),
                     res.group.eq(Mux(is_max, new_g, 0))]
        m.d.comb += [sq.put.eq(res_put), sq.data.eq(res)]
        return m
