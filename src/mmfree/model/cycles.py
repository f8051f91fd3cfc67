"""Exact cycle counts of the project's units, for many design points at once.

Every latency and formula here is the unit's spec's (:mod:`mmfree.spec`), which is what the
RTL's docstrings document and the co-simulation testbenches check; these functions only
evaluate the specs' formulas on numpy arrays, so the design-space sweep evaluates thousands
of points at once. Each counts inclusively from the cycle of the first input transfer to the
cycle of the last output transfer, with the streams keeping up (no stalls).
``tests/model/test_cycles.py`` runs the RTL on random shapes and asserts equality.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from ..golden.hgrn_bit import HGRNBitConfig
from ..golden.quantiser import MANT_BITS
from ..spec import (
    BitLinearUnitSpec,
    FetchedProductSpec,
    NormQuantiserSpec,
    SparseTensorCoreSpec,
    TensorCoreSpec,
    TernaryCoreSpec,
    WeightFetcherSpec,
)

__all__ = ["bitlinear_token_cycles", "bitlinear_unit_cycles", "engine_elementwise_cycles",
           "engine_token_cycles",
           "fetched_product_cycles", "fetched_product_regime", "quantiser_overhead_cycles",
           "sparse_gemm_cycles", "tensor_gemm_cycles", "ternary_matvec_cycles"]


def ternary_matvec_cycles(m: npt.ArrayLike, k: npt.ArrayLike, lanes: npt.ArrayLike,
                          packed: bool = False, tree_levels_per_stage: int = 0) -> np.ndarray:
    """One ternary core: an M x K matrix-vector product (rows of several vectors streamed
    back to back count as more rows), :meth:`TernaryCoreSpec.cycles`:
    ``M * ceil(K / lanes) + latency``, latency 3 (+ 1 ``packed``; a pipelined adder tree,
    ``tree_levels_per_stage`` k > 0, adds ``ceil(ceil(log2 lanes) / k) - 1``)."""
    spec = TernaryCoreSpec(lanes=np.asarray(lanes), packed=packed,
                           tree_levels_per_stage=tree_levels_per_stage)
    return np.asarray(spec.cycles(np.asarray(m), np.asarray(k)))


def tensor_gemm_cycles(m: npt.ArrayLike, k: npt.ArrayLike, n: npt.ArrayLike,
                       dsp_pipeline: bool = False) -> np.ndarray:
    """One dense tensor-core array, accumulate mode (:meth:`TensorCoreSpec.gemm_cycles`):
    ``ceil(M/4) * ceil(N/4) * ceil(K/4) + 3`` (``+ 4`` with ``dsp_pipeline``)."""
    return np.asarray(TensorCoreSpec(dsp_pipeline=dsp_pipeline).gemm_cycles(
        np.asarray(m), np.asarray(k), np.asarray(n)))


def sparse_gemm_cycles(m: npt.ArrayLike, k: npt.ArrayLike, n: npt.ArrayLike,
                       dsp_pipeline: bool = False) -> np.ndarray:
    """One 2:4 sparse tensor-core array, logical K (:meth:`SparseTensorCoreSpec.gemm_cycles`):
    ``ceil(M/4) * ceil(N/4) * ceil(K/8) + 4`` (``+ 5`` with ``dsp_pipeline``)."""
    return np.asarray(SparseTensorCoreSpec(dsp_pipeline=dsp_pipeline).gemm_cycles(
        np.asarray(m), np.asarray(k), np.asarray(n)))


def quantiser_overhead_cycles(lanes: int = NormQuantiserSpec.lanes,
                              mant_bits: int = MANT_BITS) -> int:
    """NormQuantiser (the BitLinear front end): cycles from a vector's last input group to
    its ``scale`` transfer (:attr:`NormQuantiserSpec.overhead`)."""
    return int(NormQuantiserSpec(lanes=lanes, mant_bits=mant_bits).overhead)


def bitlinear_unit_cycles(m: npt.ArrayLike, k: npt.ArrayLike, lanes: npt.ArrayLike,
                          mant_bits: int = MANT_BITS,
                          tree_levels_per_stage: int = BitLinearUnitSpec.tree_levels_per_stage
                          ) -> np.ndarray:
    """BitLinearUnit (front end + ternary core), one M x K BitLinear product
    (:meth:`BitLinearUnitSpec.cycles`): ``2G + overhead + QUANT_STAGES + 1 + M*G + latency``
    with ``G = ceil(K / lanes)``."""
    spec = BitLinearUnitSpec(lanes=np.asarray(lanes), mant_bits=mant_bits,
                             tree_levels_per_stage=tree_levels_per_stage)
    return np.asarray(spec.cycles(np.asarray(m), np.asarray(k)))


def bitlinear_token_cycles(config: HGRNBitConfig, unit: BitLinearUnitSpec) -> int:
    """Cycles the BitLinear unit ``unit`` spends on one HGRN-Bit token of ``config``: its
    ``6L + 1`` products (:meth:`HGRNBitConfig.bitlinears`) back to back, each
    :meth:`BitLinearUnitSpec.cycles`. This is ``mmfree run --backend rtl``'s prediction."""
    return sum(int(unit.cycles(m, k)) for _, m, k in config.bitlinears())


