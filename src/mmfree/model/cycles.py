"""Exact cycle counts of the project's units, for many design points at once.

Every latency and formula here is the unit's spec's (:mod:`mmfree.spec`), which is what the
RTL's docstrings document and the co-simulation testbenches check; these functions only
evaluate the specs' formulas on numpy arrays, so the design-space sweep evaluates thousands
of points at once. Each counts inclusively from the cycle of the first input transfer to the
cycle of the last output transfer, with the streams keeping up (no stalls).
``tests/model/test_cycles.py`` runs the RTL on random shapes and asserts equality.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..golden.quantiser import RECIP_FRAC, RSQRT_FRAC
from ..golden.tiny_model import TinyConfig
from ..spec import (
    BitLinearUnitSpec,
    RmsQuantiserSpec,
    SparseTensorCoreSpec,
    TensorCoreSpec,
    TernaryCoreSpec,
)

__all__ = ["bitlinear_token_cycles", "bitlinear_unit_cycles", "quantiser_overhead_cycles",
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


def quantiser_overhead_cycles(lanes: int = RmsQuantiserSpec.lanes,
                              recip_frac: int = RECIP_FRAC,
                              rsqrt_frac: int = RSQRT_FRAC) -> int:
    """RmsAbsmaxQuantiser: cycles from a vector's last input group to its scale output
    (:attr:`RmsQuantiserSpec.overhead`)."""
    return int(RmsQuantiserSpec(lanes=lanes, recip_frac=recip_frac,
                                rsqrt_frac=rsqrt_frac).overhead)


def bitlinear_unit_cycles(m: npt.ArrayLike, k: npt.ArrayLike, lanes: npt.ArrayLike,
                          recip_frac: int = RECIP_FRAC, rsqrt_frac: int = RSQRT_FRAC,
                          tree_levels_per_stage: int = 0) -> np.ndarray:
    """BitLinearUnit (fused quantiser + ternary core), one M x K BitLinear product
    (:meth:`BitLinearUnitSpec.cycles`): ``2G + overhead + 4 + M*G + latency`` with
    ``G = ceil(K / lanes)``."""
    spec = BitLinearUnitSpec(lanes=np.asarray(lanes), recip_frac=recip_frac,
                             rsqrt_frac=rsqrt_frac, tree_levels_per_stage=tree_levels_per_stage)
    return np.asarray(spec.cycles(np.asarray(m), np.asarray(k)))


def bitlinear_token_cycles(d: int, inter: int, vocab: int, layers: int, lanes: int,
                           recip_frac: int = RECIP_FRAC, rsqrt_frac: int = RSQRT_FRAC,
                           tree_levels_per_stage: int = 0) -> int:
    """Cycles the BitLinear unit spends on one token of the tiny MatMul-free LM
    (:meth:`mmfree.golden.tiny_model.TinyConfig.calls`), its products back to back."""
    calls = TinyConfig(d, layers, vocab, inter).calls()
    return int(sum(bitlinear_unit_cycles(m, k, lanes, recip_frac, rsqrt_frac,
                                         tree_levels_per_stage) for _, m, k in calls))
