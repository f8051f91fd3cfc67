"""Bit-exact numpy reference models (installed as ``mmfree.golden``)."""

from .bitlinear import bitlinear, quantize_activations, quantize_weights, rms_norm
from .ternary import (
    decode_codes,
    encode_codes,
    max_exact_k,
    pack_trits,
    ternary_matvec,
    trit_byte_table,
    unpack_trits,
    wrap,
)

__all__ = [
    "bitlinear",
    "decode_codes",
    "encode_codes",
    "max_exact_k",
    "pack_trits",
    "quantize_activations",
    "quantize_weights",
    "rms_norm",
    "ternary_matvec",
    "trit_byte_table",
    "unpack_trits",
    "wrap",
]
