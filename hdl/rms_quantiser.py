"""Fused RMSNorm + absmax int8 quantiser: the BitLinear front end, in fixed point."""

from __future__ import annotations

from amaranth import Const, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.quantiser import Q_MAX, recip_width, rsqrt_dividend_width, scale_width
from ..spec.bitlinear_unit import ACT_BITS, QUANTISER_TREE_LEVELS_PER_STAGE, RmsQuantiserSpec
from ._arith import adder_levels, tree_depth
from .credit_queue import CreditQueue
from .serial_divider import SerialDivider
from .serial_isqrt import SerialIsqrt

__all__ = ["RmsAbsmaxQuantiser", "sumsq_width", "vector_layout"]


def vector_layout(width: int, lanes: int) -> data.StructLayout:
    """A lane group of a vector: ``lanes`` signed ``width``-bit elements (lane 0 lowest)
    and ``last``, set on the vector's final group."""
    return data.StructLayout({"data": data.ArrayLayout(signed(width), lanes), "last": 1})


def sumsq_width(in_width: int, max_dim: int) -> int:
    """Bits of ``N = sum m_i**2`` over up to ``max_dim`` elements (``m_i**2 <= 2**(2w-2)``)."""
    return 2 * in_width - 1 + (max_dim - 1).bit_length()


