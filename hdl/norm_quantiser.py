"""The BitLinear front end with the RMSNorm weight: fused RMSNorm + absmax int8 quantiser."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.quantiser import Q_MAX, NormQuantFormat
from ..spec.bitlinear_unit import ACT_BITS, NormQuantiserSpec
from ._arith import adder_levels, leading_one_staged, shift_right_staged
from .credit_queue import CreditQueue
from .serial_divider import SerialDivider
from .serial_isqrt import SerialIsqrt

__all__ = ["NormQuantiser", "exp_width", "norm_input_layout", "norm_scale_layout",
           "q_layout", "sumsq_width"]


def norm_input_layout(in_width: int, weight_width: int, lanes: int) -> data.StructLayout:
    """A lane group of a vector and of its norm weight: ``lanes`` signed ``in_width``-bit
    input mantissas ``data``, the ``lanes`` signed ``weight_width``-bit norm weight
    mantissas ``weight`` of the same elements (lane 0 lowest), and ``last``, set on the
    vector's final group."""
    return data.StructLayout({"data": data.ArrayLayout(signed(in_width), lanes),
                              "weight": data.ArrayLayout(signed(weight_width), lanes),
                              "last": 1})


def q_layout(lanes: int) -> data.StructLayout:
    """A lane group of int8 activations, ``last`` on the vector's final group."""
    return data.StructLayout({"data": data.ArrayLayout(signed(ACT_BITS), lanes), "last": 1})


def exp_width(fmt: NormQuantFormat, max_dim: int) -> int:
    """Signed bits of the shift ``E`` over vectors of up to ``max_dim`` elements
    (:meth:`~mmfree.golden.quantiser.NormQuantFormat.exp_range`)."""
    lo, hi = fmt.exp_range(max_dim)
    return max((-lo - 1).bit_length(), hi.bit_length()) + 1


def norm_scale_layout(fmt: NormQuantFormat, max_dim: int) -> data.StructLayout:
    """The per-vector output: ``scale`` = ``D = Â * r`` (unsigned, ``2P - 1`` bits) and
    ``exp`` = the signed shift ``E`` (:func:`exp_width` bits)."""
    return data.StructLayout({"scale": unsigned(fmt.scale_width),
                              "exp": signed(exp_width(fmt, max_dim))})


def sumsq_width(in_width: int, max_dim: int) -> int:
    """Bits of ``N = sum m_i**2`` over up to ``max_dim`` elements (``m_i**2 <= 2**(2w-2)``)."""
    return 2 * in_width - 1 + (max_dim - 1).bit_length()


