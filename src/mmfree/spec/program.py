"""The engine's host side and a reference interpreter of its per-token program.

:func:`load_image` is what the host loads into the engine once per checkpoint: the VMEM
image (norm weights, lower bounds, each BitLinear's norm weight mantissas, zero states) and
the scalar constant tables (per RMSNorm ``eps_q``, ``sqrt(K)``, the weight exponent; per
BitLinear its rescale constant). :class:`Interpreter` runs a
:class:`~mmfree.spec.engine.Program` instruction by instruction on that image with the
golden contract's op functions (:mod:`mmfree.golden.hgrn_fixed`) and a BitLinear device
(default: the golden :meth:`~mmfree.golden.quantiser.NormBitLinear.device`): its logits,
argmax and states equal :func:`~mmfree.golden.hgrn_fixed.fixed_token_step`'s bit for bit
(``tests/spec/test_program.py``), which proves the program before the RTL runs it. The
recurrent states live in VMEM between tokens; :meth:`Interpreter.reset` zeroes them (a new
sequence).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..golden import hgrn_fixed as fx
from .engine import FMTS, EngineOp, Instr, Program

__all__ = ["Image", "Interpreter", "element_width", "load_image", "weight_order"]

Device = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, int, int]]


@dataclass
class Image:
    """What the host loads: ``vmem`` (every element, int64), ``norm_consts`` (per RMSNorm of
    :attr:`Program.norms`: ``(eps_q, (sqrt mantissa, exponent), weight exponent)``) and
    ``bitlinear_consts`` (per BitLinear of :attr:`Program.bitlinears`: ``(c_m, c_e)``)."""

    vmem: np.ndarray
    norm_consts: list[tuple[int, tuple[int, int], int]]
    bitlinear_consts: list[tuple[int, int]]


def load_image(program: Program, fm: fx.FixedModel) -> Image:
    """The host's one-time load for ``program`` from a prepared model. Raises
    ``ValueError`` if the model's config or formats are not the program's."""
    if fm.model.config != program.config:
        raise ValueError("the model's config is not the one the program was compiled for")
    if fm.cfg != program.fixed:
        raise ValueError("the model's fixed-point formats are not the program's")
    mm = program.memory
    vm = np.zeros(mm.size, dtype=np.int64)

    def put(region: str, values: np.ndarray) -> None:
        addr, n = mm.regions[region]
        if len(values) != n:
            raise ValueError(f"{region}: {len(values)} values for {n} elements")
        vm[addr:addr + n] = values

    for name in program.norms:
        put(f"norm:{name}", fm.norms[name].v)
    for n in range(program.config.num_hidden_layers):
        put(f"lb.{n}", fm.lb[n])
        put(f"omlb.{n}", fm.one_minus_lb[n])
    for name in program.bitlinears:
        put(f"v:{name}", fm.bitlinears[name].v)
    norm_consts = [(fm.norms[k].eps_q, fm.norms[k].sqrtk, fm.norms[k].e) for k in program.norms]
    bl_consts = [fm.bitlinears[k].const for k in program.bitlinears]
    return Image(vm, norm_consts, bl_consts)


def weight_order(program: Program, fm: fx.FixedModel) -> Iterator[tuple[str, np.ndarray]]:
    """The ternary matrices in the order the program's ``BITLINEAR`` instructions consume
    them on the weight stream (one token; the stream repeats per token)."""
    for ins in program:
        if ins.op == EngineOp.BITLINEAR:
            name = program.bitlinears[ins.imm]
            yield name, fm.bitlinears[name].codes


def element_width(program: Program) -> int:
    """The signed element width VMEM needs: the widest format, norm weight or BitLinear
    input/weight mantissa, and the widest row sum (``|acc| <= q_max K``)."""
    cfg = program.fixed
    kmax = max(k for _, _, k in program.config.bitlinears())
    acc = (cfg.bitlinear.q_max * kmax).bit_length() + 1
    return max(cfg.res_width, cfg.act_width, cfg.state_width, cfg.gate.width,
               cfg.norm_width, cfg.bitlinear.weight_width, acc)


class Interpreter:
    """Runs a program over a VMEM image with the golden ops (module docstring)."""

    def __init__(self, program: Program, fm: fx.FixedModel, device: Device | None = None
                 ) -> None:
        self.program, self.fm = program, fm
        self.image = load_image(program, fm)
        self.vmem = self.image.vmem.copy()
        self.device = device or fm.arith.device
        self.trace: list[tuple[str, int, int]] = []  #: (BitLinear, D, E) of the last token

    def reset(self) -> None:
        """A new sequence: every layer's recurrent state back to zero."""
        for n in range(self.program.config.num_hidden_layers):
            addr, k = self.program.memory.regions[f"state.{n}"]
            self.vmem[addr:addr + k] = 0

    def state(self) -> list[np.ndarray]:
        """The recurrent state of every layer, as VMEM holds it."""
        out = []
        for n in range(self.program.config.num_hidden_layers):
            addr, k = self.program.memory.regions[f"state.{n}"]
            out.append(self.vmem[addr:addr + k].copy())
        return out

    def step(self, token: int) -> fx.FixedStep:
        """One token: the host writes the embedding row into ``x``, the program runs, the
        host reads the logits and the argmax."""
        prog, cfg, vm = self.program, self.fm.cfg, self.vmem
        x_addr, d = prog.memory.regions["x"]
        vm[x_addr:x_addr + d] = fx.embed_fixed(self.fm, token)
        fmts = {i: getattr(cfg, f) for i, f in enumerate(FMTS)}
        sumsq = d_scale = e_scale = 0
        g = sh = 0
        argmax = -1
        self.trace = []
        for ins in prog:
            op, n, fmt = ins.op, ins.n, fmts[ins.fmt]

            def rd(addr: int, count: int = n) -> np.ndarray:
                return vm[addr:addr + count]

            def wr(values: np.ndarray, ins: Instr = ins) -> None:
                vm[ins.dst:ins.dst + len(values)] = values

            if op == EngineOp.SUMSQ:
                sumsq = fx.vec_sumsq(rd(ins.a))
            elif op == EngineOp.RMSSCALE:
                eps_q, sqrtk, _ = self.image.norm_consts[ins.imm]
                g, sh = fx.sc_rmsnorm_scale(sumsq, eps_q, sqrtk, 0, fmt.frac, cfg)
            elif op == EngineOp.MULS:
                wr(fx.vec_mul(rd(ins.a), g, sh, fmt))
            elif op == EngineOp.MULV:
                wr(fx.vec_mul(rd(ins.a), rd(ins.b), ins.shift, fmt))
            elif op == EngineOp.MULW:
                wr(fx.vec_mul(rd(ins.a), rd(ins.b), self.image.norm_consts[ins.imm][2], fmt))
            elif op == EngineOp.ADD:
                wr(fx.vec_add(rd(ins.a), rd(ins.b), fmt))
            elif op == EngineOp.SUB:
                wr(fx.vec_sub(rd(ins.a), rd(ins.b), fmt))
            elif op == EngineOp.RSUBI:
                wr(fx.vec_sub(ins.imm, rd(ins.a), fmt))
            elif op == EngineOp.FMA2:
                wr(fx.vec_fma2(rd(ins.a), rd(ins.b), rd(ins.c), rd(ins.d), ins.align,
                               ins.shift, fmt))
            elif op == EngineOp.SIGMOID:
                wr(fx.vec_sigmoid(rd(ins.a), ins.xfrac, cfg))
            elif op == EngineOp.SILU:
                wr(fx.vec_silu(rd(ins.a), ins.xfrac, cfg))
            elif op == EngineOp.BITLINEAR:
                name = prog.bitlinears[ins.imm]
                acc, d_scale, e_scale = self.device(rd(ins.a).copy(), rd(ins.b).copy(),
                                                    self.fm.bitlinears[name].codes)
                self.trace.append((name, d_scale, e_scale))
                vm[ins.dst:ins.dst + ins.m] = acc
            elif op == EngineOp.RESCALE:
                g, sh = fx.sc_rescale(d_scale, e_scale, self.image.bitlinear_consts[ins.imm],
                                      fmt.frac, cfg)
            elif op == EngineOp.ARGMAX:
                argmax = fx.vec_argmax(rd(ins.a))
            elif op == EngineOp.END:
                break
            else:  # pragma: no cover - every op code is handled above
                raise ValueError(f"unknown op {op!r}")
        l_addr, v = prog.memory.regions["logits"]
        return fx.FixedStep(vm[l_addr:l_addr + v].copy(), argmax, self.state())
