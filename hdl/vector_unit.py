"""The whole-token engine's vector unit: lane-parallel element-wise ops and reductions."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.vector_unit import VecOp, VectorUnitSpec
from .credit_queue import CreditQueue, ResultQueue

__all__ = ["VectorUnit", "cmd_layout", "group_layout", "scalar_layout"]


def cmd_layout(spec: VectorUnitSpec) -> data.StructLayout:
    """One command: ``op`` (:class:`~mmfree.spec.vector_unit.VecOp`), ``groups_m1`` (its
    lane groups ``G`` less one), ``mask`` (the lanes of the last group that hold elements,
    lane 0 lowest: a thermometer code; :meth:`mmfree.spec.VectorUnitSpec.command` computes
    both from the element count), the shift ``k`` and the signed scalar ``c``."""
    return data.StructLayout({"op": 4, "groups_m1": unsigned(spec.group_bits),
                              "mask": unsigned(spec.lanes),
                              "shift": unsigned(spec.shift_width),
                              "c": signed(spec.scalar_width)})


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


class VectorUnit(wiring.Component):
    """Lane-parallel fixed-point vector unit: one command, then ``G = ceil(count / lanes)``
    operand groups, one per cycle.

    Ops (:class:`mmfree.spec.vector_unit.VecOp`; ``k`` the command's shift, ``c`` its
    scalar, ``rnd(v, k) = floor((v + 2**(k-1)) / 2**k)``, ``sat`` to the signed
    ``width``-bit range): map ops ``y = sat(rnd(e, k))`` with ``e`` = ``a``, ``a + b``,
    ``a - b``, ``a * b``, ``a * c`` or ``a + c``; reductions ``SUMSQ`` (exact ``sum a_i**2``)
    and ``ARGMAX`` (the largest ``a_i`` and its lowest index) over the ``count`` elements
    (lanes past ``count`` in the last group are ignored). Golden model:
    :func:`mmfree.golden.vector.vector_op`.

    Ports (valid/ready streams):

    * ``cmd`` in, :func:`cmd_layout`: taken while no command is active.
    * ``a``, ``b`` in, :func:`group_layout`: the operands; ``b`` only for the ops that read
      it (``ADD``, ``SUB``, ``MUL``), and then ``a`` and ``b`` transfer together.
    * ``y`` out, :func:`group_layout`: map results, one group per operand group, in order.
    * ``s`` out, :func:`scalar_layout`: one beat per reduction.

    Timing: free-running pipeline; back-pressure at the input through the output queues'
    credits (:class:`~mmfree.hdl.credit_queue.ResultQueue`). An operand group transferred in
    cycle ``t`` gives its ``y`` group in ``t + MAP_LATENCY`` (3); a reduction's ``s`` beat
    leaves ``reduce_latency = 3 + ceil(log2 lanes)`` cycles after its last operand group.
    A command transfers at the earliest in the cycle after the previous command's last
    operand transfer (:meth:`mmfree.spec.VectorUnitSpec.map_cycles`, ``reduce_cycles``).
    Synchronous reset drops the active command and everything in flight; nothing transfers
    in reset.
    """

    def __init__(self, lanes: int = VectorUnitSpec.lanes, width: int = VectorUnitSpec.width,
                 max_dim: int = VectorUnitSpec.max_dim) -> None:
        self.spec = spec = VectorUnitSpec(lanes=lanes, width=width, max_dim=max_dim).validate()
        self.lanes, self.width, self.max_dim = lanes, width, max_dim
        self.latency = spec.MAP_LATENCY
        self.reduce_latency = spec.reduce_latency
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout(spec))),
            "a": In(stream.Signature(group_layout(spec))),
            "b": In(stream.Signature(group_layout(spec))),
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

        # --- command and operand control -------------------------------------------------
        active = Signal()
        op = Signal(4)
        shift = Signal.like(self.cmd.payload.shift)
        c = Signal.like(self.cmd.payload.c)
        mask = Signal(n)
        left = Signal(spec.group_bits)  # groups after the next one
        pos = Signal(spec.group_bits)  # the next group's index
        first = Signal()  # the next group is the command's first
        m.d.comb += self.cmd.ready.eq(~active & ~rst)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [active.eq(1), op.eq(self.cmd.payload.op),
                         left.eq(self.cmd.payload.groups_m1), mask.eq(self.cmd.payload.mask),
                         shift.eq(self.cmd.payload.shift), c.eq(self.cmd.payload.c),
                         pos.eq(0), first.eq(1)]
        uses_b = Signal()
        is_red = Signal()
        with m.Switch(op):
            with m.Case(VecOp.ADD, VecOp.SUB, VecOp.MUL):
                m.d.comb += uses_b.eq(1)
            with m.Default():
                m.d.comb += uses_b.eq(0)
        m.d.comb += is_red.eq(op[3])
        last = Signal()
        m.d.comb += last.eq(~left.any())
        credit = Signal()
        m.d.comb += credit.eq(Mux(is_red, ~last | sq.may_take, yq.may_take))
        go = Signal()
        m.d.comb += [
            go.eq(active & credit & ~rst),
            self.a.ready.eq(go & (self.b.valid | ~uses_b)),
            self.b.ready.eq(go & self.a.valid & uses_b),
        ]
        fire = Signal()
        m.d.comb += fire.eq(self.a.valid & self.a.ready)
        m.d.comb += [yq.take.eq(fire & ~is_red), sq.take.eq(fire & is_red & last)]
        with m.If(fire):
            m.d.sync += [pos.eq(pos + 1), first.eq(0), left.eq(left - 1)]
            with m.If(last):
                m.d.sync += active.eq(0)
        with m.If(rst):
            m.d.sync += active.eq(0)

        # --- stage 1: operand registers -------------------------------------------------
        v1, last1, red1, first1 = Signal(), Signal(), Signal(), Signal()
        op1 = Signal(4, reset_less=True)
        k1 = Signal.like(shift, reset_less=True)
        base1 = Signal.like(pos, reset_less=True)
        a1 = Signal(group_layout(spec), reset_less=True)
        b1 = Signal(group_layout(spec), reset_less=True)
        c1 = Signal.like(c, reset_less=True)
        ok1 = Signal(n, reset_less=True)  # lane holds an element (index < count)
        m.d.sync += [v1.eq(fire), last1.eq(last), red1.eq(is_red), first1.eq(first),
                     op1.eq(op), k1.eq(shift), base1.eq(pos), a1.eq(self.a.payload),
                     b1.eq(self.b.payload), c1.eq(c),
                     ok1.eq(Mux(last, mask, (1 << n) - 1))]

        # --- stage 2: the expression (map) / squares and masked values (reductions) -----
        ew = 2 * w + 2  # the expression, and its rounding addend, without overflow
        v2, last2, red2, first2 = Signal(), Signal(), Signal(), Signal()
        max2 = Signal(reset_less=True)  # ARGMAX (9) rather than SUMSQ (8)
        k2 = Signal.like(k1, reset_less=True)
        base2 = Signal.like(base1, reset_less=True)
        m.d.sync += [v2.eq(v1), last2.eq(last1), red2.eq(red1), first2.eq(first1),
                     max2.eq(op1[0]), k2.eq(k1), base2.eq(base1)]
        e2 = [Signal(signed(ew), name=f"e2_{i}", reset_less=True) for i in range(n)]
        sq2 = [Signal(unsigned(spec.sumsq_width), name=f"sq2_{i}", reset_less=True)
               for i in range(n)]
        ok2 = Signal(n, reset_less=True)
        m.d.sync += ok2.eq(ok1)
        for i in range(n):
            a, b = a1[i], b1[i]
            with m.Switch(op1):
                with m.Case(VecOp.ADD):
                    m.d.sync += e2[i].eq(a + b)
                with m.Case(VecOp.SUB):
                    m.d.sync += e2[i].eq(a - b)
                with m.Case(VecOp.MUL):
                    m.d.sync += e2[i].eq(a * b)
                with m.Case(VecOp.SCALE):
                    m.d.sync += e2[i].eq(a * c1)
                with m.Case(VecOp.ADDC):
                    m.d.sync += e2[i].eq(a + c1)
                with m.Default():
                    m.d.sync += e2[i].eq(a)
            sq_full = Signal(signed(2 * w + 1), name=f"sqf_{i}")
            m.d.comb += sq_full.eq(a * a)
            m.d.sync += sq2[i].eq(Mux(ok1[i], sq_full[:2 * w], 0))

        # --- stage 3 of a map op: rounding, saturation, into the output queue -----------
        hi, lo = (1 << (w - 1)) - 1, -(1 << (w - 1))
        ys = []
        for i in range(n):
            half = Signal(signed(ew), name=f"half_{i}")
            m.d.comb += half.eq((Const(1, ew + 1) << k2)[1:ew + 1])  # 2**(k-1); 0 at k = 0
            summed = Signal(signed(ew + 1), name=f"rsum_{i}")
            m.d.comb += summed.eq(e2[i] + half)
            shifted = Signal(signed(ew + 1), name=f"rsh_{i}")
            m.d.comb += shifted.eq(summed >> k2)
            # saturate: the value fits w bits iff its bits w-1 and up are all equal
            top = shifted[w - 1:]
            over, under = Signal(name=f"over_{i}"), Signal(name=f"under_{i}")
            m.d.comb += [over.eq(~shifted[-1] & top.any()), under.eq(shifted[-1] & ~top.all())]
            yi = Signal(signed(w), name=f"y3_{i}")
            m.d.comb += yi.eq(Mux(over, hi, Mux(under, lo, shifted[:w])))
            ys.append(yi)
        m.d.comb += [yq.put.eq(v2 & ~red2), yq.data.eq(Cat(*ys))]

        # --- reductions: sum and argmax trees, one register stage per level -------------
        sw = spec.sumsq_width
        sums = [s for s in sq2]
        iw = scalar_layout(spec)["lane"].shape.width
        maxes = [(e2[i][:w].as_signed(), Const(i, iw), ok2[i]) for i in range(n)]
        valid, lst, first, base = v2 & red2, last2, first2, base2
        is_max = Signal(name="is_max2")
        m.d.comb += is_max.eq(max2)
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
                    left = ao & (~bo | (av >= bv))
                    m.d.sync += [s.eq(sums[j] + sums[j + 1]), mv.eq(Mux(left, av, bv)),
                                 mi.eq(Mux(left, ai, bi)), mo.eq(ao | bo)]
                else:
                    av, ai, ao = maxes[j]
                    m.d.sync += [s.eq(sums[j]), mv.eq(av), mi.eq(ai), mo.eq(ao)]
                nxt_s.append(s)
                nxt_m.append((mv, mi, mo))
            sums, maxes = nxt_s, nxt_m
            nv, nl, nf = Signal(name=f"tv{level}"), Signal(name=f"tl{level}"), Signal(
                name=f"tf{level}")
            nb = Signal.like(base, name=f"tb{level}", reset_less=True)
            nm = Signal(name=f"tx{level}", reset_less=True)
            m.d.sync += [nv.eq(valid), nl.eq(lst), nf.eq(first), nb.eq(base), nm.eq(is_max)]
            valid, lst, first, base, is_max = nv, nl, nf, nb, nm
        tsum, (tval, tidx, tok) = sums[0], maxes[0]

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
            new_acc.eq(Mux(first, 0, acc) + tsum),
            take_new.eq(tok & (first | ~best_ok | (tval > best))),
            new_best.eq(Mux(take_new, tval, best)),
            new_i.eq(Mux(take_new, tidx, best_i)),
            new_g.eq(Mux(take_new, base, best_g)),
            new_ok.eq(tok | (best_ok & ~first)),
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
