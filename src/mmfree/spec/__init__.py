"""Unit specifications: every unit's parameters, limits, defaults, naming and timing, once.

A spec (:class:`~mmfree.spec.base.UnitSpec`) is a frozen dataclass of one unit's parameters
with :meth:`~mmfree.spec.base.UnitSpec.validate`, :meth:`~mmfree.spec.base.UnitSpec.top_name`,
``latency`` and ``cycles(...)``. :data:`UNITS` is the registry of the units a user can
generate, lint, co-simulate and synthesise, by their command-line names. This package
imports neither Amaranth nor the command line: the hardware (``mmfree.hdl``), the flow, the
testbenches, the cycle model and the CLI all read it.
"""

from __future__ import annotations

from .base import Bound, Param, UnitSpec, check_int, param
from .bitlinear_unit import MAX_DIM, BitLinearUnitSpec, NormQuantiserSpec
from .engine import EngineSpec
from .fetched_product import FetchedProductSpec
from .multicore_bitlinear import MultiCoreBitLinearSpec
from .tensor_core import TILE, SparseDecodeSpec, SparseTensorCoreSpec, TensorCoreSpec
from .ternary_core import LANES, MAX_LANES, TernaryCoreSpec, ternary_latency
from .vector_unit import VecOp, VectorUnitSpec
from .weight_fetcher import WeightFetcherSpec

__all__ = ["LANES", "MAX_DIM", "MAX_LANES", "TILE", "UNITS", "BitLinearUnitSpec", "Bound",
           "EngineSpec", "FetchedProductSpec", "MultiCoreBitLinearSpec",
           "NormQuantiserSpec", "Param", "SparseDecodeSpec",
           "SparseTensorCoreSpec", "TensorCoreSpec", "TernaryCoreSpec", "UnitSpec", "VecOp",
           "VectorUnitSpec", "WeightFetcherSpec", "check_int",
           "param", "spec_for",
           "ternary_latency"]

#: The units by their command-line names, in the order the CLI lists them.
UNITS: dict[str, type[UnitSpec]] = {cls.name: cls for cls in (
    TernaryCoreSpec, TensorCoreSpec, SparseDecodeSpec, SparseTensorCoreSpec, NormQuantiserSpec,
    BitLinearUnitSpec, WeightFetcherSpec, FetchedProductSpec, VectorUnitSpec, EngineSpec)}


def spec_for(unit: str, **params: object) -> UnitSpec:
    """The validated spec of unit ``unit`` (a :data:`UNITS` name) with ``params``."""
    try:
        cls = UNITS[unit]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}; choose from {', '.join(UNITS)}") from None
    return cls(**params).validate()
