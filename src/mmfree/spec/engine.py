"""The whole-token engine: its instruction set, memory map, per-token program compiler and
cycle formulas (docs/engine.md).

The engine is a sequencer that runs one program per token over a vector memory (VMEM:
words of ``lanes`` signed elements), a scalar register file, the BitLinear unit and the
vector unit. The host compiles the program once from the checkpoint's config
(:func:`compile_token`), loads the VMEM image once (norm weights, lower bounds, the
BitLinears' norm weights, zero states: :func:`mmfree.spec.program.load_image`), then per
token writes the embedding row, starts the program, and reads the logits and the argmax.
Ternary weights arrive on a stream port in program order (each ``BITLINEAR`` consumes its
matrix row by row).

Everything here is pure Python (no Amaranth); :mod:`mmfree.spec.program` interprets a
program over the golden contract's ops (:mod:`mmfree.golden.hgrn_fixed`), which proves the
program bit-exact before any RTL runs it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..golden.hgrn_bit import HGRNBitConfig
from ..golden.hgrn_fixed import FixedConfig
from .base import UnitSpec, ceil_div, param
from .bitlinear_unit import BitLinearUnitSpec
from .fetched_product import MAX_CORES
from .multicore_bitlinear import MultiCoreBitLinearSpec, matrix_addresses
from .vector_unit import VectorUnitSpec
from .weight_fetcher import MAX_DATA_WIDTH, MIN_DATA_WIDTH

__all__ = ["FMTS", "KINDS", "EngineCycles", "EngineOp", "EngineSpec", "Instr", "MemoryMap",
           "Program",
           "compile_token", "program_cycles", "scalar_cycles"]


class EngineOp(enum.IntEnum):
    """Op codes of the engine's program (one instruction = one of these over ``n``
    elements). Scalar registers: ``N`` (a sum of squares), ``(g, sh)`` (a per-vector scale
    and shift), ``(D, E)`` (the BitLinear unit's scale outputs), ``A`` (an argmax)."""

    SUMSQ = 0  #: ``N = vec_sumsq(a[:n])``
    RMSSCALE = 1  #: ``(g, sh) = sc_rmsnorm_scale(N, norm consts[imm], out frac of fmt)``
    MULS = 2  #: ``dst = vec_mul(a, g, sh, fmt)`` (the scale register, broadcast)
    MULV = 3  #: ``dst = vec_mul(a, b, shift, fmt)``
    ADD = 4  #: ``dst = vec_add(a, b, fmt)``
    SUB = 5  #: ``dst = vec_sub(a, b, fmt)``
    RSUBI = 6  #: ``dst = vec_sub(imm, a, fmt)`` (``1 - f``)
    FMA2 = 7  #: ``dst = vec_fma2(a, b, c, d, align, shift, fmt)``
    SIGMOID = 8  #: ``dst = vec_sigmoid(a, xfrac)`` (gate)
    SILU = 9  #: ``dst = vec_silu(a, xfrac)`` (act)
    BITLINEAR = 10  #: ``dst = acc``, ``(D, E)``: the unit on ``m = a``, ``v = b``, matrix
    #: ``imm`` of :attr:`Program.bitlinears` (``m`` rows) from the weight stream
    RESCALE = 11  #: ``(g, sh) = sc_rescale(D, E, bitlinear consts[imm], out frac of fmt)``
    ARGMAX = 12  #: ``A = vec_argmax(a[:n])``
    MULW = 13  #: ``dst = vec_mul(a, b, norm e[imm], fmt)`` (times a norm weight ``v * 2**-e``)
    END = 15  #: the token is done: the host may read the logits and ``A``


#: output formats by index (``Instr.fmt``): the :class:`FixedConfig` property names
FMTS = ("res", "act", "state", "gate")


@dataclass(frozen=True)
class Instr:
    """One instruction: element addresses in VMEM (multiples of ``lanes``), the count
    ``n``, and the op's immediates (unused fields 0)."""

    op: EngineOp
    dst: int = 0
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0
    n: int = 0
    m: int = 0  #: BitLinear rows
    shift: int = 0
    align: int = 0
    fmt: int = 0  #: index into :data:`FMTS`
    xfrac: int = 0  #: table input fraction bits
    imm: int = 0  #: RSUBI constant, or the index of a norm / BitLinear constant
    note: str = field(default="", compare=False)  #: what it computes (listing only)

    def text(self) -> str:
        """One line of a program listing."""
        parts = [f"{self.op.name:<9}"]
        for k in ("dst", "a", "b", "c", "d", "n", "m", "shift", "align", "xfrac", "imm"):
            v = getattr(self, k)
            if v:
                parts.append(f"{k}={v}")
        if self.op not in (EngineOp.SUMSQ, EngineOp.ARGMAX, EngineOp.BITLINEAR, EngineOp.END):
            parts.append(f"fmt={FMTS[self.fmt]}")
        return " ".join(parts) + (f"   ; {self.note}" if self.note else "")


@dataclass
class MemoryMap:
    """VMEM regions: name -> (element address, elements); every region starts on a word
    boundary (``lanes`` elements)."""

    lanes: int
    regions: dict[str, tuple[int, int]] = field(default_factory=dict)
    size: int = 0

    def add(self, name: str, n: int) -> int:
        """Allocate ``n`` elements under ``name``; returns its address."""
        if name in self.regions:
            raise ValueError(f"region {name!r} allocated twice")
        addr = self.size
        self.regions[name] = (addr, n)
        self.size += ceil_div(n, self.lanes) * self.lanes
        return addr

    def __getitem__(self, name: str) -> int:
        return self.regions[name][0]

    @property
    def words(self) -> int:
        """VMEM depth in words."""
        return self.size // self.lanes


@dataclass
class Program:
    """A compiled per-token program with its memory map and the host's constant tables:
    ``norms`` (names of the RMSNorms whose constants ``RMSSCALE`` indexes, in order) and
    ``bitlinears`` (the BitLinear names, in program and weight-stream order)."""

    config: HGRNBitConfig
    fixed: FixedConfig
    lanes: int
    instrs: list[Instr]
    memory: MemoryMap
    norms: list[str]
    bitlinears: list[str]

    def listing(self) -> str:
        """The program as text, one instruction a line."""
        return "\n".join(f"{i:4d}  {ins.text()}" for i, ins in enumerate(self.instrs))

    def __iter__(self) -> Iterator[Instr]:
        return iter(self.instrs)


def compile_token(config: HGRNBitConfig, fixed: FixedConfig | None = None,
                  lanes: int = VectorUnitSpec.lanes) -> Program:
    """The per-token program of a checkpoint's ``config`` for an engine of ``lanes`` lanes,
    in the op order of :func:`mmfree.golden.hgrn_fixed.fixed_token_step`. Raises
    ``ValueError`` naming ``lanes`` if the MLP halves do not start on a word boundary."""
    cfg = fixed or FixedConfig()
    if cfg.rounding != "half_up":
        raise ValueError(f"rounding {cfg.rounding!r}: the engine implements half_up only")
    d, inter, layers = config.hidden_size, config.intermediate, config.num_hidden_layers
    if inter % lanes:
        raise ValueError(f"lanes {lanes} does not divide the MLP width {inter} (the gate and "
                         "up halves must start on a word boundary)")
    mm = MemoryMap(lanes)
    for name, n in (("x", d), ("h", d), ("i", d), ("f", d), ("g", d), ("sg", d), ("fg", d),
                    ("omf", d), ("si", d), ("gn", d), ("ss", d), ("o", d), ("y", 2 * inter),
                    ("u", inter), ("acc", max(2 * inter, d, config.vocab_size)),
                    ("logits", config.vocab_size)):
        mm.add(name, n)
    for n in range(layers):
        mm.add(f"state.{n}", d)
    norms: list[str] = []
    for n in range(layers):
        for part in ("attn_norm", "attn.g_norm", "mlp_norm"):
            norms.append(f"model.layers.{n}.{part}")
    norms.append("model.norm")
    for name in norms:
        mm.add(f"norm:{name}", d)
    for n in range(layers):
        mm.add(f"lb.{n}", d)
        mm.add(f"omlb.{n}", d)
    bls = [name for name, _, _ in config.bitlinears()]
    for name, _, k in config.bitlinears():
        mm.add(f"v:{name}", k)
    shapes = {name: (m, k) for name, m, k in config.bitlinears()}

    res, act, state, gate = (FMTS.index(f) for f in FMTS)
    big_f, fs, big_g = cfg.act_frac, cfg.state_frac, cfg.gate_frac
    code: list[Instr] = []
    emit = code.append

    def norm(src: str, dst: str, name: str, note: str) -> None:
        emit(Instr(EngineOp.SUMSQ, a=mm[src], n=d, note=f"{note}: sum of squares"))
        emit(Instr(EngineOp.RMSSCALE, imm=norms.index(name), fmt=act, note=f"{note}: scale"))
        emit(Instr(EngineOp.MULS, dst=mm[dst], a=mm[src], n=d, fmt=act))
        emit(Instr(EngineOp.MULW, dst=mm[dst], a=mm[dst], b=mm[f"norm:{name}"], n=d,
                   imm=norms.index(name), fmt=act, note=f"{note}: times the weight"))

    def bitlinear(name: str, src: str, dst: str, out: int) -> None:
        m, k = shapes[name]
        emit(Instr(EngineOp.BITLINEAR, dst=mm["acc"], a=mm[src], b=mm[f"v:{name}"], n=k, m=m,
                   imm=bls.index(name), note=name))
        emit(Instr(EngineOp.RESCALE, imm=bls.index(name), fmt=out))
        emit(Instr(EngineOp.MULS, dst=mm[dst], a=mm["acc"], n=m, fmt=out))

    for n in range(layers):
        p = f"model.layers.{n}."
        norm("x", "h", p + "attn_norm", f"layer {n} attn_norm")
        for proj, dst in (("i", "i"), ("f", "f"), ("g", "g")):
            bitlinear(p + f"attn.{proj}_proj", "h", dst, act)
        emit(Instr(EngineOp.SIGMOID, dst=mm["sg"], a=mm["f"], n=d, xfrac=big_f, fmt=gate))
        emit(Instr(EngineOp.MULV, dst=mm["fg"], a=mm[f"omlb.{n}"], b=mm["sg"], n=d,
                   shift=big_g, fmt=gate, note="(1 - lb) * sigmoid(f)"))
        emit(Instr(EngineOp.ADD, dst=mm["fg"], a=mm[f"lb.{n}"], b=mm["fg"], n=d, fmt=gate,
                   note="f = lb + ..."))
        emit(Instr(EngineOp.RSUBI, dst=mm["omf"], a=mm["fg"], n=d, imm=cfg.one, fmt=gate,
                   note="1 - f"))
        emit(Instr(EngineOp.SILU, dst=mm["si"], a=mm["i"], n=d, xfrac=big_f, fmt=act))
        emit(Instr(EngineOp.FMA2, dst=mm[f"state.{n}"], a=mm["fg"], b=mm[f"state.{n}"],
                   c=mm["si"], d=mm["omf"], n=d, align=fs - big_f, shift=big_g, fmt=state,
                   note="state = f * state + silu(i) * (1 - f)"))
        norm("g", "gn", p + "attn.g_norm", f"layer {n} g_norm")
        emit(Instr(EngineOp.SILU, dst=mm["ss"], a=mm[f"state.{n}"], n=d, xfrac=fs, fmt=act))
        emit(Instr(EngineOp.MULV, dst=mm["o"], a=mm["gn"], b=mm["ss"], n=d, shift=big_f,
                   fmt=act, note="rms_norm(g) * silu(state)"))
        bitlinear(p + "attn.o_proj", "o", "i", res)
        emit(Instr(EngineOp.ADD, dst=mm["x"], a=mm["x"], b=mm["i"], n=d, fmt=res,
                   note="residual"))
        norm("x", "h", p + "mlp_norm", f"layer {n} mlp_norm")
        bitlinear(p + "mlp.gate_proj", "h", "y", act)
        emit(Instr(EngineOp.SILU, dst=mm["u"], a=mm["y"], n=inter, xfrac=big_f, fmt=act))
        emit(Instr(EngineOp.MULV, dst=mm["u"], a=mm["u"], b=mm["y"] + inter, n=inter,
                   shift=big_f, fmt=act, note="silu(gate) * up"))
        bitlinear(p + "mlp.down_proj", "u", "i", res)
        emit(Instr(EngineOp.ADD, dst=mm["x"], a=mm["x"], b=mm["i"], n=d, fmt=res,
                   note="residual"))
    norm("x", "h", "model.norm", "final norm")
    bitlinear("lm_head", "h", "logits", res)
    emit(Instr(EngineOp.ARGMAX, a=mm["logits"], n=config.vocab_size))
    emit(Instr(EngineOp.END))
    return Program(config, cfg, lanes, code, mm, norms, bls)


# --- cycles ----------------------------------------------------------------------------------


def scalar_cycles(rescale: bool, rsqrt_bits: int) -> int:
    """Cycles the scalar unit (:class:`mmfree.hdl.scalar_unit.ScalarUnit`) is busy after
    its start cycle: a rescale 9 (the leading one of ``D`` in two cycles, normalise ``D``,
    the product in three (operand, product and result registers), its leading one in two,
    normalise it and the shift); an RMSNorm scale ``3Q + 11`` (the leading one of ``n`` in
    two cycles, normalise ``n``, start the division, ``2Q - 1`` quotient bits and the cycle
    it ends, ``Q`` root bits and the cycle it ends, the product in three, its leading one
    in two, normalise it and the shift; ``Q = rsqrt_bits``)."""
    return 9 if rescale else 3 * rsqrt_bits + 11


@dataclass(frozen=True)
class EngineCycles:
    """The engine's cycle formula: one place for the cost of every instruction, measured
    on the engine's RTL (``tests/sim/tb/test_engine.py``: every token's cycles equal
    :func:`program_cycles`).

    The sequencer runs one instruction at a time: ``ISSUE`` cycles (the program memory's
    registered read, the instruction register, then decode and address set-up), then the
    unit's cycles and the cycle in which the sequencer sees the last result (``DONE``). An
    instruction that reads vectors (a vector op, a BITLINEAR) waits ``OPERAND`` cycles for
    its first operand group (the VMEM address, the block RAM read, its output register, the
    operand FIFO; the vector unit's command transfers meanwhile), then takes
    :meth:`VectorUnitSpec.map_cycles` / ``reduce_cycles`` or
    :meth:`BitLinearUnitSpec.cycles` (the unit's spec, whatever its pipelining; with the
    weights over AXI, :meth:`MultiCoreBitLinearSpec.cycles` with the channels' latency
    ``mem_latency`` and rate ``mem_rate``, beats per cycle); a scalar op
    :func:`scalar_cycles`; ``END`` one cycle, the ``done`` transfer. A token is counted from
    the ``start`` transfer (exclusive) to the ``done`` transfer (inclusive)."""

    vector: VectorUnitSpec
    bitlinear: BitLinearUnitSpec
    mem_latency: int = 2
    mem_rate: float = 1.0
    #: the program memory's read (block RAM), the instruction register (its output
    #: register), and decode with the address set-up
    ISSUE: ClassVar[int] = 3
    #: from the unit's first cycle to its first operand group (VMEM address, block RAM,
    #: output register, operand FIFO)
    OPERAND: ClassVar[int] = 3
    #: the cycle in which the sequencer sees the instruction's last result
    DONE: ClassVar[int] = 1

    def instr(self, ins: Instr, fixed: FixedConfig) -> int:
        """Cycles of one instruction."""
        op = ins.op
        if op == EngineOp.END:
            return self.ISSUE + 1
        if op == EngineOp.BITLINEAR:
            if isinstance(self.bitlinear, MultiCoreBitLinearSpec):
                unit = self.bitlinear.cycles(ins.m, ins.n, self.mem_latency, self.mem_rate)
            else:
                unit = self.bitlinear.cycles(ins.m, ins.n)
            return self.ISSUE + self.OPERAND + round(float(unit)) + self.DONE
        if op in (EngineOp.RMSSCALE, EngineOp.RESCALE):
            return (self.ISSUE + scalar_cycles(op == EngineOp.RESCALE, fixed.rsqrt_bits)
                    + self.DONE)
        if op in (EngineOp.SUMSQ, EngineOp.ARGMAX):
            return (self.ISSUE + self.OPERAND + int(self.vector.reduce_cycles(ins.n))
                    + self.DONE)
        return self.ISSUE + self.OPERAND + int(self.vector.map_cycles(ins.n)) + self.DONE


def program_cycles(program: Program, vector: VectorUnitSpec, bitlinear: BitLinearUnitSpec,
                   mem_latency: int = 2, mem_rate: float = 1.0) -> dict[str, Any]:
    """Cycles of one token: ``total`` and the sum per op code (``by_op``). With the weights
    over AXI (``bitlinear`` a :class:`MultiCoreBitLinearSpec`), every channel answers
    ``mem_latency`` cycles after an AR transfer at ``mem_rate`` beats per cycle at most."""
    model = EngineCycles(vector, bitlinear, mem_latency, mem_rate)
    by_op: dict[str, int] = {}
    for ins in program:
        c = model.instr(ins, program.fixed)
        by_op[ins.op.name] = by_op.get(ins.op.name, 0) + c
    return {"total": sum(by_op.values()), "by_op": by_op}


# --- the engine as a unit --------------------------------------------------------------------

#: instruction kinds the sequencer dispatches on (``Instr.op`` -> kind)
KINDS = {"map": 0, "reduce": 1, "bitlinear": 2, "rmsscale": 3, "rescale": 4, "end": 5}
_KIND_OF = {EngineOp.SUMSQ: "reduce", EngineOp.ARGMAX: "reduce",
            EngineOp.BITLINEAR: "bitlinear", EngineOp.RMSSCALE: "rmsscale",
            EngineOp.RESCALE: "rescale", EngineOp.END: "end"}
_VEC_OP = {EngineOp.SUMSQ: "SUMSQ", EngineOp.ARGMAX: "ARGMAX", EngineOp.MULS: "MULS",
           EngineOp.MULV: "MUL", EngineOp.MULW: "MUL", EngineOp.ADD: "ADD",
           EngineOp.SUB: "SUB", EngineOp.RSUBI: "RSUBI", EngineOp.FMA2: "FMA2",
           EngineOp.SIGMOID: "SIGMOID", EngineOp.SILU: "SILU"}


@dataclass(frozen=True)
class EngineSpec(UnitSpec):
    """The whole-token engine (:class:`mmfree.hdl.engine.Engine`): sequencer, VMEM,
    program memory, the BitLinear unit, the vector unit and the scalar unit
    (docs/engine.md). :meth:`for_program` sizes one for a compiled program."""

    name: ClassVar[str] = "engine"
    summary: ClassVar[str] = ("whole-token engine: sequencer, VMEM, BitLinear, vector and "
                              "scalar units running a per-token program")
    component: ClassVar[str] = "mmfree.hdl.engine.Engine"
    testbench: ClassVar[str] = "mmfree.sim.tb.engine"

    lanes: int = param(4, "lanes of the VMEM words, the vector unit and the BitLinear unit",
                       lo=1, hi=64)
    width: int = param(18, "signed VMEM element width", lo=18, hi=24)
    vmem_words: int = param(256, "VMEM depth in words", lo=2, hi=1 << 20)
    prog_depth: int = param(64, "program memory depth in instructions", lo=2, hi=1 << 16)
    max_dim: int = param(256, "longest vector of any instruction (rows of a BitLinear "
                              "included)", lo=1, hi=1 << 20)
    max_k: int = param(256, "longest BitLinear input K", lo=1, hi=65536)
    cores: int = param(0, "ternary cores of the BitLinear unit, each reading its share of the "
                          "rows over its own AXI4 port (0: one core, the weights on the 'w' "
                          "stream)", lo=0, hi=MAX_CORES)
    packed: bool = param(False, "with cores: weights stored packed 5 trits per byte (else "
                                "2-bit codes)")
    data_width: int = param(64, "with cores: AXI data bus width per port, a power of two",
                            lo=MIN_DATA_WIDTH, hi=MAX_DATA_WIDTH)
    addr_width: int = param(32, "with cores: AXI address width", lo=16, hi=64)
    max_burst: int = param(16, "with cores: longest INCR burst in beats, a power of two",
                           lo=1, hi=256)
    outstanding: int = param(4, "with cores: read bursts in flight per port at most", lo=1,
                             hi=64)
    fifo_depth: int = param(64, "with cores: read-data FIFO per port in beats", lo=2,
                            hi=4096)
    channels: int = param(0, "with cores: AXI4 ports (memory channels), dividing cores; core "
                             "c reads over port c mod channels, cores sharing a port through "
                             "an AR arbiter (0: one port per core)", lo=0, hi=MAX_CORES)

    def fixed(self) -> FixedConfig:
        """The contract's formats the engine is built for (the defaults)."""
        return FixedConfig()

    def vector(self) -> VectorUnitSpec:
        f = self.fixed()
        return VectorUnitSpec(lanes=self.lanes, width=self.width, max_dim=self.max_dim,
                              max_align=8, act_width=f.act_width, act_frac=f.act_frac,
                              gate_frac=f.gate_frac, table_bits=f.table_bits,
                              table_range_log2=f.table_range_log2)

    def bitlinear(self) -> BitLinearUnitSpec:
        """The BitLinear unit's spec: :class:`BitLinearUnitSpec` (weights on the ``w``
        stream), or :class:`MultiCoreBitLinearSpec` with ``cores``."""
        b = self.fixed().bitlinear
        common = {"lanes": self.lanes, "max_dim": ceil_div(self.max_k, self.lanes) * self.lanes,
                  "in_width": b.in_width, "weight_width": b.weight_width,
                  "mant_bits": b.mant_bits}
        if not self.cores:
            return BitLinearUnitSpec(**common)
        return MultiCoreBitLinearSpec(
            **common, cores=self.cores, packed=self.packed, data_width=self.data_width,
            addr_width=self.addr_width, max_burst=self.max_burst,
            outstanding=self.outstanding, fifo_depth=self.fifo_depth,
            len_width=max(2, self.max_dim.bit_length()), channels=self.channels)

    def _check(self) -> None:
        if self.channels and not self.cores:
            raise ValueError(f"channels {self.channels} needs cores >= 1 (the weights over "
                             "AXI)")
        if self.cores:
            self.bitlinear().validate()

    @property
    def ports(self) -> int:
        """With ``cores``: the AXI4 ports ``axi0`` .. ``axi<ports-1>`` (``channels``, or
        one per core)."""
        return self.channels or self.cores

    def cycles_exact(self, program: Program, mem_latency: int, mem_rate: float) -> bool:
        """Whether :func:`program_cycles` is exact for ``program`` (always, without
        ``cores``; with them, when every BitLinear is
        :meth:`~mmfree.spec.multicore_bitlinear.MultiCoreBitLinearSpec.exact`)."""
        bl = self.bitlinear()
        if not isinstance(bl, MultiCoreBitLinearSpec):
            return True
        return all(bl.exact(ins.m, ins.n, mem_latency, mem_rate) for ins in program
                   if ins.op == EngineOp.BITLINEAR)

    def matrix_addresses(self, program: Program) -> list[int]:
        """With ``cores``: the byte address of each BitLinear's weight image (program
        order), the same in every channel and, with cores sharing channels, in every core's
        slot (:func:`mmfree.spec.multicore_bitlinear.matrix_addresses`; core ``c``'s share
        is at :meth:`MultiCoreBitLinearSpec.core_address` in channel
        :meth:`MultiCoreBitLinearSpec.channel_of`). Raises ``ValueError`` naming
        ``addr_width`` if the images do not fit."""
        bl = self.bitlinear()
        assert isinstance(bl, MultiCoreBitLinearSpec), "matrix_addresses needs cores"
        shapes = {name: (m, k) for name, m, k in program.config.bitlinears()}
        return matrix_addresses([shapes[name] for name in program.bitlinears], bl)

    @property
    def addr_bits(self) -> int:
        """Bits of a VMEM word address."""
        return max(1, (self.vmem_words - 1).bit_length())

    @property
    def prog_bits(self) -> int:
        """Bits of a program address."""
        return max(1, (self.prog_depth - 1).bit_length())

    def instr_fields(self) -> list[tuple[str, int, bool]]:
        """The instruction word: (field, bits, signed), lowest bits first."""
        vec = self.vector()
        f = self.fixed()
        sumsq = vec.sumsq_width
        return [("kind", 3, False), ("vop", 4, False), ("gs", 1, False),
                ("dst", self.addr_bits, False), ("a", self.addr_bits, False),
                ("b", self.addr_bits, False), ("c", self.addr_bits, False),
                ("d", self.addr_bits, False), ("groups_m1", vec.group_bits, False),
                ("mask", self.lanes, False), ("rows", self.max_dim.bit_length(), False),
                ("shift", vec.shift_bits, True),
                ("align", max(vec.max_align, vec.width).bit_length(), False),
                ("ow", vec.width.bit_length(), False), ("rlog", (vec.width + 6).bit_length(),
                                                         False),
                ("scalar", vec.width, True), ("eps", sumsq, False),
                ("km", f.scale_bits, False), ("ke", 12, True), ("out_frac", 6, False)] + (
                    [("waddr", self.addr_width, False),
                     ("rows_pc", self.max_dim.bit_length(), False)] if self.cores else [])

    def encode(self, program: Program, image: Any) -> list[dict[str, int]]:
        """The program as the instructions the host loads (field -> value, the fields of
        :meth:`instr_fields`), with the model's constants (``image``:
        :class:`mmfree.spec.program.Image`) bound: the norms' ``eps_q``, ``sqrt(K)`` and
        weight exponents, the BitLinears' rescale constants."""
        if program.lanes != self.lanes:
            raise ValueError(f"lanes {self.lanes}: the program was compiled for "
                             f"{program.lanes}")
        if len(program.instrs) > self.prog_depth:
            raise ValueError(f"prog_depth {self.prog_depth} is below the program's "
                             f"{len(program.instrs)} instructions")
        if program.memory.words > self.vmem_words:
            raise ValueError(f"vmem_words {self.vmem_words} is below the program's "
                             f"{program.memory.words}")
        vec, cfg = self.vector(), program.fixed
        bl = self.bitlinear()
        addrs = self.matrix_addresses(program) if self.cores else []
        from .vector_unit import VecOp
        widths = {f: getattr(cfg, f).width for f in FMTS}
        out = []
        for ins in program:
            op = ins.op
            kind = _KIND_OF.get(op, "map")
            v: dict[str, int] = {"kind": KINDS[kind]}
            for k in ("dst", "a", "b", "c", "d"):
                v[k] = getattr(ins, k) // self.lanes
            if op != EngineOp.END and ins.n:
                if ins.n > self.max_dim:
                    raise ValueError(f"max_dim {self.max_dim} is below an instruction's "
                                     f"{ins.n} elements")
                v["groups_m1"], v["mask"] = vec.groups_mask(ins.n)
            if op in _VEC_OP:
                vop = VecOp[_VEC_OP[op]]
                self._check_reads_lead(ins, vop)
                v["vop"] = int(vop)
                if kind == "map":
                    if vop.is_table:
                        c = vec.command(vop, ins.n, xfrac=ins.xfrac)
                    else:
                        shift = (image.norm_consts[ins.imm][2] if op == EngineOp.MULW
                                 else ins.shift)
                        c = vec.command(vop, ins.n, shift=shift, align=ins.align,
                                        ow=widths[FMTS[ins.fmt]],
                                        scalar=ins.imm if op == EngineOp.RSUBI else 0)
                    for k in ("shift", "align", "ow", "rlog", "scalar"):
                        v[k] = c[k]
                    v["gs"] = int(op == EngineOp.MULS)
            if op == EngineOp.BITLINEAR:
                if ins.n > self.max_k:
                    raise ValueError(f"max_k {self.max_k} is below a BitLinear's K {ins.n}")
                v["rows"] = ins.m
                if isinstance(bl, MultiCoreBitLinearSpec):
                    bl.check_shape(ins.m, ins.n)
                    v["waddr"] = addrs[ins.imm]
                    v["rows_pc"] = bl.rows_per_core(ins.m)
                v["groups_m1"], v["mask"] = vec.groups_mask(ins.n)
            if op == EngineOp.RMSSCALE:
                eps, (km, ke), _ = image.norm_consts[ins.imm]
                v.update(eps=eps, km=km, ke=ke, out_frac=getattr(cfg, FMTS[ins.fmt]).frac)
            if op == EngineOp.RESCALE:
                km, ke = image.bitlinear_consts[ins.imm]
                v.update(km=km, ke=ke, out_frac=getattr(cfg, FMTS[ins.fmt]).frac)
            out.append(self._checked(v))
        return out

    def _check_reads_lead(self, ins: Instr, vop: Any) -> None:
        """Raise ``ValueError`` if a vector op's results could be written into a VMEM word
        in the cycle that word is read. The op reads operand group ``k`` of each source
        before it writes result group ``k``; a write to ``dst + j`` meets a read of ``x +
        k`` with ``k > j`` only if ``x < dst < x + G``. The engine's VMEM has no
        read-during-write logic (``no_rw_check``), so such a program is rejected."""
        if vop.is_reduction:
            return
        g = ceil_div(ins.n, self.lanes)
        dst = ins.dst // self.lanes
        srcs = ["a"] + (["b"] if vop.uses_b else []) + (["c", "d"] if vop.uses_cd else [])
        for name in srcs:
            x = getattr(ins, name) // self.lanes
            if x < dst < x + g:
                raise ValueError(f"{ins.op.name} writes word {dst} while it still reads "
                                 f"{name} words {x}..{x + g - 1}")

    def _checked(self, values: dict[str, int]) -> dict[str, int]:
        """Every field of :meth:`instr_fields` (0 where unset), each in its range."""
        out = {}
        for name, bits, signed in self.instr_fields():
            x = int(values.get(name, 0))
            lo, hi = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed
                      else (0, (1 << bits) - 1))
            if not lo <= x <= hi:
                raise ValueError(f"instruction field {name}: {x} outside {lo}..{hi}")
            out[name] = x
        return out

    @classmethod
    def for_program(cls, program: Program, **params: Any) -> EngineSpec:
        """An engine sized for ``program``: VMEM words, program depth, the longest vector and
        BitLinear input, the element width (:func:`mmfree.spec.program.element_width`)."""
        from .program import element_width
        cfg = program.config
        sizes = {"lanes": program.lanes, "vmem_words": program.memory.words,
                 "prog_depth": len(program.instrs),
                 "max_dim": max(ins.n for ins in program if ins.op != EngineOp.END),
                 "max_k": max(k for _, _, k in cfg.bitlinears()),
                 "width": max(18, element_width(program))}
        sizes["max_dim"] = max(sizes["max_dim"], max(m for _, m, _ in cfg.bitlinears()))
        return cls(**{**sizes, **params}).validate()

    def top_name(self) -> str:
        shared = (f"_ch{self.channels}" if self.cores and 0 < self.channels < self.cores
                  else "")
        axi = (f"_c{self.cores}{'_packed' if self.packed else ''}_d{self.data_width}"
               f"_a{self.addr_width}_b{self.max_burst}_o{self.outstanding}_f{self.fifo_depth}"
               f"{shared}" if self.cores else "")
        return (f"mmfree_engine_l{self.lanes}_w{self.width}_v{self.vmem_words}"
                f"_p{self.prog_depth}_k{self.max_dim}_{self.max_k}{axi}")

    @property
    def latency(self) -> int:
        """The sequencer's overhead per instruction: fetch, decode, completion."""
        return EngineCycles.ISSUE + EngineCycles.DONE

    def cycle_formula(self) -> str:
        return (f"{self.latency} per instruction (fetch, decode, completion) + its unit's "
                f"cycles (+{EngineCycles.OPERAND} to the first operand of one that reads "
                "vectors); a token: the sum over the program (docs/engine.md)")
