"""The project's units as the command line sees them: parameters, builder, testbench."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from amaranth.lib import wiring


@dataclass(frozen=True)
class Unit:
    """How to parameterise, build, name and co-simulate one unit."""

    name: str
    summary: str
    add_args: Callable[[argparse.ArgumentParser], None]
    params: Callable[[argparse.Namespace], dict[str, object]]
    check: Callable[[dict[str, object]], None]  #: raises ValueError/TypeError naming the param
    build: Callable[[dict[str, object]], wiring.Component]
    top_name: Callable[[dict[str, object]], str]
    testbench: str  #: cocotb test module


def _ternary_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("ternary-core parameters")
    g.add_argument("--lanes", type=int, default=16,
                   help="weights/activations consumed per cycle, 1..1024 (default 16)")
    g.add_argument("--act-width", type=int, default=8,
                   help="signed activation width in bits, 2..16 (default 8)")
    g.add_argument("--acc-width", type=int, default=32,
                   help="signed accumulator width, act-width+1..64; results wrap (default 32)")
    g.add_argument("--packed", action="store_true",
                   help="read weights packed 5 trits per byte (adds the trit unpacker, +1 cycle)")
    g.add_argument("--tree-levels-per-stage", type=int, default=0,
                   help="register the adder tree every N levels for a higher clock (0: the "
                        "whole tree in one stage, latency 3; else latency "
                        "2 + ceil(log2(lanes)/N))")


def _ternary_params(a: argparse.Namespace) -> dict[str, object]:
    return {"lanes": a.lanes, "act_width": a.act_width, "acc_width": a.acc_width,
            "packed": a.packed, "tree_levels_per_stage": a.tree_levels_per_stage}


def _ternary_check(p: dict[str, object]) -> None:
    from .spec import TernaryCoreSpec
    TernaryCoreSpec(**p).validate()


def _ternary_build(p: dict[str, object]) -> wiring.Component:
    from .hdl import build
    from .spec import TernaryCoreSpec
    return build(TernaryCoreSpec(**p))


def _ternary_name(p: dict[str, object]) -> str:
    pipe = p.get("tree_levels_per_stage", 0)
    return (f"mmfree_ternary_core{'_packed' if p['packed'] else ''}_l{p['lanes']}"
            f"_x{p['act_width']}_a{p['acc_width']}{f'_t{pipe}' if pipe else ''}")


def _tensor_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("tensor-core parameters")
    g.add_argument("--width", type=int, default=8,
                   help="operand width of A and B in bits, 2..32 (default 8)")
    g.add_argument("--unsigned", action="store_true",
                   help="unsigned operands (default: signed, two's complement)")
    g.add_argument("--acc-width", type=int, default=32,
                   help="signed C/D width, >= 2*width (+1 if unsigned), <= 64; D wraps "
                        "(default 32)")
    g.add_argument("--accumulate", action="store_true",
                   help="accumulate-in-place mode: first/last flags, D kept inside for K-loops")
    g.add_argument("--dsp-pipeline", action="store_true",
                   help="register every product twice (a DSP block's output register, then "
                        "the fabric) for a higher clock on FPGAs; latency +1")


def _tensor_params(a: argparse.Namespace) -> dict[str, object]:
    return {"width": a.width, "is_signed": not a.unsigned, "acc_width": a.acc_width,
            "accumulate": a.accumulate, "dsp_pipeline": a.dsp_pipeline}


def _tensor_check(p: dict[str, object]) -> None:
    from .spec import TensorCoreSpec
    TensorCoreSpec(**p).validate()


def _tensor_build(p: dict[str, object]) -> wiring.Component:
    from .hdl.tensor_core import TensorCore
    return TensorCore(**p)


def _tensor_name(p: dict[str, object]) -> str:
    sign = "s" if p["is_signed"] else "u"
    return (f"mmfree_tensor_core_{sign}{p['width']}_a{p['acc_width']}"
            f"{'_acc' if p['accumulate'] else ''}{'_dp' if p.get('dsp_pipeline') else ''}")


def _sparse_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sparse-decode parameters")
    g.add_argument("--mode", choices=["expand", "select"], default="expand",
                   help="expand compressed A to the dense tile, or select B rows for the "
                        "sparse MAC (default expand)")
    g.add_argument("--width", type=int, default=8, help="operand width, 2..32 (default 8)")
    g.add_argument("--unsigned", action="store_true", help="unsigned operands")
    g.add_argument("--acc-width", type=int, default=32,
                   help="C width carried through in select mode (default 32)")
    g.add_argument("--accumulate", action="store_true",
                   help="select mode: carry the first/last flags of the accumulate protocol")


def _sparse_params(a: argparse.Namespace) -> dict[str, object]:
    return {"width": a.width, "is_signed": not a.unsigned, "mode": a.mode,
            "acc_width": a.acc_width, "accumulate": a.accumulate}


def _sparse_check(p: dict[str, object]) -> None:
    from .spec import SparseDecodeSpec
    SparseDecodeSpec(**p).validate()


def _sparse_build(p: dict[str, object]) -> wiring.Component:
    from .hdl.sparse_decode import SparseDecode
    return SparseDecode(**p)


def _sparse_name(p: dict[str, object]) -> str:
    sign = "s" if p["is_signed"] else "u"
    extra = (f"_a{p['acc_width']}{'_acc' if p['accumulate'] else ''}"
             if p["mode"] == "select" else "")
    return f"mmfree_sparse_decode_{p['mode']}_{sign}{p['width']}{extra}"


def _sparse_tensor_build(p: dict[str, object]) -> wiring.Component:
    from .hdl.sparse_decode import SparseTensorCore
    return SparseTensorCore(**p)


def _sparse_tensor_name(p: dict[str, object]) -> str:
    return "mmfree_sparse_" + _tensor_name(p).removeprefix("mmfree_")


def _bitlinear_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("bitlinear-unit parameters")
    g.add_argument("--lanes", type=int, default=16,
                   help="lane group width of input, quantiser and ternary core (default 16)")
    g.add_argument("--max-dim", type=int, default=1024,
                   help="longest input vector K (sizes the two buffers; default 1024)")
    g.add_argument("--in-width", type=int, default=16,
                   help="signed width of the input mantissas, 2..32 (default 16)")
    g.add_argument("--recip-frac", type=int, default=24,
                   help="fraction bits of the absmax reciprocal R (default 24)")
    g.add_argument("--rsqrt-frac", type=int, default=32,
                   help="fraction bits of RMSNorm's reciprocal square root r (default 32)")
    g.add_argument("--acc-width", type=int, default=32,
                   help="signed row-sum width, 9..64; results wrap (default 32)")
    g.add_argument("--tree-levels-per-stage", type=int, default=0,
                   help="register the core's adder tree every N levels (0: one stage)")


def _bitlinear_params(a: argparse.Namespace) -> dict[str, object]:
    return {"lanes": a.lanes, "max_dim": a.max_dim, "in_width": a.in_width,
            "recip_frac": a.recip_frac, "rsqrt_frac": a.rsqrt_frac, "acc_width": a.acc_width,
            "tree_levels_per_stage": a.tree_levels_per_stage}


def _bitlinear_build(p: dict[str, object]) -> wiring.Component:
    from .hdl.bitlinear_unit import BitLinearUnit
    return BitLinearUnit(**p)


def _bitlinear_check(p: dict[str, object]) -> None:
    _bitlinear_build(p)  # the constructors validate every parameter by name


def _bitlinear_name(p: dict[str, object]) -> str:
    pipe = p.get("tree_levels_per_stage", 0)
    return (f"mmfree_bitlinear_l{p['lanes']}_k{p['max_dim']}_i{p['in_width']}"
            f"_r{p['recip_frac']}_s{p['rsqrt_frac']}_a{p['acc_width']}"
            f"{f'_t{pipe}' if pipe else ''}")


UNITS: dict[str, Unit] = {u.name: u for u in (
    Unit("ternary-core", "ternary accumulate core, y = W x with W in {-1,0,+1}",
         _ternary_args, _ternary_params, _ternary_check, _ternary_build, _ternary_name,
         "mmfree.sim.tb.ternary_core"),
    Unit("tensor-core", "4x4x4 MAC array, D = A*B + C per cycle (optionally accumulating)",
         _tensor_args, _tensor_params, _tensor_check, _tensor_build, _tensor_name,
         "mmfree.sim.tb.tensor_core"),
    Unit("sparse-decode", "2:4 sparse decode unit (expand to dense, or select B rows)",
         _sparse_args, _sparse_params, _sparse_check, _sparse_build, _sparse_name,
         "mmfree.sim.tb.sparse_decode"),
    Unit("sparse-tensor-core", "tensor core in 2:4 sparse mode, logical 4x8x4 per cycle",
         _tensor_args, _tensor_params, _tensor_check, _sparse_tensor_build,
         _sparse_tensor_name, "mmfree.sim.tb.sparse_tensor"),
    Unit("bitlinear-unit", "BitLinear: fused RMSNorm + absmax int8 quantiser feeding a "
         "ternary core", _bitlinear_args, _bitlinear_params, _bitlinear_check,
         _bitlinear_build, _bitlinear_name, "mmfree.sim.tb.bitlinear"),
)}