def engine_token_cycles(config: HGRNBitConfig, lanes: int = 16, *, cores: int = 0,
                        data_width: int = 64, mem_latency: int = 30, mem_rate: float = 1.0,
                        packed: bool = False, outstanding: int = 4, max_burst: int = 16,
                        fifo_depth: int = 64, channels: int = 0) -> dict:
    """Cycles of one HGRN-Bit token of ``config`` on the whole-token engine of ``lanes``
    lanes (:class:`mmfree.spec.engine.EngineSpec` sized for its program), by
    :func:`mmfree.spec.engine.program_cycles`: ``total`` and ``by_op``. With ``cores``,
    the BitLinears run on that many cores reading their weights over ``data_width``-bit
    AXI4 ports from channels of latency ``mem_latency`` and at most ``mem_rate`` beats per
    cycle (:meth:`mmfree.spec.MultiCoreBitLinearSpec.cycles`, which reuses
    :func:`fetched_product_cycles`' formula); ``exact`` says whether the total is exact
    (else an estimate: a channel limits the fetch, or ``channels`` < ``cores`` share each
    channel through the AR arbiter: :meth:`MultiCoreBitLinearSpec.shared_cycles`). This is
    ``mmfree run --backend rtl``'s
    prediction with the engine; the engine's co-simulation measures it (bench/engine_system.py)."""
    from ..spec.engine import EngineSpec, compile_token, program_cycles

    program = compile_token(config, lanes=lanes)
    spec = EngineSpec.for_program(program, cores=cores, data_width=data_width, packed=packed,
                                  outstanding=outstanding, max_burst=max_burst,
                                  fifo_depth=fifo_depth, channels=channels)
    out = program_cycles(program, spec.vector(), spec.bitlinear(), mem_latency, mem_rate)
    out["exact"] = spec.cycles_exact(program, mem_latency, mem_rate)
    return out


