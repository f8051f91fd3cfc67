"""The whole-token engine's scalar unit: the per-vector steps of the fixed-point contract."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import check_int
from ..spec.engine import scalar_cycles
from ._arith import leading_one
from .serial_divider import SerialDivider
from .serial_isqrt import SerialIsqrt

__all__ = ["EXP_BITS", "ScalarUnit"]

EXP_BITS = 12  #: signed width of every exponent and shift the unit takes or returns


class ScalarUnit(wiring.Component):
    """``sc_rmsnorm_scale`` and ``sc_rescale`` of :mod:`mmfree.golden.hgrn_fixed`, bit-exact
    (``rescale = 0``: RMSNorm, ``1``: BitLinear rescale).

    * RMSNorm: ``n = sumsq + eps_q``; ``n`` normalised by an even shift (its leading one)
      to ``N'`` of ``2Q`` bits; ``r = isqrt(floor(2**(4Q-4) / N'))`` (a
      :class:`~mmfree.hdl.serial_divider.SerialDivider`, ``2Q - 1`` quotient bits, and a
      :class:`~mmfree.hdl.serial_isqrt.SerialIsqrt`); ``(g, ge) = normalise(r * k_m)``;
      ``shift = 2Q - 2 + t + k_e - ge - out_frac``. ``n = 0`` gives ``(0, 0)``.
    * Rescale: ``(d, d_e) = normalise(D)``, ``(g, g_e) = normalise(d * c_m)``,
      ``shift = S + c_e - E - d_e - g_e - out_frac`` (``S`` = ``bitlinear_s``, the front
      end's rsqrt fraction bits). ``D = 0`` gives ``(0, 0)``.

    ``normalise(v)`` is ``sc_normalise(v, scale_bits)``: the top ``scale_bits`` bits from
    the leading one, and the exponent.

    Ports: ``start`` in (pulse, taken while ``busy`` is low, with the operands), ``rescale``,
    ``sumsq``, ``eps``, ``k_m``, ``k_e``, ``d``, ``e``, ``c_m``, ``c_e``, ``out_frac`` in;
    ``busy`` out; ``g`` and ``shift`` out, valid from the cycle ``busy`` falls until the
    next start. Timing: ``busy`` is high for :meth:`cycles` cycles. Synchronous reset
    stops it.

    Verified bit-exact in the Amaranth simulator (``tests/hdl/test_scalar_unit.py``); one-hot
    states and equal-width exponent sums keep Verilator's width warnings away (they are
    fatal in co-simulation builds).
    """

    def __init__(self, *, sumsq_width: int, scale_width: int, rsqrt_bits: int = 17,
                 scale_bits: int = 17, bitlinear_s: int = 32) -> None:
        self.sumsq_width = check_int("sumsq_width", sumsq_width, 2, 96)
        self.scale_width = check_int("scale_width", scale_width, 2, 64)
        self.rsqrt_bits = check_int("rsqrt_bits", rsqrt_bits, 6, 24)
        self.scale_bits = check_int("scale_bits", scale_bits, 8, 24)
        self.bitlinear_s = check_int("bitlinear_s", bitlinear_s, 0, 64)
        e = signed(EXP_BITS)
        super().__init__({
            "start": In(1), "rescale": In(1),
            "sumsq": In(sumsq_width), "eps": In(sumsq_width),
            "k_m": In(scale_bits), "k_e": In(e),
            "d": In(scale_width), "e": In(e),
            "c_m": In(scale_bits), "c_e": In(e),
            "out_frac": In(6),
            "busy": Out(1),
            "g": Out(scale_bits), "shift": Out(e),
        })

    def cycles(self, rescale: bool) -> int:
        """Cycles ``busy`` stays high after the start cycle
        (:func:`mmfree.spec.engine.scalar_cycles`)."""
        return scalar_cycles(rescale, self.rsqrt_bits)

    def _normalise(self, m: Module, v: Signal, name: str) -> tuple[Signal, Signal]:
        """``(top scale_bits bits of v from its leading one, position of the leading one)``;
        comb."""
        b = self.scale_bits
        pos = Signal(range(max(len(v), 2)), name=f"{name}_pos")
        m.d.comb += pos.eq(leading_one(m, v, name))
        wide = Signal(len(v) + b - 1, name=f"{name}_wide")
        m.d.comb += wide.eq(Cat(Const(0, b - 1), v))
        top = Signal(b, name=f"{name}_top")
        m.d.comb += top.eq(wide >> pos)
        return top, pos

    def elaborate(self, platform: object) -> Module:
        m = Module()
        q, b, nw = self.rsqrt_bits, self.scale_bits, self.sumsq_width + 1
        m.submodules.div = div = SerialDivider(2 * q - 1, 2 * q)
        m.submodules.root = root = SerialIsqrt(2 * q - 1)
        ew = signed(EXP_BITS)

        n = Signal(nw)
        nn = Signal(2 * q)
        r = Signal(q)
        v = Signal(2 * b + max(q, self.scale_width))  # the product to normalise
        first = Signal(b)  # d (rescale)
        # The shift is a constant plus leading-one positions and exponents (module
        # docstring, with t = floor(pos_n / 2) + 1 - Q, d_e = pos_d + 1 - B,
        # ge = pos_v + 1 - B): rescale S + 2B - 2 + c_e - E - pos_d - pos_v - out_frac,
        # RMSNorm Q - 2 + B + floor(pos_n / 2) + k_e - pos_v - out_frac. Every term is an
        # EXP_BITS register, so every adder has operands of one width.
        base = Signal(ew)
        pos1 = Signal(ew)  # pos_d, or -floor(pos_n / 2)
        pos2 = Signal(ew)  # pos_v
        g = Signal(b)
        shift = Signal(ew)
        zero = Signal()
        m.d.comb += [self.g.eq(Mux(zero, 0, g)), self.shift.eq(Mux(zero, 0, shift))]
        rescale = Signal()
        ops = {k: Signal(ew if k in ("k_e", "e", "c_e", "out_frac") else len(getattr(self, k)),
                         name=f"op_{k}")
               for k in ("k_m", "k_e", "d", "e", "c_m", "c_e", "out_frac")}

        n_top, n_pos = Signal(2 * q), Signal(range(nw))
        m.d.comb += n_pos.eq(leading_one(m, n, "n"))
        n_wide = Signal(nw + 2 * q - 2)
        m.d.comb += [n_wide.eq(Cat(Const(0, 2 * q - 2), n)),
                     n_top.eq(n_wide >> Cat(Const(0, 1), n_pos[1:]))]  # pos, low bit cleared
        d_top, d_pos = self._normalise(m, ops["d"], "d")
        v_top, v_pos = self._normalise(m, v, "v")

        # one-hot states (no state-number compares)
        names = ("idle", "first", "div_start", "divide", "root", "product", "normalise",
                 "shift")
        st = {k: Signal(name=f"st_{k}", init=k == "idle") for k in names}

        def goto(frm: str, to: str) -> list:
            return [st[frm].eq(0), st[to].eq(1)]

        with m.If(st["idle"] & self.start):
            m.d.sync += [n.eq(self.sumsq + self.eps), rescale.eq(self.rescale),
                         *(sig.eq(getattr(self, k)) for k, sig in ops.items()),
                         *goto("idle", "first")]
            with m.If(self.rescale):
                m.d.sync += base.eq(self.bitlinear_s + 2 * b - 2)
            with m.Else():
                m.d.sync += base.eq(q - 2 + b)
        with m.If(st["first"]):
            with m.If(rescale):  # d (zero D gives (0, 0))
                m.d.sync += [first.eq(d_top), zero.eq(~ops["d"].any()), pos1.eq(d_pos),
                             *goto("first", "product")]
            with m.Else():  # N' and t (zero n gives (0, 0))
                m.d.sync += [nn.eq(n_top), zero.eq(~n.any()), pos1.eq(-(n_pos[1:])),
                             *goto("first", "div_start")]
        with m.If(st["div_start"]):
            m.d.comb += [div.start.eq(1), div.dividend.eq(0), div.divisor.eq(nn),
                         div.high.eq(1 << (2 * q - 3))]
            m.d.sync += goto("div_start", "divide")
        with m.If(st["divide"] & ~div.busy):
            m.d.comb += [root.start.eq(1), root.radicand.eq(div.quotient)]
            m.d.sync += goto("divide", "root")
        with m.If(st["root"] & ~root.busy):
            m.d.sync += [r.eq(root.root), *goto("root", "product")]
        with m.If(st["product"]):
            m.d.sync += [v.eq(Mux(rescale, first * ops["c_m"], r * ops["k_m"])),
                         *goto("product", "normalise")]
        with m.If(st["normalise"]):
            m.d.sync += [g.eq(v_top), pos2.eq(v_pos), *goto("normalise", "shift")]
        with m.If(st["shift"]):
            terms = [base, Mux(rescale, ops["c_e"], ops["k_e"]), Mux(rescale, ops["e"], 0),
                     pos1, pos2, ops["out_frac"]]
            signs = [1, 1, -1, -1, -1, -1]
            acc = terms[0]
            for k, (term, sign) in enumerate(zip(terms[1:], signs[1:], strict=True)):
                t = Signal(ew, name=f"term{k}")
                nxt = Signal(ew, name=f"sum{k}")
                m.d.comb += [t.eq(term), nxt.eq(acc + t if sign > 0 else acc - t)]
                acc = nxt
            m.d.sync += [shift.eq(acc), *goto("shift", "idle")]
        m.d.comb += self.busy.eq(~st["idle"])
        return m
