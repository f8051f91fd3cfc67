"""The whole-token engine's scalar unit: the per-vector steps of the fixed-point contract."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import check_int
from ..spec.engine import scalar_cycles
from ._arith import leading_one_staged
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
    next start. Timing: ``busy`` is high for :meth:`cycles` cycles (9 for a rescale,
    ``3Q + 11`` for an RMSNorm scale). Built for a 150 MHz ECP5 clock: no cycle holds more
    than one carry chain, one step of a leading-one search or one normalising shift.
    Synchronous reset stops it.

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

    def elaborate(self, platform: object) -> Module:
        m = Module()
        q, b, nw = self.rsqrt_bits, self.scale_bits, self.sumsq_width + 1
        m.submodules.div = div = SerialDivider(2 * q - 1, 2 * q)
        m.submodules.root = root = SerialIsqrt(2 * q - 1)
        ew = signed(EXP_BITS)
        mw = max(q, b)  # the product's first operand: d's top bits, or the root

        n = Signal(nw)
        nn = Signal(2 * q)
        ma, mb = Signal(mw), Signal(b)  # the product's operands
        # the multiplier's operand and product registers load every cycle, so that they can
        # be the DSP block's own (mmfree.flow.ecp5_dsp); v follows ma * mb three cycles later
        pa, pb = Signal(mw), Signal(b)
        vp = Signal(mw + b)
        v = Signal(mw + b)  # the product to normalise
        m.d.sync += [pa.eq(ma), pb.eq(mb), vp.eq(pa * pb), v.eq(vp)]
        g = Signal(b)
        shift = Signal(ew)
        zero = Signal()
        m.d.comb += [self.g.eq(Mux(zero, 0, g)), self.shift.eq(Mux(zero, 0, shift))]
        rescale = Signal()
        ops = {k: Signal(ew if k in ("k_e", "e", "c_e", "out_frac") else len(getattr(self, k)),
                         name=f"op_{k}")
               for k in ("k_m", "k_e", "d", "e", "c_m", "c_e", "out_frac")}

        # The leading ones of n, d and v in two steps each (a registered per-slice search,
        # then the pick of the highest slice, registered again), and the normalising shift
        # in the cycle after: no cycle holds a whole priority encoder and a barrel shifter.
        n_lead, _ = leading_one_staged(m, n, "n")
        d_lead, _ = leading_one_staged(m, ops["d"], "d")
        v_lead, _ = leading_one_staged(m, v, "v")
        n_pos, d_pos, v_pos = (Signal.like(x, name=f"{k}_pos_r") for k, x in
                               (("n", n_lead), ("d", d_lead), ("v", v_lead)))
        n_wide = Signal(nw + 2 * q - 2)
        n_top = Signal(2 * q)
        m.d.comb += [n_wide.eq(Cat(Const(0, 2 * q - 2), n)),
                     n_top.eq(n_wide >> Cat(Const(0, 1), n_pos[1:]))]  # pos, low bit cleared
        d_top, v_top = Signal(b), Signal(b)
        m.d.comb += [d_top.eq(Cat(Const(0, b - 1), ops["d"]) >> d_pos),
                     v_top.eq(Cat(Const(0, b - 1), v) >> v_pos)]

        # The shift is a constant plus leading-one positions and exponents (module
        # docstring, with t = floor(pos_n / 2) + 1 - Q, d_e = pos_d + 1 - B,
        # ge = pos_v + 1 - B): rescale S + 2B - 2 + c_e - E - pos_d - pos_v - out_frac,
        # RMSNorm Q - 2 + B + floor(pos_n / 2) + k_e - pos_v - out_frac. Every term is an
        # EXP_BITS register and each state adds at most one of them (one carry chain per
        # cycle): s1 = base + (c_e | k_e) in FIRST; s2 = s1 - (E | 0) and
        # p1 = pos1 + out_frac in PRODUCT; s3 = s2 - p1 in MUL2; shift = s3 - pos_v in
        # NORMALISE.
        base, pos1, s1, s2, p1, s3 = (Signal(ew, name=nm) for nm in
                                      ("base", "pos1", "s1", "s2", "p1", "s3"))
        pos2 = Signal(ew)
        exp_c, exp_e = Signal(ew), Signal(ew)  # c_e | k_e, and E | 0 (operands of one width)
        m.d.comb += [exp_c.eq(Mux(rescale, ops["c_e"], ops["k_e"])),
                     exp_e.eq(Mux(rescale, ops["e"], 0))]

        # one-hot states (no state-number compares)
        names = ("idle", "lead_nd", "pos_nd", "first", "div_start", "divide", "root",
                 "product", "mul2", "mul3", "lead_v", "pos_v", "normalise")
        st = {k: Signal(name=f"st_{k}", init=k == "idle") for k in names}

        def goto(frm: str, to: str) -> list:
            return [st[frm].eq(0), st[to].eq(1)]

        with m.If(st["idle"] & self.start):
            m.d.sync += [n.eq(self.sumsq + self.eps), rescale.eq(self.rescale),
                         *(sig.eq(getattr(self, k)) for k, sig in ops.items()),
                         *goto("idle", "lead_nd")]
            with m.If(self.rescale):
                m.d.sync += base.eq(self.bitlinear_s + 2 * b - 2)
            with m.Else():
                m.d.sync += base.eq(q - 2 + b)
        with m.If(st["lead_nd"]):  # the slice searches of n and d load
            m.d.sync += goto("lead_nd", "pos_nd")
        with m.If(st["pos_nd"]):
            m.d.sync += [n_pos.eq(n_lead), d_pos.eq(d_lead), *goto("pos_nd", "first")]
        with m.If(st["first"]):
            m.d.sync += s1.eq(base + exp_c)
            with m.If(rescale):  # d (zero D gives (0, 0))
                m.d.sync += [ma.eq(d_top), mb.eq(ops["c_m"]), zero.eq(~ops["d"].any()),
                             pos1.eq(d_pos), *goto("first", "product")]
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
            m.d.sync += [ma.eq(root.root), mb.eq(ops["k_m"]), *goto("root", "product")]
        with m.If(st["product"]):  # pa and pb load
            m.d.sync += [s2.eq(s1 - exp_e), p1.eq(pos1 + ops["out_frac"]),
                         *goto("product", "mul2")]
        with m.If(st["mul2"]):  # vp loads
            m.d.sync += [s3.eq(s2 - p1), *goto("mul2", "mul3")]
        with m.If(st["mul3"]):  # v loads
            m.d.sync += goto("mul3", "lead_v")
        with m.If(st["lead_v"]):  # the slice search of v loads
            m.d.sync += goto("lead_v", "pos_v")
        with m.If(st["pos_v"]):
            m.d.sync += [v_pos.eq(v_lead), pos2.eq(v_lead), *goto("pos_v", "normalise")]
        with m.If(st["normalise"]):
            m.d.sync += [g.eq(v_top), shift.eq(s3 - pos2), *goto("normalise", "idle")]
        m.d.comb += self.busy.eq(~st["idle"])
        return m