class RmsAbsmaxQuantiser(wiring.Component):
    """RMSNorm followed by per-vector absmax int8 quantisation, fused, in fixed point.

    Computes, for one vector of signed ``in_width``-bit mantissas ``m`` (the host's
    block-floating-point form of BitLinear's input), the int8 activations ``q`` and the
    dequantisation scale ``D``, bit-exactly as :func:`mmfree.golden.quantiser.quantise`
    defines them (the module docstring there derives why RMSNorm's reciprocal square root
    only enters ``D``): ``A = max|m_i|``, ``N = sum m_i**2``,
    ``R = floor(127 * 2**recip_frac / A)``, ``r = isqrt(floor(2**(2*rsqrt_frac) / N))``,
    ``q_i = clamp(floor((m_i * R + 2**(recip_frac-1)) / 2**recip_frac), -128, 127)``
    (round half up), ``D = A * r``.

    Ports (valid/ready streams; Verilog names ``x__valid``, ``x__ready``, ``x__payload`` ...):

    * ``x``: in, :func:`vector_layout` (``in_width``, ``lanes``): one lane group per transfer,
      ``last`` on the vector's final group. A vector is ``1 .. ceil(max_dim / lanes)`` groups;
      pad a partial final group with zeros (they change neither ``A`` nor ``N``).
    * ``q``: out, :func:`vector_layout` (8, ``lanes``): the int8 groups, in input order, ``last``
      on the final one.
    * ``scale``: out, unsigned ``D`` (:func:`mmfree.golden.quantiser.scale_width` bits), one
      per vector, before its ``q`` groups.
    * ``truncated``: out, sticky until reset: a vector reached ``ceil(max_dim / lanes)``
      groups without ``last``; it was ended there (its quantised groups are still emitted).

    Timing, per vector of ``G`` groups: ``x`` is ready in the load phase and takes one group
    per cycle into a buffer of ``ceil(max_dim / lanes)`` words, while a free-running
    pipeline (register the group; magnitudes and squares; the max and adder trees, registered
    every two levels: :attr:`~mmfree.spec.RmsQuantiserSpec.tree_stages`) feeds the ``A`` and
    ``N`` accumulators. From the last group's transfer a fixed :attr:`overhead`
    (:attr:`mmfree.spec.RmsQuantiserSpec.overhead`) cycles (the pipeline's drain,
    two restoring dividers in parallel, a bit-serial square root) pass until ``scale`` is
    valid; after its transfer the ``G`` groups are read back through a free-running pipeline
    (buffer read, multiply by ``R``, round and clamp) into a small output queue
    (:class:`~mmfree.hdl.credit_queue.CreditQueue`: a group is read only while the queue has
    room for it, so no enable fans out from ``q.ready``); they leave one per cycle while
    ``q`` is ready, the first 4 cycles after the ``scale`` transfer
    (:meth:`mmfree.spec.RmsQuantiserSpec.vector_cycles`).
    ``x`` is not ready from the last group's transfer until the last group has been read
    back: one vector at a time in the buffer (the next may load while the last ``q`` groups
    drain). The counts do not depend on the data.
    Synchronous reset returns to the load phase, discards a partial vector and clears
    ``truncated``; ``x.ready`` is low while ``rst`` is high.

    Parameters, their limits and defaults: :class:`mmfree.spec.RmsQuantiserSpec`
    (:attr:`spec`).
    """

    def __init__(self, lanes: int = RmsQuantiserSpec.lanes,
                 max_dim: int = RmsQuantiserSpec.max_dim,
                 in_width: int = RmsQuantiserSpec.in_width,
                 recip_frac: int = RmsQuantiserSpec.recip_frac,
                 rsqrt_frac: int = RmsQuantiserSpec.rsqrt_frac) -> None:
        self.spec = RmsQuantiserSpec(lanes=lanes, max_dim=max_dim, in_width=in_width,
                                     recip_frac=recip_frac, rsqrt_frac=rsqrt_frac).validate()
        self.lanes, self.max_dim, self.in_width = lanes, max_dim, in_width
        self.recip_frac, self.rsqrt_frac = recip_frac, rsqrt_frac
        self.max_groups = -(-max_dim // lanes)
        self.overhead = self.spec.overhead
        super().__init__({
            "x": In(stream.Signature(vector_layout(in_width, lanes))),
            "q": Out(stream.Signature(vector_layout(ACT_BITS, lanes))),
            "scale": Out(stream.Signature(unsigned(scale_width(in_width, rsqrt_frac)))),
            "truncated": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        n, w, p = self.lanes, self.in_width, self.recip_frac
        rw = recip_width(p)
        nw = sumsq_width(w, self.max_dim)
        sw = scale_width(w, self.rsqrt_frac)
        m.submodules.recip_div = recip_div = SerialDivider(rw, w)
        m.submodules.root_div = root_div = SerialDivider(
            rsqrt_dividend_width(self.rsqrt_frac), nw)
        m.submodules.isqrt = isqrt = SerialIsqrt(rsqrt_dividend_width(self.rsqrt_frac))
        m.submodules.buf = buf = memory.Memory(
            shape=data.ArrayLayout(signed(w), n), depth=self.max_groups, init=[])
        wr = buf.write_port()
        rd = buf.read_port(domain="comb")

        amax = Signal(w)  # |m_i| <= 2**(w-1) fits w unsigned bits
        sumsq = Signal(nw)
        count = Signal(range(self.max_groups))
        groups_m1 = Signal(range(self.max_groups))  # G - 1 of the vector being emitted
        recip = Signal(rw)
        # One-hot phase flags (no state encoding: nothing to compare against constants).
        st = {name: Signal(name=f"phase_{name}", init=name == "load") for name in _STATES}

        def goto(src: str, dst: str) -> list:
            return [st[src].eq(0), st[dst].eq(1)]

        # Load pipeline (free-running, one group per cycle): L0 registers the incoming group,
        # L1 its magnitudes and squares, L2 their max and sum, L3 accumulates A and N.
        # Every operator gets operands of one width, so the Verilog lints clean.
        group = self.x.payload.data
        fire = self.x.valid & self.x.ready
        g0 = Signal(data.ArrayLayout(signed(w), n))
        v0, last0, v1, last1, v2, last2 = (Signal(name=nm) for nm in
                                           ("l0_valid", "l0_last", "l1_valid", "l1_last",
                                            "l2_valid", "l2_last"))
        mags1 = [Signal(w, name=f"l1_mag{i}") for i in range(n)]
        sq1 = [Signal(signed(2 * w), name=f"l1_sq{i}") for i in range(n)]
        m.d.sync += [v0.eq(fire), v1.eq(v0), last1.eq(last0)]
        with m.If(fire):
            m.d.sync += g0.eq(group)
        for i in range(n):
            m.d.sync += [mags1[i].eq(Mux(g0[i][-1], (-g0[i])[:w], g0[i].as_unsigned())),
                         sq1[i].eq(g0[i] * g0[i])]
        # The max and adder trees, registered every QUANTISER_TREE_LEVELS_PER_STAGE levels.
        mags, sums, valid, last, done = list(mags1), list(sq1), v1, last1, 0
        tree_w = 2 * w + (n - 1).bit_length()
        for stage in range(self.spec.tree_stages):
            final = stage == self.spec.tree_stages - 1
            levels = tree_depth(n) - done if final else QUANTISER_TREE_LEVELS_PER_STAGE
            for level in range(done, done + levels):
                nxt = []
                for j in range(0, len(mags) - 1, 2):
                    big = Signal(w, name=f"max{level}_{j // 2}")
                    m.d.comb += big.eq(Mux(mags[j] > mags[j + 1], mags[j], mags[j + 1]))
                    nxt.append(big)
                mags = nxt + ([mags[-1]] if len(mags) % 2 else [])
            sums = adder_levels(m, sums, tree_w, levels, name=f"sqsum{stage}",
                                first_level=done + 1)
            done += levels
            if final:
                break
            sv, sl = Signal(name=f"t{stage}_valid"), Signal(name=f"t{stage}_last")
            mags_r = [Signal(w, name=f"t{stage}_max{j}") for j in range(len(mags))]
            sums_r = [Signal(signed(len(v)), name=f"t{stage}_sum{j}") for j, v in enumerate(sums)]
            m.d.sync += [sv.eq(valid), sl.eq(last),
                         *(r.eq(v) for r, v in zip(mags_r + sums_r, mags + sums, strict=True))]
            mags, sums, valid, last = mags_r, sums_r, sv, sl
        tree = sums[0]
        m.d.sync += [v2.eq(valid), last2.eq(last)]
        gmax2, gsum2 = Signal(w), Signal(nw)
        # (a multiplexer, not a bare extension, keeps the accumulator's operands equally wide;
        # the sum is non-negative, so its always-zero top bits may be dropped)
        m.d.sync += [gmax2.eq(mags[0]),
                     gsum2.eq(Mux(valid, tree[:min(len(tree), nw)], Const(0, nw)))]
        with m.If(v2):
            m.d.sync += [amax.eq(Mux(gmax2 > amax, gmax2, amax)), sumsq.eq(sumsq + gsum2)]

        m.d.comb += [
            recip_div.dividend.eq(Q_MAX << p),
            recip_div.divisor.eq(amax),
            root_div.dividend.eq(1 << (2 * self.rsqrt_frac)),
            root_div.divisor.eq(sumsq),
            isqrt.radicand.eq(root_div.quotient),
            wr.addr.eq(count),
            wr.data.eq(group),
            rd.addr.eq(count),
        ]

        # Quantise pipeline, free-running (no enable fans out to its registers): Q0 reads
        # the buffer, Q1 multiplies by R, Q2 rounds half up and clamps into the q register.
        m.submodules.outq = outq = CreditQueue(vector_layout(ACT_BITS, n), CreditQueue.depth_for(3))
        # (a group read in cycle t leaves on q in cycle t + 3 at the earliest)
        wiring.connect(m, outq.o, wiring.flipped(self.q))
        pw = w + rw + 1
        recip_x = Signal(signed(pw))
        m.d.comb += recip_x.eq(recip)
        qv1, qlast1, qv2, qlast2 = (Signal(name=nm) for nm in
                                    ("q1_valid", "q1_last", "q2_valid", "q2_last"))
        rd1 = Signal(data.ArrayLayout(signed(w), n))
        sw_q = pw - p + 1  # the scaled value, one bit wider for the rounding carry
        q_next = []
        issue = st["quant"] & outq.may_take  # a credit: the queue has room for its result
        m.d.sync += [qv1.eq(issue), qlast1.eq(count == groups_m1), rd1.eq(rd.data),
                     qv2.eq(qv1), qlast2.eq(qlast1)]
        for i in range(n):
            # the product from its rounding bit (p - 1) up; the bits below never matter
            mx, prod = Signal(signed(pw), name=f"mx{i}"), Signal(pw - p + 1, name=f"prod{i}")
            m.d.comb += mx.eq(rd1[i])
            m.d.sync += prod.eq((mx * recip_x)[p - 1:])
            # floor((v + 2**(p-1)) / 2**p) = floor(v / 2**p) + bit p-1 of v
            rounded = Signal(signed(sw_q), name=f"rounded{i}")
            m.d.comb += rounded.eq(prod[1:].as_signed()
                                   + Mux(prod[0], Const(1, signed(pw - p)),
                                         Const(0, signed(pw - p))))
            top = rounded[7:]  # all equal to the sign bit iff the value fits in int8
            fits = ~top.any() | top.all()
            q_next.append(Mux(fits, rounded[:8], Mux(rounded[-1], Const(0x80, 8),
                                                     Const(0x7F, 8))))
        m.d.comb += [outq.take.eq(issue), outq.put.eq(qv2), outq.data.last.eq(qlast2),
                     *(outq.data.data[i].eq(q_next[i]) for i in range(n))]

        amax_x, root_x, scale = Signal(sw), Signal(sw), Signal(sw)
        m.d.comb += [amax_x.eq(amax), root_x.eq(isqrt.root), scale.eq(amax_x * root_x)]

        with m.If(self.scale.ready):
            m.d.sync += self.scale.valid.eq(0)

        m.d.sync += last0.eq(0)
        with m.If(st["load"]):
            m.d.comb += self.x.ready.eq(~ResetSignal())
            with m.If(fire):
                m.d.comb += wr.en.eq(1)
                m.d.sync += count.eq(count + 1)
                end = count == Const(self.max_groups - 1, len(count))
                with m.If(self.x.payload.last | end):
                    m.d.sync += [groups_m1.eq(count), count.eq(0), last0.eq(1),
                                 *goto("load", "drain")]
                    with m.If(~self.x.payload.last):
                        m.d.sync += self.truncated.eq(1)
        with m.If(st["drain"] & v2 & last2):  # the last group's A and N are in this edge
            m.d.sync += goto("drain", "start")
        with m.If(st["start"]):
            m.d.comb += [recip_div.start.eq(1), root_div.start.eq(1)]
            m.d.sync += goto("start", "divide")
        with m.If(st["divide"] & ~recip_div.busy & ~root_div.busy):
            m.d.sync += [recip.eq(recip_div.quotient), *goto("divide", "root")]
            m.d.comb += isqrt.start.eq(1)
        with m.If(st["root"] & ~isqrt.busy):
            m.d.sync += [self.scale.valid.eq(1), self.scale.payload.eq(scale),
                         *goto("root", "emit")]
        with m.If(st["emit"] & self.scale.ready):
            m.d.sync += goto("emit", "quant")
        with m.If(issue):
            m.d.sync += count.eq(count + 1)
            with m.If(count == groups_m1):  # last group read: the next vector may load
                m.d.sync += [count.eq(0), amax.eq(0), sumsq.eq(0), *goto("quant", "load")]
        return m


_STATES = ("load", "drain", "start", "divide", "root", "emit", "quant")