def engine_elementwise_cycles(config: HGRNBitConfig, lanes: int = 16) -> dict:
    """Cycles of one HGRN-Bit token of ``config`` on the whole-token engine of ``lanes``
    lanes **without the ternary products**: every instruction of its program
    (:func:`mmfree.spec.engine.compile_token`) at :class:`mmfree.spec.engine.EngineCycles`,
    a ``BITLINEAR`` counted as its instruction's cycles with the BitLinear unit's cycles
    replaced by its front end's only (:meth:`BitLinearUnitSpec.vector_cycles`: norm,
    quantise and the vector's load, ``2G + overhead + QUANT_STAGES + 1``), its ``M * G +
    latency`` product left to the product model (:func:`fetched_product_cycles`).

    Returns ``per_layer`` (the cycles every layer adds), ``end`` (the final norm, the
    lm_head's front end, the argmax and ``END``), ``total`` (``end + layers * per_layer``,
    the program's sum) and ``instructions``. The engine's co-simulation measures every
    instruction's cycles exactly (docs/engine.md)."""
    from ..spec.engine import EngineCycles, EngineOp, EngineSpec, compile_token

    spec = EngineSpec(lanes=lanes)  # the cycle formulas depend on the lanes only
    model = EngineCycles(spec.vector(), spec.bitlinear())

    def cost(layers: int) -> tuple[int, int]:
        cfg = dataclasses.replace(config, num_hidden_layers=layers)
        program = compile_token(cfg, lanes=lanes)
        total = 0
        for ins in program:
            if ins.op == EngineOp.BITLINEAR:
                groups = -(-ins.n // lanes)
                total += (model.instr(ins, program.fixed)
                          - int(model.bitlinear.cycles(ins.m, ins.n))
                          + int(model.bitlinear.vector_cycles(groups)))
            else:
                total += model.instr(ins, program.fixed)
        return total, len(program.instrs)

    one, _ = cost(1)
    two, _ = cost(2)
    total, count = cost(config.num_hidden_layers)
    per_layer, end = two - one, 2 * one - two
    return {"per_layer": per_layer, "end": end, "total": total, "instructions": count}


def fetched_product_cycles(m: npt.ArrayLike, k: npt.ArrayLike, *, cores: int, lanes: int,
                           data_width: int, mem_latency: npt.ArrayLike,
                           mem_rate: npt.ArrayLike = 1.0, outstanding: int = 4,
                           max_burst: int = 16, fifo_depth: int = 64, packed: bool = False,
                           tree_levels_per_stage: int = 2) -> np.ndarray:
    """``cores`` ternary cores of ``lanes`` lanes, each streaming its ``ceil(M / cores)``
    rows from its own ``data_width``-bit AXI4 port (a memory channel of latency
    ``mem_latency`` cycles and at most ``mem_rate`` beats per cycle; ``outstanding`` bursts
    of at most ``max_burst`` beats in flight, a ``fifo_depth``-beat read FIFO): cycles of
    an M x K product with the vector loaded (:meth:`FetchedProductSpec.cycles`, from the
    command to the last row sum). ``tests/model/test_fetched_product.py`` and
    ``bench/axi_system.py`` measure it on the RTL."""
    spec = FetchedProductSpec(cores=cores, lanes=lanes, packed=packed, data_width=data_width,
                              max_burst=max_burst, outstanding=outstanding,
                              fifo_depth=fifo_depth,
                              tree_levels_per_stage=tree_levels_per_stage,
                              max_dim=max(lanes, int(np.max(k)))).validate()
    return np.asarray(spec.cycles(np.asarray(m), np.asarray(k), np.asarray(mem_latency),
                                  np.asarray(mem_rate, dtype=float)))


def fetched_product_regime(k: npt.ArrayLike, *, lanes: int, data_width: int,
                           mem_latency: npt.ArrayLike, mem_rate: npt.ArrayLike = 1.0,
                           outstanding: int = 4, max_burst: int = 16, fifo_depth: int = 64,
                           packed: bool = False, rows: npt.ArrayLike = 1 << 20
                           ) -> tuple[np.ndarray, np.ndarray]:
    """``(memory_bound, beats_per_cycle)`` of one core's port in steady state: the
    sustained R beats per cycle (:meth:`WeightFetcherSpec.beat_rate`) and whether they
    deliver fewer than the core's one lane group per cycle."""
    f = WeightFetcherSpec(lanes=lanes, packed=packed, data_width=data_width,
                          max_burst=max_burst, outstanding=outstanding,
                          fifo_depth=fifo_depth).validate()
    groups = np.asarray(rows) * -(-np.asarray(k) // lanes)
    rate = np.asarray(f.beat_rate(groups, np.asarray(mem_latency),
                                  np.asarray(mem_rate, dtype=float)))
    per_beat = data_width / f.group_bits
    return rate * per_beat < 1.0, rate
