"""BitLinear quantisation of the MatMul-free LM (Zhu et al., arXiv 2406.02528).

As the reference implementation defines it (``ridgerchu/matmulfreellm``):

* input: RMSNorm, ``x / sqrt(mean(x**2) + eps)`` (times an optional learned weight), with
  BitLinear's own ``eps = 1e-8`` (the model's block-level RMSNorms use 1e-6);
* activations, per token (last axis): ``s_x = 127 / max(|x|, 1e-5)``,
  ``x_q = clamp(round(x * s_x), -128, 127)`` (int8);
* weights, per tensor: ``s_w = 1 / max(mean(|W|), 1e-5)``,
  ``W_q = clamp(round(W * s_w), -1, 1)`` (ternary);
* output: ``(x_q @ W_q.T) / (s_x * s_w)``.

``round`` is round-half-to-even (numpy's and PyTorch's ``round``). The integer product is the
one :func:`mmfree.golden.ternary.ternary_matvec` computes, so the hardware result plugs in
unchanged; the float rescale happens outside the ternary core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .ternary import ternary_matvec

__all__ = ["BITLINEAR_RMS_EPS", "RMS_EPS", "SCALE_EPS", "BitLinearResult", "bitlinear",
           "quantize_activations", "quantize_weights", "rms_norm"]

SCALE_EPS = 1e-5
RMS_EPS = 1e-6  #: the model's block-level RMSNorm
BITLINEAR_RMS_EPS = 1e-8  #: the RMSNorm inside every BitLinear (reference ``ops/bitnet.py``)


def rms_norm(x: npt.ArrayLike, weight: npt.ArrayLike | None = None,
             eps: float = RMS_EPS) -> np.ndarray:
    """RMSNorm over the last axis, in float64."""
    xa = np.asarray(x, dtype=np.float64)
    y = xa / np.sqrt(np.mean(xa * xa, axis=-1, keepdims=True) + eps)
    return y if weight is None else y * np.asarray(weight, dtype=np.float64)


def quantize_weights(w: npt.ArrayLike) -> tuple[np.ndarray, float]:
    """Absmean ternary quantisation: returns ``(W_q, s_w)`` with ``W ~= W_q / s_w``."""
    wa = np.asarray(w, dtype=np.float64)
    scale = 1.0 / max(float(np.mean(np.abs(wa))), SCALE_EPS)
    return np.clip(np.round(wa * scale), -1, 1).astype(np.int64), scale


def quantize_activations(x: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per-token absmax int8 quantisation: returns ``(x_q, s_x)``, ``s_x`` with a kept last axis."""
    xa = np.asarray(x, dtype=np.float64)
    scale = 127.0 / np.maximum(np.max(np.abs(xa), axis=-1, keepdims=True), SCALE_EPS)
    return np.clip(np.round(xa * scale), -128, 127).astype(np.int64), scale


@dataclass(frozen=True)
class BitLinearResult:
    """Every intermediate of one BitLinear evaluation, for checking hardware stage by stage."""

    x_q: np.ndarray  #: int8 activations, one row per token
    x_scale: np.ndarray  #: per-token activation scale (tokens, 1)
    w_q: np.ndarray  #: ternary weights (out, in)
    w_scale: float  #: per-tensor weight scale
    acc: np.ndarray  #: integer products (tokens, out), as the ternary core returns them
    y: np.ndarray  #: rescaled float output (tokens, out)


def bitlinear(x: npt.ArrayLike, w: npt.ArrayLike, norm_weight: npt.ArrayLike | None = None,
              acc_width: int = 32) -> BitLinearResult:
    """Evaluate BitLinear for tokens ``x`` (tokens, in) and float weights ``w`` (out, in)."""
    xa = np.atleast_2d(np.asarray(x, dtype=np.float64))
    wa = np.asarray(w, dtype=np.float64)
    if wa.ndim != 2 or xa.shape[-1] != wa.shape[1]:
        raise ValueError(f"shapes do not chain: x {xa.shape}, W {wa.shape}")
    w_q, w_scale = quantize_weights(wa)
    x_q, x_scale = quantize_activations(rms_norm(xa, norm_weight, BITLINEAR_RMS_EPS))
    acc = np.stack([ternary_matvec(w_q, row, 8, acc_width) for row in x_q])
    return BitLinearResult(x_q, x_scale, w_q, w_scale, acc, acc / (x_scale * w_scale))
