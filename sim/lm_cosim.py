"""HGRN-Bit with every BitLinear on the RTL (``mmfree run --backend rtl``).

:func:`run_rtl` builds a :class:`~mmfree.hdl.bitlinear_unit.BitLinearUnit` sized for the
checkpoint (:func:`size_unit`), runs the ``test_model`` testbench of
:mod:`mmfree.sim.tb.bitlinear` on one simulator (the host part of each token in the
testbench's Python, every BitLinear product on the simulated RTL through its
:class:`~mmfree.sim.tb.bitlinear.ProductDriver`) and returns the tokens, the logits of every
step, and the measured cycles of each token step (``mmfree run`` sets them beside the cycle
model's prediction, :func:`mmfree.model.cycles.bitlinear_token_cycles`: the spec's formula
over the ``6L + 1`` calls).

Two harnesses (:data:`HARNESSES`):

* ``bulk`` (default): the unit inside the bulk wrapper (:mod:`mmfree.sim.bulk`), every weight
  matrix of the checkpoint written once into its replay memory, each product one segment that
  the simulator runs without Python per cycle (:mod:`mmfree.sim.tb.bitlinear_bulk`);
* ``per-beat``: the cocotb stream drivers of :mod:`mmfree.sim.tb.bitlinear`, Python on
  every clock edge (reactive; slower).

Both check every row sum, ``D`` and ``E`` against the golden model and measure the same
cycles (first ``x`` transfer to last ``y`` transfer of each product).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..golden.hgrn_bit import HGRNBitConfig
from ..spec import BitLinearUnitSpec, EngineSpec, MultiCoreBitLinearSpec
from ..spec.engine import compile_token
from . import cosim

__all__ = ["HARNESSES", "RtlRun", "run_engine", "run_rtl", "size_engine", "size_unit"]

HARNESSES = ("bulk", "per-beat")  #: ``mmfree run --harness``; the first is the default


def size_unit(config: HGRNBitConfig, **params: int) -> BitLinearUnitSpec:
    """The BitLinear unit for a model: ``params`` as :class:`~mmfree.spec.BitLinearUnitSpec`
    takes them; without ``max_dim``, the model's longest BitLinear input (``max(d, I)``)
    rounded up to whole lane groups. Raises ``ValueError`` (naming the parameter) if it
    cannot run the model."""
    need = max(k for _, _, k in config.bitlinears())
    lanes = params.get("lanes", BitLinearUnitSpec.lanes)
    if "max_dim" not in params and isinstance(lanes, int) and lanes >= 1:
        params["max_dim"] = -(-need // lanes) * lanes
    spec = BitLinearUnitSpec(**params).validate()
    if spec.max_dim < need:
        raise ValueError(f"max_dim {spec.max_dim} is below the model's longest BitLinear "
                         f"input ({need})")
    return spec


@dataclass
class RtlRun:
    """One simulator's run of the model."""

    simulator: str
    tokens: list[int]
    stopped_at_eos: bool
    logits: list[np.ndarray]  #: every step's logits (float64), prompt positions first
    prompt_positions: int
    mismatches: int  #: device outputs (row sums, D, E) differing from the golden model
    step_cycles: list[int]  #: measured RTL cycles of each token step
    step_wall_s: list[float]  #: simulation wall time of each token step
    wall_s: float  #: the whole run, build included
    run_dir: Path

    @property
    def prompt_logits(self) -> list[np.ndarray]:
        return self.logits[:self.prompt_positions]


