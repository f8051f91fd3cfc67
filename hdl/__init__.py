"""Amaranth components (installed as ``mmfree.hdl``)."""

from .packed_ternary_core import PackedTernaryCore
from .ternary_core import TernaryCore
from .trit_unpacker import TritUnpacker

__all__ = ["PackedTernaryCore", "TernaryCore", "TritUnpacker"]
