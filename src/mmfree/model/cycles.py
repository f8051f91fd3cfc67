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


#: The BitLinear front end's arithmetic defaults (``mmfree.golden.quantiser``).
RECIP_FRAC = 24
RSQRT_FRAC = 32


def quantiser_overhead_cycles(lanes: int = 16, recip_frac: int = RECIP_FRAC,
                              rsqrt_frac: int = RSQRT_FRAC) -> int:
    """RmsAbsmaxQuantiser: cycles from a vector's last input group to its scale output:
    the load pipeline's drain (2 + the tree stages, ``max(1, ceil(ceil(log2 lanes) / 2))``)
    + start (1) + the longer of the two restoring divisions
    (``recip_frac + 7`` bits for ``127 * 2**recip_frac``, ``2 * rsqrt_frac + 1`` bits for
    ``2**(2 * rsqrt_frac)``) + start (1) + the square root (``rsqrt_frac + 1`` bits) + the
    scale register (1)."""
    depth = (int(lanes) - 1).bit_length()
    drain = 2 + max(1, -(-depth // 2))
    return drain + 3 + max(recip_frac + 7, 2 * rsqrt_frac + 1) + rsqrt_frac + 1


def bitlinear_unit_cycles(m: npt.ArrayLike, k: npt.ArrayLike, lanes: npt.ArrayLike,
                          recip_frac: int = RECIP_FRAC, rsqrt_frac: int = RSQRT_FRAC,
                          tree_levels_per_stage: int = 0) -> np.ndarray:
    """BitLinearUnit (fused quantiser + ternary core), one M x K BitLinear product:
    ``2G + overhead + 4 + M*G + latency`` with ``G = ceil(K / lanes)``: G input groups,
    the quantiser's fixed overhead, the scale transfer, the two-stage quantise pipeline, G
    quantised groups into the activation buffer, one cycle to switch to the weights, M*G
    weight groups, the core."""
    g = _ceil_div(k, lanes)
    core = ternary_matvec_cycles(m, k, lanes, tree_levels_per_stage=tree_levels_per_stage)
    overhead = np.vectorize(quantiser_overhead_cycles)(lanes, recip_frac, rsqrt_frac)
    return 2 * g + overhead + 4 + core


def mmfree_bitlinear_calls(d: int, inter: int, vocab: int, layers: int
                           ) -> list[tuple[str, int, int]]:
    """The BitLinear products of one MatMul-free LM token on a BitLinear unit, (name, M, K):
    per layer the MLGRU's c/f/g projections share one quantised input (3d x d), then o
    (d x d), GLU gate+up (2I x d) and down (d x I); then the lm_head (vocab x d)."""
    per_layer = [("mlgru.cfg", 3 * d, d), ("mlgru.o", d, d), ("glu.gate_up", 2 * inter, d),
                 ("glu.down", d, inter)]
    return [(f"layers.{n}.{name}", m, k) for n in range(layers) for name, m, k in per_layer] \
        + [("lm_head", vocab, d)]


def bitlinear_token_cycles(d: int, inter: int, vocab: int, layers: int, lanes: int,
                           recip_frac: int = RECIP_FRAC, rsqrt_frac: int = RSQRT_FRAC,
                           tree_levels_per_stage: int = 0) -> int:
    """Cycles the BitLinear unit spends on one token (its products back to back)."""
    return int(sum(bitlinear_unit_cycles(m, k, lanes, recip_frac, rsqrt_frac,
                                         tree_levels_per_stage)
                   for _, m, k in mmfree_bitlinear_calls(d, inter, vocab, layers)))
