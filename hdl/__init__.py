"""Amaranth components, one per module (installed as ``mmfree.hdl``).

Each unit of :data:`mmfree.spec.UNITS` is built from its spec by :func:`build`; the board
self-test design is the :mod:`mmfree.hdl.selftest` subpackage. Nothing here runs a tool:
Verilog generation, lint, synthesis and the board flow are :mod:`mmfree.flow`.
"""

from __future__ import annotations

import importlib

from amaranth.lib import wiring

from ..spec import UnitSpec
from .bitlinear_unit import BitLinearUnit
from .engine import Engine
from .norm_quantiser import NormQuantiser
from .packed_ternary_core import PackedTernaryCore
from .sparse_decode import SparseDecode, SparseTensorCore
from .tensor_core import TensorCore
from .ternary_core import TernaryCore
from .trit_unpacker import TritUnpacker
from .vector_unit import VectorUnit

__all__ = ["BitLinearUnit", "Engine", "NormQuantiser", "PackedTernaryCore",
           "SparseDecode", "SparseTensorCore", "TensorCore", "TernaryCore", "TritUnpacker",
           "VectorUnit", "build", "component_class"]


def component_class(spec: UnitSpec) -> type[wiring.Component]:
    """The Amaranth component class that implements ``spec`` (its ``component`` path)."""
    module, _, name = spec.component.rpartition(".")
    return getattr(importlib.import_module(module), name)


def build(spec: UnitSpec) -> wiring.Component:
    """The component for ``spec``, its parameters validated first (errors name the
    parameter)."""
    return component_class(spec.validate())(**spec.kwargs())