def run_rtl(checkpoint: Path, prompt: Sequence[int], n_new: int,
            simulator: str, unit: BitLinearUnitSpec, *, temperature: float = 0.0,
            top_k: int = 0, seed: int | None = None, eos: int | None = None,
            sim_seed: int = 1, waves: bool = False, harness: str = HARNESSES[0],
            progress: Callable[[dict], None] | None = None) -> RtlRun:
    """Run the prompt and generate up to ``n_new`` tokens of the checkpoint in folder
    ``checkpoint`` with every BitLinear on ``unit``'s RTL on ``simulator``, through
    ``harness`` (one of :data:`HARNESSES`). Raises
    ``RuntimeError`` if the testbench fails (a device output differed from the golden
    model, or the simulation broke); the logs stay in the run folder."""
    model = {"checkpoint": str(Path(checkpoint).resolve()), "prompt": list(prompt),
             "n_new": n_new, "temperature": temperature, "top_k": top_k, "seed": seed,
             "eos": eos}
    t0 = time.monotonic()
    if harness == "bulk":
        from . import bulk
        from .bulk_bitlinear import session_depths
        config = HGRNBitConfig.from_dict(
            json.loads((Path(checkpoint) / "config.json").read_text()))
        shapes = [(m, k) for _, m, k in config.bitlinears()]
        res = bulk.run_unit(unit, simulator, "mmfree.sim.tb.bitlinear_bulk", seed=sim_seed,
                            depths=session_depths(unit, shapes), testcase="test_model",
                            waves=waves, progress=progress, extra={"model": model})
    elif harness == "per-beat":
        res = cosim.run_unit(unit, simulator, seed=sim_seed, testcase="test_model",
                             waves=waves, progress=progress, extra={"model": model})
    else:
        raise ValueError(f"harness must be one of {', '.join(HARNESSES)}, got {harness!r}")
    return _model_run(res, simulator, time.monotonic() - t0, "model", "device mismatches")


def size_engine(config: HGRNBitConfig, lanes: int, **params: object) -> EngineSpec:
    """The whole-token engine for a model (:meth:`EngineSpec.for_program` of its program,
    with ``params``: ``cores`` and its AXI ports). Raises ``ValueError`` naming ``lanes``
    (or the parameter) if the engine cannot run the model."""
    if isinstance(lanes, bool) or not isinstance(lanes, int) or not 1 <= lanes <= 64:
        raise ValueError(f"lanes must be in 1..64 for the engine, got {lanes!r}")
    program = compile_token(config, lanes=lanes)
    spec = EngineSpec.for_program(program, **params)
    bl = spec.bitlinear()
    if isinstance(bl, MultiCoreBitLinearSpec):
        for _, m, k in config.bitlinears():
            bl.check_shape(m, k)
    return spec


def run_engine(checkpoint: Path, prompt: Sequence[int], n_new: int, simulator: str,
               spec: EngineSpec, *, temperature: float = 0.0, top_k: int = 0,
               seed: int | None = None, eos: int | None = None, sim_seed: int = 1,
               waves: bool = False, progress: Callable[[dict], None] | None = None,
               mem_latency: int = 8, mem_rate: tuple[int, int] = (1, 1)) -> RtlRun:
    """Run the prompt and generate up to ``n_new`` tokens of the checkpoint in folder
    ``checkpoint`` on the whole-token engine's RTL (``test_model`` of
    :mod:`mmfree.sim.tb.engine`; with ``spec.cores``, the weights from one AXI memory per
    core of latency ``mem_latency`` and at most ``mem_rate`` ``(n, d)`` beats in ``d``
    cycles). ``mismatches`` counts logits and argmaxes that differ from the fixed-point
    model. Raises ``RuntimeError`` if the testbench fails."""
    model = {"checkpoint": str(Path(checkpoint).resolve()), "prompt": list(prompt),
             "n_new": n_new, "temperature": temperature, "top_k": top_k, "seed": seed,
             "eos": eos}
    t0 = time.monotonic()
    extra: dict = {"model": model}
    if spec.cores:
        extra.update(mem_latency=mem_latency, mem_rate=list(mem_rate))
    res = cosim.run_unit(spec, simulator, seed=sim_seed, testcase="test_model", waves=waves,
                         progress=progress, extra=extra)
    return _model_run(res, simulator, time.monotonic() - t0, "engine", "mismatches")


def _model_run(res: cosim.CosimResult, simulator: str, wall: float, what: str,
               mismatches: str) -> RtlRun:
    """The :class:`RtlRun` a ``test_model`` testbench reported; raises ``RuntimeError``
    (naming the ``what`` testbench, its ``mismatches`` and the logs) if it failed."""
    rep = res.report
    if res.failed or "model" not in rep:
        raise RuntimeError(f"{simulator}: the {what} testbench failed "
                           f"({rep.get('mismatches', '?')} {mismatches}); logs in "
                           f"{res.run_dir}")
    out = rep["model"]
    return RtlRun(simulator, out["tokens"], out["stopped_at_eos"],
                  [np.asarray(lg, dtype=np.float64) for lg in out["logits"]],
                  out["prompt_positions"], rep["mismatches"],
                  [s["cycles"] for s in out["steps"]],
                  [s["wall_s"] for s in out["steps"]], wall, res.run_dir)
