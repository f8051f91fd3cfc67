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

    Verified bit-exact in the Amaranth simulator (``tests/hdl/test_scalar_unit.py``); not
    yet lint-clean under Verilator ``-Wall`` (the ``m.FSM`` state compares and the exponent
    sums have operands of unequal widths), which the engine's Verilator co-simulation needs.
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
        t = Signal(ew)  # the even shift's half: N' = n * 4**-t
        r = Signal(q)
        v = Signal(2 * b + max(q, self.scale_width))  # the product to normalise
        first = Signal(b)  # d (rescale)
        first_e = Signal(ew)  # d_e (rescale) or t (RMSNorm), folded into the shift
        g = Signal(b)
        shift = Signal(ew)
        zero = Signal()
        m.d.comb += [self.g.eq(Mux(zero, 0, g)), self.shift.eq(Mux(zero, 0, shift))]
        rescale = Signal()
        ops = {k: Signal.like(getattr(self, k), name=f"op_{k}")
               for k in ("k_m", "k_e", "d", "e", "c_m", "c_e", "out_frac")}

        n_top, n_pos = Signal(2 * q), Signal(range(nw))
        m.d.comb += n_pos.eq(leading_one(m, n, "n"))
        n_wide = Signal(nw + 2 * q - 2)
        m.d.comb += [n_wide.eq(Cat(Const(0, 2 * q - 2), n)),
                     n_top.eq(n_wide >> Cat(Const(0, 1), n_pos[1:]))]  # pos, low bit cleared
        d_top, d_pos = self._normalise(m, ops["d"], "d")
        v_top, v_pos = self._normalise(m, v, "v")

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [n.eq(self.sumsq + self.eps), rescale.eq(self.rescale),
                                 *(sig.eq(getattr(self, k)) for k, sig in ops.items())]
                    m.next = "FIRST"
            with m.State("FIRST"):
                with m.If(rescale):  # d, d_e; zero D gives (0, 0)
                    m.d.sync += [first.eq(d_top), zero.eq(~ops["d"].any()),
                                 first_e.eq(d_pos + 1 - b)]
                    m.next = "PRODUCT"
                with m.Else():  # N' and t
                    m.d.sync += [nn.eq(n_top), zero.eq(~n.any()),
                                 t.eq((n_pos >> 1) + 1 - q)]
                    m.next = "DIV_START"
            with m.State("DIV_START"):
                m.d.comb += [div.start.eq(1), div.dividend.eq(0), div.divisor.eq(nn),
                             div.high.eq(1 << (2 * q - 3))]
                m.next = "DIVIDE"
            with m.State("DIVIDE"):
                with m.If(~div.busy):
                    m.d.comb += [root.start.eq(1), root.radicand.eq(div.quotient)]
                    m.next = "ROOT"
            with m.State("ROOT"):
                with m.If(~root.busy):
                    m.d.sync += [r.eq(root.root), first_e.eq(t)]
                    m.next = "PRODUCT"
            with m.State("PRODUCT"):
                m.d.sync += v.eq(Mux(rescale, first * ops["c_m"], r * ops["k_m"]))
                m.next = "NORMALISE"
            with m.State("NORMALISE"):
                m.d.sync += [g.eq(v_top), shift.eq(v_pos + 1 - b)]
                m.next = "SHIFT"
            with m.State("SHIFT"):  # shift holds ge here
                s = Signal(ew)
                with m.If(rescale):
                    m.d.comb += s.eq(self.bitlinear_s + ops["c_e"] - ops["e"] - first_e
                                     - shift - ops["out_frac"])
                with m.Else():
                    m.d.comb += s.eq(2 * q - 2 + first_e + ops["k_e"] - shift
                                     - ops["out_frac"])
                m.d.sync += shift.eq(s)
                m.next = "IDLE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
