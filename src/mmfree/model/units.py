"""Exact cycle counts of the project's units, as their RTL documents and measures them.

Each function counts inclusively from the cycle of the first input transfer to the cycle of
the last output transfer, with the streams keeping up (no stalls). ``tests/test_model_units.py``
runs the RTL on random shapes and asserts equality. The functions accept numpy arrays, so the
design-space sweep evaluates thousands of points at once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

TERNARY_LATENCY = 3  #: TernaryCore: lane select, adder tree, accumulator
UNPACK_LATENCY = 1  #: TritUnpacker in front of the core (1.6-bit weights)
TENSOR_LATENCY = 3  #: TensorCore: products, sums, accumulate (+1 with dsp_pipeline)
SPARSE_LATENCY = 4  #: SparseTensorCore: decode + TensorCore (+1 with dsp_pipeline)
TILE = 4


def _ceil_div(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    return -(-np.asarray(a) // np.asarray(b))


def ternary_matvec_cycles(m: npt.ArrayLike, k: npt.ArrayLike, lanes: npt.ArrayLike,
                          packed: bool = False, tree_levels_per_stage: int = 0) -> np.ndarray:
    """One ternary core: an M x K matrix-vector product (rows of several vectors streamed
    back to back count as more rows): ``M * ceil(K / lanes) + 3`` (``+ 4`` packed); a
    pipelined adder tree (``tree_levels_per_stage`` k > 0) adds
    ``ceil(ceil(log2 lanes) / k) - 1`` cycles of latency."""
    lanes_a = np.asarray(lanes)
    depth = np.ceil(np.log2(np.maximum(lanes_a, 1))).astype(np.int64)
    extra = (np.maximum(-(-depth // tree_levels_per_stage), 1) - 1
             if tree_levels_per_stage else 0)
    lat = TERNARY_LATENCY + (UNPACK_LATENCY if packed else 0) + extra
    return np.asarray(m) * _ceil_div(k, lanes) + lat


def tensor_gemm_cycles(m: npt.ArrayLike, k: npt.ArrayLike, n: npt.ArrayLike,
                       dsp_pipeline: bool = False) -> np.ndarray:
    """One dense tensor-core array, accumulate mode:
    ``ceil(M/4) * ceil(N/4) * ceil(K/4) + 3`` (``+ 4`` with ``dsp_pipeline``)."""
    return (_ceil_div(m, TILE) * _ceil_div(n, TILE) * _ceil_div(k, TILE) + TENSOR_LATENCY
            + int(dsp_pipeline))


def sparse_gemm_cycles(m: npt.ArrayLike, k: npt.ArrayLike, n: npt.ArrayLike,
                       dsp_pipeline: bool = False) -> np.ndarray:
    """One 2:4 sparse tensor-core array (logical K):
    ``ceil(M/4) * ceil(N/4) * ceil(K/8) + 4`` (``+ 5`` with ``dsp_pipeline``)."""
    return (_ceil_div(m, TILE) * _ceil_div(n, TILE) * _ceil_div(k, 2 * TILE) + SPARSE_LATENCY
            + int(dsp_pipeline))
