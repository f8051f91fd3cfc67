"""The whole-token engine's vector unit: lane-parallel element-wise ops and reductions."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import hgrn_fixed as fx
from ..spec.vector_unit import VecOp, VectorUnitSpec
from .credit_queue import CreditQueue, ResultQueue

__all__ = ["VectorUnit", "cmd_layout", "group_layout", "requantise", "round_shift",
           "saturate", "scalar_layout"]


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


def shift_left(v: Value, amount: Value) -> Value:
    """``v << amount`` in ``len(v)`` bits (the bits shifted out are lost): a barrel of
    multiplexers, no operator of mismatched widths."""
    for k in range(len(amount)):
        by = 1 << k
        if by >= len(v):
            v = Mux(amount[k], 0, v)
            continue
        v = Mux(amount[k], Cat(Const(0, by), v[:len(v) - by]), v)
    return v.as_signed()


def saturate(m: Module, v: Value, ow: Value, wmax: int, name: str) -> Signal:
    """Signed ``v`` clamped to the signed ``ow``-bit range (``2 <= ow <= wmax``); a signed
    ``wmax``-bit result."""
    vw = len(v)
    hi = Signal(signed(vw), name=f"{name}_hi")
    m.d.comb += hi.eq((Const(1, vw) << ow)[1:vw + 1] - 1)  # 2**(ow-1) - 1
    out = Signal(signed(wmax), name=f"{name}_out")
    with m.If(v > hi):
        m.d.comb += out.eq(hi)
    with m.Elif(v < ~hi):
        m.d.comb += out.eq(~hi)
    with m.Else():
        m.d.comb += out.eq(v)
    return out


def round_shift(m: Module, v: Value, k: Value, name: str) -> Signal:
    """``floor((v + 2**(k-1)) / 2**k)`` (round half up; ``v`` for ``k = 0``) for signed ``v``
    and unsigned ``k``, one bit wider than ``v``."""
    lv = len(v)
    half = Signal(signed(lv), name=f"{name}_half")
    total = Signal(signed(lv + 1), name=f"{name}_sum")
    out = Signal(signed(lv + 1), name=f"{name}_rs")
    m.d.comb += [half.eq((Const(1, lv + 1) << k)[1:lv + 1]),  # 2**(k-1) (k < lv); 0 at 0
                 total.eq(v + half),
                 out.eq(total >> k)]
    return out


def requantise(m: Module, v: Value, shift: Value, ow: Value, wmax: int, name: str) -> Signal:
    """:func:`mmfree.golden.hgrn_fixed.requantise` with ``half_up`` rounding, in logic:
    signed ``v`` divided by ``2**shift`` (round half up) or, for ``-wmax <= shift < 0``,
    multiplied by ``2**-shift`` (exact: the word is ``wmax`` bits wider; any non-zero value
    shifted by ``wmax`` saturates, so a longer left shift would give the same), then
    saturated to the signed ``ow``-bit range (``ow <= wmax``). A signed ``wmax``-bit
    result."""
    ww = len(v) + wmax + 1
    neg = shift[-1]
    mag = Signal(unsigned(len(shift)), name=f"{name}_mag")
    m.d.comb += mag.eq(Mux(neg, -shift, shift))
    right = round_shift(m, v, Mux(neg, 0, mag), name)
    left = Signal(signed(ww), name=f"{name}_left")
    m.d.comb += left.eq(shift_left(ext(v, ww), mag))
    both = Signal(signed(ww), name=f"{name}_val")
    m.d.comb += both.eq(Mux(neg, left, ext(right, ww)))
    return saturate(m, both, ow, wmax, name)


class VectorUnit(wiring.Component):
    """Lane-parallel vector unit of the whole-token engine: one command, then
    ``G = ceil(count / lanes)`` operand groups, one per cycle, through one of the
    fixed-point contract's element-wise ops or reductions
    (:class:`mmfree.spec.vector_unit.VecOp`: each op is one function of
    :mod:`mmfree.golden.hgrn_fixed`, bit-exact, rounding ``half_up``). The sigmoid and
    SiLU tables are ROMs built from :func:`~mmfree.golden.hgrn_fixed.sigmoid_table` and
    :func:`~mmfree.golden.hgrn_fixed.silu_table` of :meth:`VectorUnitSpec.fixed`, read
    twice per lane per cycle (the two knots of the interpolation).

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
    cycle ``t`` gives its ``y`` group in ``t + MAP_LATENCY`` (5); a reduction's ``s`` beat
    leaves ``reduce_latency = 3 + ceil(log2 lanes)`` cycles after its last operand group.
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
        ow, rlog, scalar = Signal.like(cp.ow), Signal.like(cp.rlog), Signal.like(cp.scalar)
        m.d.comb += self.cmd.ready.eq(~active & ~rst)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [active.eq(1), op.eq(cp.op), left.eq(cp.groups_m1), mask.eq(cp.mask),
                         shift.eq(cp.shift), align.eq(cp.align), ow.eq(cp.ow),
                         rlog.eq(cp.rlog), scalar.eq(cp.scalar), pos.eq(0), first.eq(1)]
        # the op, decoded once when the command is taken (one flag per datapath choice)
        flags = {name: Signal(name=f"is_{name}") for name in
                 ("mul", "muls", "add", "sub", "rsubi", "fma2", "table", "silu", "b", "cd")}
        decode = {"mul": [VecOp.MUL, VecOp.MULS], "muls": [VecOp.MULS], "add": [VecOp.ADD],
                  "sub": [VecOp.SUB], "rsubi": [VecOp.RSUBI], "fma2": [VecOp.FMA2],
                  "table": [VecOp.SIGMOID, VecOp.SILU], "silu": [VecOp.SILU],
                  "b": [op for op in VecOp if op.uses_b], "cd": [VecOp.FMA2]}
        with m.If(self.cmd.valid & self.cmd.ready):
            for name, ops in decode.items():
                m.d.sync += flags[name].eq(Cat(*(_is(cp.op, o) for o in ops)).any())
        uses_b, uses_cd = flags["b"], flags["cd"]
        is_red = Signal()
        m.d.comb += is_red.eq(op[3])
        last = Signal()
        m.d.comb += last.eq(~left.any())
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
        with m.If(fire):
            m.d.sync += [pos.eq(pos + 1), first.eq(0), left.eq(left - 1)]
            with m.If(last):
                m.d.sync += active.eq(0)
        with m.If(rst):
            m.d.sync += active.eq(0)

        # --- stage 1: operand registers -------------------------------------------------
        def reg(sig: Value, name: str, valid: bool = False) -> Signal:
            r = Signal.like(sig, name=name, reset_less=not valid)
            m.d.sync += r.eq(sig)
            return r

        v1, last1, red1, first1 = (reg(fire, "v1", True), reg(last, "last1"),
                                   reg(is_red, "red1"), reg(first, "first1"))
        base1 = reg(pos, "base1")
        f1 = {k: reg(v, f"{k}1") for k, v in flags.items() if k not in ("b", "cd")}
        max1 = reg(op[0], "max1")  # ARGMAX (9) rather than SUMSQ (8)
        sh1, al1, ow1, rl1, sc1 = (reg(shift, "sh1"), reg(align, "al1"), reg(ow, "ow1"),
                                   reg(rlog, "rl1"), reg(scalar, "sc1"))
        a1, b1 = reg(self.a.payload, "a1"), reg(self.b.payload, "b1")
        c1 = reg(self.c.payload, "c1")
        # operands sign-extended at their registers' inputs (so every Verilog operator below
        # has operands of its width: Verilator's width warnings stay fatal)
        aw = w + spec.max_align
        xw = w + 8  # holds R = 2**rlog (rlog <= width + 6)
        ax1 = [Signal(signed(aw), name=f"ax1_{i}", reset_less=True) for i in range(n)]
        dx1 = [Signal(signed(aw), name=f"dx1_{i}", reset_less=True) for i in range(n)]
        tx1 = [Signal(signed(xw), name=f"tx1_{i}", reset_less=True) for i in range(n)]
        for i in range(n):
            m.d.sync += [ax1[i].eq(self.a.payload[i]), dx1[i].eq(self.d.payload[i]),
                         tx1[i].eq(self.a.payload[i])]
        ok1 = Signal(n, reset_less=True)  # lane holds an element
        m.d.sync += ok1.eq(Mux(last, mask, (1 << n) - 1))

        # --- stage 2: the expression (map) / the table index / squares (reductions) -----
        ew = 2 * w + spec.max_align + 2
        v2, last2, red2, first2 = (reg(v1, "v2", True), reg(last1, "last2"),
                                   reg(red1, "red2"), reg(first1, "first2"))
        base2 = reg(base1, "base2")
        silu2, table2 = reg(f1["silu"], "silu2"), reg(f1["table"], "table2")
        sh2, al2, ow2 = reg(sh1, "sh2"), reg(al1, "al2"), reg(ow1, "ow2")
        ok2 = reg(ok1, "ok2")
        max2 = reg(max1, "max2")
        e2 = [Signal(signed(ew), name=f"e2_{i}", reset_less=True) for i in range(n)]
        sq2 = [Signal(unsigned(spec.sumsq_width), name=f"sq2_{i}", reset_less=True)
               for i in range(n)]
        tb = spec.table_bits
        j2 = [Signal(unsigned(tb), name=f"j2_{i}", reset_less=True) for i in range(n)]
        f2 = [Signal(unsigned(w + 1), name=f"f2_{i}", reset_less=True) for i in range(n)]
        above2 = Signal(n, reset_less=True)
        below2 = Signal(n, reset_less=True)
        r, rneg = Signal(signed(xw)), Signal(signed(xw))
        m.d.comb += [r.eq(Const(1, xw) << rl1), rneg.eq(-r)]
        fmask = Signal(unsigned(w + 1))
        m.d.comb += fmask.eq((Const(1, w + 1) << al1) - 1)
        for i in range(n):
            a, b, c = a1[i], b1[i], c1[i]
            wide = 2 * w + spec.max_align
            prod = Signal(signed(wide), name=f"ab_{i}")
            m.d.comb += prod.eq(ax1[i] * Mux(f1["muls"], sc1, b))
            dsh = Signal(signed(aw), name=f"dsh_{i}")
            m.d.comb += dsh.eq(shift_left(dx1[i], al1))  # d << align (no bits lost)
            cdx = Signal(signed(wide), name=f"cdx_{i}")
            m.d.comb += cdx.eq(c * dsh)
            fma = Signal(signed(wide + 1), name=f"fma_{i}")
            m.d.comb += fma.eq(prod + cdx)
            lin = Signal(signed(w + 1), name=f"lin_{i}")  # a + b, a - b, s - a
            m.d.comb += lin.eq(Mux(f1["add"], a + b,
                                   Mux(f1["sub"], a - b, Mux(f1["rsubi"], sc1 - a, a))))
            m.d.sync += e2[i].eq(Mux(f1["fma2"], fma, Mux(f1["mul"], prod, lin)))
            sq_full = Signal(signed(2 * w + 1), name=f"sqf_{i}")
            m.d.comb += sq_full.eq(a * a)
            m.d.sync += sq2[i].eq(Mux(ok1[i], sq_full[:2 * w], 0))
            # table index: u = clamp(x, -R, R - 1) + R, j = u >> b, f = u mod 2**b
            x = tx1[i]
            u = Signal(signed(xw + 1), name=f"u_{i}")
            hi_in, lo_in = Signal(name=f"hi_{i}"), Signal(name=f"lo_{i}")
            m.d.comb += [hi_in.eq(x >= r), lo_in.eq(x < rneg), u.eq(x + r)]
            # above: u = 2R - 1, so j and f are all ones; below: u = 0
            with m.If(hi_in):
                m.d.sync += [j2[i].eq((1 << tb) - 1), f2[i].eq(fmask)]
            with m.Elif(lo_in):
                m.d.sync += [j2[i].eq(0), f2[i].eq(0)]
            with m.Else():
                m.d.sync += [j2[i].eq(u.as_unsigned() >> al1), f2[i].eq(u[:w + 1] & fmask)]
            m.d.sync += [above2[i].eq(hi_in), below2[i].eq(lo_in)]

        # --- stage 3: requantisation (map) / the two table reads ------------------------
        v3, red3 = reg(v2, "v3", True), reg(red2, "red3")
        al3, ow3 = reg(al2, "al3"), reg(ow2, "ow3")
        silu3, table3 = reg(silu2, "silu3"), reg(table2, "table3")
        fixed = spec.fixed()
        roms = {}
        for kind, table in (("sig", fx.sigmoid_table(fixed)), ("silu", fx.silu_table(fixed))):
            roms[kind] = mem = memory.Memory(shape=signed(spec.table_width),
                                             depth=len(table),
                                             init=[int(t) for t in table])
            m.submodules[f"rom_{kind}"] = mem
        y3 = [Signal(signed(w), name=f"y3_{i}", reset_less=True) for i in range(n)]
        t0_3 = [Signal(signed(spec.table_width), name=f"t0_{i}", reset_less=True)
                for i in range(n)]
        t1_3 = [Signal(signed(spec.table_width), name=f"t1_{i}", reset_less=True)
                for i in range(n)]
        f3 = [reg(f2[i], f"f3_{i}") for i in range(n)]
        above3, below3 = reg(above2, "above3"), reg(below2, "below3")
        is_silu2 = silu2
        for i in range(n):
            m.d.sync += y3[i].eq(requantise(m, e2[i], sh2, ow2, w, f"rq{i}"))
            ports = []
            for kind in ("sig", "silu"):
                p0 = roms[kind].read_port(domain="comb")
                p1 = roms[kind].read_port(domain="comb")
                m.d.comb += [p0.addr.eq(j2[i]), p1.addr.eq(j2[i] + 1)]
                ports.append((p0, p1))
            (s0, s1), (q0, q1) = ports
            m.d.sync += [t0_3[i].eq(Mux(is_silu2, q0.data, s0.data)),
                         t1_3[i].eq(Mux(is_silu2, q1.data, s1.data))]

        # --- stage 4: the interpolation product ----------------------------------------
        v4, red4 = reg(v3, "v4", True), reg(red3, "red4")
        al4, ow4 = reg(al3, "al4"), reg(ow3, "ow4")
        is_silu4, is_table4 = reg(silu3, "silu4"), reg(table3, "table4")
        above4, below4 = reg(above3, "above4"), reg(below3, "below4")
        y4 = [reg(y3[i], f"y4_{i}") for i in range(n)]
        tsw = spec.table_width + w + 4  # the rounded interpolation's width
        t0_4 = [Signal(signed(tsw), name=f"t0_4_{i}", reset_less=True) for i in range(n)]
        m.d.sync += [t0_4[i].eq(t0_3[i]) for i in range(n)]
        p4 = [Signal(signed(spec.table_width + w + 3), name=f"p4_{i}", reset_less=True)
              for i in range(n)]
        for i in range(n):
            diff = Signal(signed(spec.table_width + 1), name=f"diff_{i}")
            m.d.comb += diff.eq(t1_3[i] - t0_3[i])
            fs = Signal(signed(w + 2), name=f"fs_{i}")
            m.d.comb += fs.eq(f3[i])
            m.d.sync += p4[i].eq(diff * fs)

        # --- stage 5: round, add, saturate; the result into the output queue -----------
        ys = []
        for i in range(n):
            # (t1 - t0) * f / 2**b, rounded: below |t1 - t0| < 2**(ow+1) in magnitude for
            # tables whose entries are in their format, so the contract's saturation to
            # ow + 2 bits never acts and is left out
            interp = round_shift(m, p4[i], al4, f"ip{i}")
            tsum = Signal(signed(len(interp) + 1), name=f"tsum_{i}")
            m.d.comb += tsum.eq(t0_4[i] + interp)
            tval = saturate(m, tsum, ow4, w, f"tv{i}")
            yi = Signal(signed(w), name=f"y5_{i}")
            with m.If(~is_table4):
                m.d.comb += yi.eq(y4[i])
            with m.Elif(is_silu4 & above4[i]):
                m.d.comb += yi.eq(y4[i])  # silu(x) = x (requantised) above R
            with m.Elif(is_silu4 & below4[i]):
                m.d.comb += yi.eq(0)
            with m.Else():
                m.d.comb += yi.eq(tval)
            ys.append(yi)
        m.d.comb += [yq.put.eq(v4 & ~red4), yq.data.eq(Cat(*ys))]

        # --- reductions: sum and argmax trees, one register stage per level -------------
        sw = spec.sumsq_width
        sums = list(sq2)
        iw = scalar_layout(spec)["lane"].shape.width
        maxes = [(e2[i][:w].as_signed(), Const(i, iw), ok2[i]) for i in range(n)]
        valid, lst, first_r, base, is_max = v2 & red2, last2, first2, base2, max2
        level = 0
        while len(sums) > 1:
            level += 1
            nxt_s, nxt_m = [], []
            for j in range(0, len(sums), 2):
                s = Signal(unsigned(sw), name=f"ts{level}_{j // 2}", reset_less=True)
                mv = Signal(signed(w), name=f"tm{level}_{j // 2}", reset_less=True)
                mi = Signal(iw, name=f"ti{level}_{j // 2}", reset_less=True)
                mo = Signal(name=f"to{level}_{j // 2}", reset_less=True)
                if j + 1 < len(sums):
                    (av, ai, ao), (bv, bi, bo) = maxes[j], maxes[j + 1]
                    take_left = ao & (~bo | (av >= bv))
                    m.d.sync += [s.eq(sums[j] + sums[j + 1]), mv.eq(Mux(take_left, av, bv)),
                                 mi.eq(Mux(take_left, ai, bi)), mo.eq(ao | bo)]
                else:
                    av, ai, ao = maxes[j]
                    m.d.sync += [s.eq(sums[j]), mv.eq(av), mi.eq(ai), mo.eq(ao)]
                nxt_s.append(s)
                nxt_m.append((mv, mi, mo))
            sums, maxes = nxt_s, nxt_m
            nv = Signal(name=f"tv{level}")
            m.d.sync += nv.eq(valid)
            lst, first_r = reg(lst, f"tl{level}"), reg(first_r, f"tf{level}")
            base, is_max = reg(base, f"tb{level}"), reg(is_max, f"tx{level}")
            valid = nv
        tsum_r, (tval_r, tidx, tok) = sums[0], maxes[0]

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
        m.d.comb += [
            new_acc.eq(Mux(first_r, 0, acc) + tsum_r),
            take_new.eq(tok & (first_r | ~best_ok | (tval_r > best))),
            new_best.eq(Mux(take_new, tval_r, best)),
            new_i.eq(Mux(take_new, tidx, best_i)),
            new_g.eq(Mux(take_new, base, best_g)),
            new_ok.eq(tok | (best_ok & ~first_r)),
        ]
        with m.If(valid):
            m.d.sync += [acc.eq(new_acc), best.eq(new_best), best_i.eq(new_i),
                         best_g.eq(new_g), best_ok.eq(new_ok)]
        m.d.comb += [
            sq.put.eq(valid & lst),
            sq.data.value.eq(Mux(is_max, new_best, new_acc)),
            sq.data.lane.eq(Mux(is_max, new_i, 0)),
            sq.data.group.eq(Mux(is_max, new_g, 0)),
        ]
        return m