class NormQuantiser(wiring.Component):
    """RMSNorm with its per-channel weight, then per-vector absmax int8 quantisation, fused,
    in fixed point: bit-exact to :func:`mmfree.golden.quantiser.quantise_weighted` (the
    contract, with the formats, the roundings and the derivation, is that function's module
    docstring; docs/bitlinear.md).

    For one vector of input mantissas ``m`` and norm weight mantissas ``v``: products
    ``p_i = m_i v_i``, ``A = max|p_i|`` and the unweighted ``N = sum m_i**2`` in the load
    pass; ``L = bit_length(A)``, ``Â = floor(A 2**(P-L))``; ``R = floor(127 2**(2P-8) / Â)``;
    ``N' = N 4**-t`` (an even shift); ``r = isqrt(floor(2**(4P-4) / N'))``; outputs
    ``q_i = sign(p_i) min(127, round_half_away(a_i R / 2**(2P-8)))`` with
    ``a_i = floor(|p_i| 2**(P-L))``, ``D = Â r`` and ``E = L - P - t`` (all zero when
    ``A = 0``). In the hardware ``2t + 2P`` is ``bit_length(N)`` rounded up to even, so
    ``E = L - ceil(bit_length(N) / 2)``; every normalising shift is a right shift of the
    value moved up by ``P - 1`` (``a_i = (|p_i| << (P-1)) >> (L-1)``).

    Ports (valid/ready streams; Verilog names ``x__valid``, ``x__ready``, ``x__payload`` ...):

    * ``x``: in, :func:`norm_input_layout`: one lane group of ``m`` and the matching group
      of ``v`` per transfer, ``last`` on the vector's final group. A vector is
      ``1 .. ceil(max_dim / lanes)`` groups; pad a partial final group with zero inputs
      (a zero input changes neither ``A`` nor ``N``; its weight does not matter).
    * ``q``: out, :func:`q_layout`: the int8 groups, in input order, ``last`` on the final one.
    * ``scale``: out, :func:`norm_scale_layout`: ``D`` and ``E``, one per vector, before its
      ``q`` groups.
    * ``truncated``: out, sticky until reset: a vector reached ``ceil(max_dim / lanes)``
      groups without ``last``; it was ended there (its quantised groups are still emitted).

    Timing (the formulas are :class:`mmfree.spec.NormQuantiserSpec`'s), per vector of ``G``
    groups: ``x`` is ready in the load phase and takes one group per cycle. A free-running
    load pipeline (group register; products and squares, in DSP blocks with registered
    operands and results; their copies; magnitudes and signs, written to a buffer of
    ``ceil(max_dim / lanes)`` words of block RAM; one register stage per level of the adder
    tree and two (compare, then select) per level of the max tree; the ``N`` accumulator,
    and two ``A`` accumulators that take the groups in turn, each with a compare and a
    select stage, and the larger of the two) feeds the per-vector part:
    leading-one detection of ``A`` and ``N`` in two steps (8-bit slices, then across the
    slices; the shift amounts are the leading-one positions themselves), the coarse and the
    fine normalising shift (``E`` beside them), then two non-restoring dividers in parallel
    (``P`` and ``2P - 1`` quotient bits), a bit-serial square root (``P`` bits) and
    ``D = Â r`` (registered operands and product). ``scale`` is valid a fixed
    :attr:`~mmfree.spec.NormQuantiserSpec.overhead` cycles after the last group's transfer.
    After its transfer the ``G`` groups are read back through a free-running pipeline
    (buffer read and its register, which the ECP5 flow places in the block RAM; coarse and
    fine shift; ``a_i``'s copy, the multiplier's operand register; the product ``a_i R``
    and its copy; the rounded value with its sign, one carry chain, into the output queue,
    :class:`~mmfree.hdl.credit_queue.CreditQueue`: a group is read only while the queue has
    room for it) and leave one per cycle while ``q``
    is ready, the first ``QUANT_STAGES + 2`` cycles after the ``scale`` transfer
    (:meth:`~mmfree.spec.NormQuantiserSpec.vector_cycles` ``= 2G + overhead +
    QUANT_STAGES + 1``). ``x`` is not ready from the last group's transfer until the last
    group has been read back (the next vector may load while the last ``q`` groups drain).
    No count depends on the data. Every multiplier has registered operands and a registered
    product, every divider/root step is one subtraction per cycle, every tree level is
    its own stage, and the control flags (busy, the last read, the full buffer) are
    flip-flops: the clock is not limited by a wide multiply or a compare.
    Synchronous reset returns to the load phase, discards a partial vector and clears
    ``truncated``; ``x.ready`` is low while ``rst`` is high.

    Parameters, their limits and defaults: :class:`mmfree.spec.NormQuantiserSpec`
    (:attr:`spec`).
    """

    def __init__(self, lanes: int = NormQuantiserSpec.lanes,
                 max_dim: int = NormQuantiserSpec.max_dim,
                 in_width: int = NormQuantiserSpec.in_width,
                 weight_width: int = NormQuantiserSpec.weight_width,
                 mant_bits: int = NormQuantiserSpec.mant_bits) -> None:
        self.spec = NormQuantiserSpec(lanes=lanes, max_dim=max_dim, in_width=in_width,
                                      weight_width=weight_width, mant_bits=mant_bits).validate()
        self.lanes, self.max_dim = lanes, max_dim
        self.in_width, self.weight_width, self.mant_bits = in_width, weight_width, mant_bits
        self.fmt = self.spec.fmt
        self.max_groups = -(-max_dim // lanes)
        self.overhead = self.spec.overhead
        super().__init__({
            "x": In(stream.Signature(norm_input_layout(in_width, weight_width, lanes))),
            "q": Out(stream.Signature(q_layout(lanes))),
            "scale": Out(stream.Signature(norm_scale_layout(self.fmt, max_dim))),
            "truncated": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        n, iw, ww, p = self.lanes, self.in_width, self.weight_width, self.mant_bits
        f = self.fmt.recip_frac
        pw = iw + ww  # signed product m_i * v_i
        mw = pw - 1  # its magnitude: |p_i| <= 2**(pw - 2)
        nw = sumsq_width(iw, self.max_dim)
        ew = exp_width(self.fmt, self.max_dim)
        groups = self.max_groups
        lane = data.StructLayout({"mag": unsigned(mw), "neg": 1})
        m.submodules.buf = buf = memory.Memory(shape=data.ArrayLayout(lane, n), depth=groups,
                                               init=[])
        wr = buf.write_port()
        rd = buf.read_port()  # synchronous: block RAM
        # R = floor(127 * 2**(2P-8) / Â): the dividend's top part 127 * 2**(P-8) is below
        # Â >= 2**(P-1), so P iterations give the whole quotient.
        m.submodules.recip_div = recip_div = SerialDivider(p, p)
        # floor(2**(4P-4) / N'): top part 2**(2P-3) < N' >= 2**(2P-2); 2P-1 quotient bits.
        m.submodules.root_div = root_div = SerialDivider(2 * p - 1, 2 * p)
        m.submodules.isqrt = isqrt = SerialIsqrt(2 * p - 1)

        st = {name: Signal(name=f"phase_{name}", init=name == "load") for name in _STATES}

        def goto(src: str, dst: str) -> list:
            return [st[src].eq(0), st[dst].eq(1)]

        # --- load pipeline (free-running: no enable on its stage registers) ---------------
        fire = self.x.valid & self.x.ready
        ends = Signal()  # the group that ends the vector (last, or the buffer is full)
        g0 = Signal(norm_input_layout(iw, ww, n))
        v0, e0 = Signal(name="l0_valid"), Signal(name="l0_last")
        m.d.sync += [g0.eq(self.x.payload), v0.eq(fire), e0.eq(fire & ends)]
        prod1 = [Signal(signed(pw), name=f"l1_prod{i}") for i in range(n)]
        sq1 = [Signal(signed(2 * iw), name=f"l1_sq{i}") for i in range(n)]
        prod2 = [Signal(signed(pw), name=f"l2_prod{i}") for i in range(n)]
        sq2 = [Signal(signed(2 * iw), name=f"l2_sq{i}") for i in range(n)]
        mag3 = [Signal(mw, name=f"l3_mag{i}") for i in range(n)]
        neg3 = [Signal(name=f"l3_neg{i}") for i in range(n)]
        sq3 = [Signal(signed(2 * iw), name=f"l3_sq{i}") for i in range(n)]
        v1, e1, v2, e2, v3, e3 = (Signal(name=nm) for nm in (
            "l1_valid", "l1_last", "l2_valid", "l2_last", "l3_valid", "l3_last"))
        m.d.sync += [v1.eq(v0), e1.eq(e0), v2.eq(v1), e2.eq(e1), v3.eq(v2), e3.eq(e2)]
        for i in range(n):
            m.d.sync += [prod1[i].eq(g0.data[i] * g0.weight[i]),
                         sq1[i].eq(g0.data[i] * g0.data[i]),
                         prod2[i].eq(prod1[i]), sq2[i].eq(sq1[i]), sq3[i].eq(sq2[i]),
                         mag3[i].eq(Mux(prod2[i][-1], (-prod2[i])[:mw], prod2[i][:mw])),
                         neg3[i].eq(prod2[i][-1])]
        # every magnitude and sign goes to the buffer, at the write counter
        wcount = Signal(range(groups))
        m.d.comb += [wr.addr.eq(wcount), wr.en.eq(v3)]
        for i in range(n):
            m.d.comb += [wr.data[i].mag.eq(mag3[i]), wr.data[i].neg.eq(neg3[i])]
        with m.If(v3):
            m.d.sync += wcount.eq(Mux(e3, 0, wcount + 1))
        # the adder tree, one register stage per level, into the N accumulator
        sums, valid, last = list(sq3), v3, e3
        tree_w = 2 * iw + (n - 1).bit_length()
        for level in range(self.spec.tree_stages):
            summed = adder_levels(m, sums, tree_w, 1, name=f"sq{level}", first_level=level + 1)
            sums = []
            for j, s in enumerate(summed):
                r = Signal(signed(len(s)), name=f"t{level}_sum{j}")
                m.d.sync += r.eq(s)
                sums.append(r)
            tv = Signal(name=f"t{level}_valid")
            m.d.sync += tv.eq(valid)
            valid = tv
        sumsq = Signal(nw)
        tsum = Signal(nw)
        m.d.comb += tsum.eq(sums[0].as_unsigned()[:nw] if len(sums[0]) >= nw else sums[0])
        with m.If(valid):
            m.d.sync += sumsq.eq(sumsq + tsum)
        # the max tree, two register stages per level: the compare, then the select (a
        # compare's carry chain and the select's fan-out do not fit one 150 MHz cycle)
        mags, valid, last = list(mag3), v3, e3
        for level in range(self.spec.tree_stages):
            nxt = []
            for j in range(0, len(mags), 2):
                big = Signal(mw, name=f"t{level}_max{j // 2}")
                if j + 1 < len(mags):
                    gt = Signal(name=f"t{level}_gt{j // 2}")
                    lo, hi = (Signal(mw, name=f"t{level}_max{j // 2}_{k}") for k in "ab")
                    m.d.sync += [gt.eq(mags[j] > mags[j + 1]), lo.eq(mags[j]),
                                 hi.eq(mags[j + 1]), big.eq(Mux(gt, lo, hi))]
                else:
                    held = Signal(mw, name=f"t{level}_max{j // 2}_a")
                    m.d.sync += [held.eq(mags[j]), big.eq(held)]
                nxt.append(big)
            tv_a, tv_b = (Signal(name=f"t{level}_{k}_valid") for k in "ab")
            tl_a, tl_b = (Signal(name=f"t{level}_{k}_last") for k in "ab")
            m.d.sync += [tv_a.eq(valid), tl_a.eq(last), tv_b.eq(tv_a), tl_b.eq(tl_a)]
            mags, valid, last = nxt, tv_b, tl_b
        # A = the largest group maximum, in two accumulators that take the groups in turn,
        # so that each has two cycles per update: the compare into a flip-flop, then the
        # select; then A = the larger of the two (compare, then select), free-running
        turn = Signal()  # which accumulator takes the next group
        accs = [Signal(mw, name=f"amax{k}") for k in range(2)]
        for k, acc in enumerate(accs):
            gt, cand, pend = (Signal(name=f"amax{k}_gt"), Signal(mw, name=f"amax{k}_cand"),
                              Signal(name=f"amax{k}_pending"))
            m.d.sync += [gt.eq(mags[0] > acc), cand.eq(mags[0]),
                         pend.eq(valid & (turn == k))]
            with m.If(pend):
                m.d.sync += acc.eq(Mux(gt, cand, acc))
        with m.If(valid):
            m.d.sync += turn.eq(~turn)
        acc_gt = Signal()
        amax = Signal(mw)
        m.d.sync += [acc_gt.eq(accs[0] > accs[1]), amax.eq(Mux(acc_gt, accs[0], accs[1]))]
        # the last group's A is in amax three cycles after it leaves the tree
        a_done = [Signal(name=f"amax_done{k}") for k in range(3)]
        m.d.sync += [a_done[0].eq(valid & last), a_done[1].eq(a_done[0]),
                     a_done[2].eq(a_done[1])]

        # --- per-vector part ---------------------------------------------------------------
        # leading ones of A and N in two steps (8-bit slices, free-running; then across the
        # slices, into lead_a and lead_n in the prep state)
        lead_a_next, a_nonzero = leading_one_staged(m, amax, "amax", nonzero=True)
        lead_n_next, _ = leading_one_staged(m, sumsq, "sumsq")
        lead_a = Signal(len(lead_a_next))  # L - 1 (0 for A = 0): the shift of every a_i
        lead_n = Signal(len(lead_n_next))  # bit_length(N) - 1
        zero = Signal()
        exp = Signal(signed(ew))
        # free-running normalising shifts (their inputs hold through the states that use
        # them): a_i = (|p_i| << (P-1)) >> (L-1), and N' = (N << 2P) >> (2t + 2P) with
        # 2t + 2P = bit_length(N) rounded up to even = (lead_n | 1) + 1, shifted as
        # (N << (2P - 1)) >> (lead_n | 1): no adder on the shift amount
        n_by = Cat(Const(1, 1), lead_n[1:])
        _, norm_max = shift_right_staged(m, amax.as_unsigned() << (p - 1), lead_a, p, "amax")
        _, sumsq_norm = shift_right_staged(m, sumsq << (2 * p - 1), n_by, 2 * p, "sumsq")
        recip = Signal(p)
        norm_op, root_op = Signal(p), Signal(p)  # operand registers of D = Â * r
        scale_prod = Signal(self.fmt.scale_width)  # its product register (D < 2**(2P-1))
        m.d.sync += [norm_op.eq(norm_max), root_op.eq(isqrt.root[:p]),
                     scale_prod.eq((norm_op * root_op)[:self.fmt.scale_width])]
        m.d.comb += [
            recip_div.high.eq(Q_MAX << (p - 8)), recip_div.dividend.eq(0),
            recip_div.divisor.eq(norm_max),
            root_div.high.eq(1 << (2 * p - 3)), root_div.dividend.eq(0),
            root_div.divisor.eq(sumsq_norm),
            isqrt.radicand.eq(root_div.quotient),
        ]

        # --- quantise pass (free-running, credits from the output queue) ---------------------
        m.submodules.outq = outq = CreditQueue(q_layout(n), CreditQueue.depth_for(
            NormQuantiserSpec.QUANT_STAGES + 1))  # a group read in t may leave in t + 8
        wiring.connect(m, outq.o, wiring.flipped(self.q))
        rcount = Signal(range(groups))
        count = Signal(range(groups))  # input groups of the vector being loaded
        groups_m1 = Signal(range(groups))  # G - 1 of the vector being emitted
        groups_m2 = Signal(range(groups))  # G - 2 (modulo the counter's range)
        # flip-flops equal to count == groups - 1 and rcount == groups_m1, kept beside the
        # counters so that no compare lies on the paths they gate
        full = Signal(init=groups == 1)
        rlast = Signal(init=1)
        issue = st["quant"] & outq.may_take
        # the read is disabled while the load pass writes (they never overlap: a vector is
        # read back only after its last group is written, and the next one loads after
        # that), so synthesis needs no read-during-write bypass behind the block RAM
        m.d.comb += [rd.addr.eq(rcount), rd.en.eq(~v3)]
        stages = NormQuantiserSpec.QUANT_STAGES
        qv = [Signal(name=f"q{k}_valid") for k in range(1, stages + 1)]
        ql = [Signal(name=f"q{k}_last") for k in range(1, stages + 1)]
        m.d.sync += [qv[0].eq(issue), ql[0].eq(rlast)]
        m.d.sync += [a.eq(b) for a, b in zip(qv[1:] + ql[1:], qv[:-1] + ql[:-1], strict=True)]
        recip_op = Signal(p)  # a free-running copy of R: the multipliers' operand register
        m.d.sync += recip_op.eq(recip)
        # the buffer's output, registered: a block RAM's clock-to-output time (5.8 ns on
        # ECP5 without its own output register) leaves no room for logic behind it. Without
        # enable or reset, so that the ECP5 flow moves it into the block RAM's output
        # register (mmfree.flow.ecp5_bram)
        read = Signal(data.ArrayLayout(lane, n), reset_less=True)
        m.d.sync += read.eq(rd.data)
        q_next = []
        for i in range(n):
            # q1: the buffer read, q2: its register, q3: coarse shift, q4: fine shift (a_i),
            # q5: a_i's copy, q6: a_i * R, q7: its copy, q8: rounded, into the queue. The copy
            # of a_i is the multiplier's operand register (the ECP5 flow moves it into the
            # DSP block): the route into the block starts from a flip-flop, not after the shift
            _, a_i = shift_right_staged(m, read[i].mag << (p - 1), lead_a, p, f"a{i}")
            neg = [Signal(name=f"q{k}_neg{i}") for k in range(3, stages)]
            m.d.sync += [neg[0].eq(read[i].neg),
                         *(a.eq(b) for a, b in zip(neg[1:], neg[:-1], strict=True))]
            # the product from its rounding bit (f - 1) up: 2P - f + 1 = 9 bits
            a_op = Signal(p, name=f"q5_a{i}")
            scaled = Signal(2 * p - f + 1, name=f"q6_prod{i}")
            top = Signal(2 * p - f + 1, name=f"q7_prod{i}")
            m.d.sync += [a_op.eq(a_i), scaled.eq((a_op * recip_op)[f - 1:]), top.eq(scaled)]
            # round half away from zero on the magnitude, with the sign, in one adder: with
            # t = top = floor(a R / 2**(f-1)), the rounded magnitude is (t + 1) >> 1 and its
            # negation -((t + 1) >> 1) = (-t) >> 1 = (~t + 1) >> 1 (arithmetic shift), so
            # q = ((t ^ sign) + 1) >> 1: one carry chain after the XOR. min(127, .) never
            # acts: a_i <= Â, so a_i R <= Â R <= 127 * 2**f and the magnitude is <= 127.
            flip = Signal(len(top) + 1, name=f"q_flip{i}")
            m.d.comb += flip.eq(Cat(top, Const(0, 1)) ^ neg[-1].replicate(len(top) + 1))
            q = Signal(signed(ACT_BITS), name=f"q_out{i}")  # registered: the queue's
            m.d.sync += q.eq((flip + 1)[1:ACT_BITS + 1])  # LUT RAM write follows
            q_next.append(q)
        m.d.comb += [outq.take.eq(issue), outq.put.eq(qv[-1]), outq.data.last.eq(ql[-1]),
                     *(outq.data.data[i].eq(q_next[i]) for i in range(n))]

        # --- control -----------------------------------------------------------------------
        with m.If(self.scale.ready):
            m.d.sync += self.scale.valid.eq(0)
        with m.If(st["load"]):
            m.d.comb += self.x.ready.eq(~ResetSignal())
            m.d.comb += ends.eq(self.x.payload.last | full)
            with m.If(fire):
                m.d.sync += [count.eq(count + 1),
                             full.eq(count == Const(groups - 2, len(count)) if groups > 1
                                     else 1)]
                with m.If(ends):
                    m.d.sync += [groups_m1.eq(count), groups_m2.eq(count - 1), count.eq(0),
                                 full.eq(groups == 1),
                                 rlast.eq(rcount == count), *goto("load", "drain")]
                    with m.If(~self.x.payload.last):
                        m.d.sync += self.truncated.eq(1)
        with m.If(st["drain"] & a_done[2]):  # the last group's A is in amax at this edge
            m.d.sync += goto("drain", "lod")
        with m.If(st["lod"]):  # the slices' leading ones load at this edge
            m.d.sync += goto("lod", "prep")
        with m.If(st["prep"]):
            m.d.sync += [lead_a.eq(lead_a_next), lead_n.eq(lead_n_next), zero.eq(~a_nonzero),
                         *goto("prep", "coarse")]
        with m.If(st["coarse"]):
            # with b = bit_length(N) = lead_n + 1: E = L - ceil(b / 2)
            # = lead_a - floor(lead_n / 2) (needed only at the scale output)
            lead_s, half_s = Signal(signed(ew + 1)), Signal(signed(ew + 1))
            m.d.comb += [lead_s.eq(lead_a), half_s.eq(lead_n[1:])]
            m.d.sync += [exp.eq(Mux(zero, 0, lead_s - half_s)), *goto("coarse", "fine")]
        with m.If(st["fine"]):
            m.d.sync += goto("fine", "start")
        with m.If(st["start"]):
            m.d.comb += [recip_div.start.eq(1), root_div.start.eq(1)]
            m.d.sync += goto("start", "divide")
        with m.If(st["divide"] & ~recip_div.busy & ~root_div.busy):
            m.d.sync += [recip.eq(recip_div.quotient[:p]), *goto("divide", "root")]
            m.d.comb += isqrt.start.eq(1)
        with m.If(st["root"] & ~isqrt.busy):
            m.d.sync += goto("root", "mul1")
        with m.If(st["mul1"]):
            m.d.sync += goto("mul1", "mul2")
        with m.If(st["mul2"]):
            m.d.sync += [self.scale.valid.eq(1),
                         self.scale.payload.scale.eq(scale_prod),
                         self.scale.payload.exp.eq(exp), *goto("mul2", "emit")]
        with m.If(st["emit"] & self.scale.ready):
            m.d.sync += goto("emit", "quant")
        with m.If(issue):
            # rcount + 1 == groups_m1 (rcount < groups_m1 here: no wrap)
            m.d.sync += [rcount.eq(rcount + 1), rlast.eq(rcount == groups_m2)]
            with m.If(rlast):  # last group read: the next vector may load
                m.d.sync += [rcount.eq(0), rlast.eq(~groups_m1.any()), turn.eq(0),
                             *(acc.eq(0) for acc in accs), sumsq.eq(0),
                             *goto("quant", "load")]
        return m


_STATES = ("load", "drain", "lod", "prep", "coarse", "fine", "start", "divide", "root", "mul1",
           "mul2", "emit", "quant")
