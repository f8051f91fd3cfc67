"""The host half of ``mmfree run --backend rtl`` inside a cocotb testbench.

:func:`run_model` runs HGRN-Bit from a checkpoint with every BitLinear product on a
:class:`ProductDriver` (the per-beat :class:`mmfree.sim.tb.bitlinear.Unit` or the bulk
harness's :class:`ResidentProducts`) and the element-wise work here on the host
(:func:`mmfree.golden.hgrn_bit.token_step`). Both BitLinear testbenches
(:mod:`mmfree.sim.tb.bitlinear`, :mod:`mmfree.sim.tb.bitlinear_bulk`) call it from their
``test_model``; this module holds no cocotb test of its own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from mmfree.golden.quantiser import NormBitLinear
from mmfree.sim.kit import progress

__all__ = ["ModelRun", "ProductDriver", "ResidentProducts", "run_model"]


class ProductDriver(Protocol):
    """What the model run needs of a driver: one BitLinear product on the device, returning
    ``(row sums, D, E, cycles from the first x transfer to the last y transfer)``."""

    async def product(self, m: np.ndarray, v: np.ndarray, codes: np.ndarray
                      ) -> tuple[Any, int, int, int]: ...


class ResidentProducts:
    """A :class:`ProductDriver` over :class:`mmfree.sim.bulk_bitlinear.BulkBitLinear` with
    every matrix of the model resident: :meth:`load` writes each BitLinear's codes into the
    bulk wrapper's weight memory once; :meth:`product` then finds the matrix by the identity
    of its codes array (the model's own arrays, as
    :meth:`~mmfree.golden.hgrn_bit.IntegerBitLinear.device_inputs` hands them out) and sends
    only the input vector."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._keys: dict[int, str] = {}

    def load(self, bitlinears: Mapping[str, Any]) -> None:
        """Make every ``name -> BitLinearWeights`` of the model resident."""
        for name, w in bitlinears.items():
            self.session.add(name, w.codes)
            self._keys[id(w.codes)] = name

    async def product(self, m: np.ndarray, v: np.ndarray, codes: np.ndarray
                      ) -> tuple[Any, int, int, int]:
        key = self._keys.get(id(codes))
        if key is None:
            raise KeyError("a product with a matrix that was not loaded")
        return await self.session.product(m, v, key)


class ModelRun:
    """The host's bookkeeping of a model run in a testbench: the decoder built from the run's
    configuration ``cfg`` (prompt, ``n_new``, sampling, ``eos``), every step's logits (exact
    floats) and record, per-step progress, and the ``report['model']`` entry ``mmfree
    run`` reads back."""

    def __init__(self, cfg: Mapping[str, Any], report: dict) -> None:
        from mmfree.lm import Decoder, Sampler

        self.dec = Decoder(cfg["prompt"], int(cfg["n_new"]),
                           Sampler(float(cfg.get("temperature", 0.0)),
                                   int(cfg.get("top_k", 0)), cfg.get("seed")), cfg.get("eos"))
        self.report = report
        self.steps: list[dict] = []
        self.logits: list[list[float]] = []

    def observe(self, logits: np.ndarray, t0: float, **record: Any) -> None:
        """One step's float ``logits`` (the decoder picks the next token from them), begun at
        ``time.perf_counter()`` ``t0``; ``record`` (cycles, ...) goes into the step's entry."""
        dec = self.dec
        before = len(dec.result.tokens)
        dec.observe(logits)
        self.logits.append([float(x) for x in logits])
        step = {"step": len(self.steps), **record, "wall_s": time.perf_counter() - t0,
                "token": dec.result.tokens[-1] if len(dec.result.tokens) > before else None}
        self.steps.append(step)
        progress(step | {"steps": dec.steps, "mismatches": self.report["mismatches"]})

    def finish(self, **extra: Any) -> None:
        """Write the run's tokens, steps and logits (and ``extra``) to ``report['model']``."""
        res = self.dec.result
        self.report["model"] = {"tokens": res.tokens, "stopped_at_eos": res.stopped_at_eos,
                                "prompt_positions": len(res.prompt_logits),
                                "steps": self.steps, "logits": self.logits, **extra}


async def run_model(driver: ProductDriver, cfg: dict, report: dict, arith: NormBitLinear,
                    model: Any = None) -> int:
    """HGRN-Bit from the checkpoint folder ``cfg['checkpoint']`` (prompt, ``n_new`` and the
    sampling settings from ``cfg``) with every BitLinear on ``driver``; every device result
    is compared with ``arith.device`` (:class:`~mmfree.golden.quantiser.NormBitLinear`).
    ``model``: the loaded model, if the caller already has it. Records the tokens, the logits
    of every step (exact floats) and each step's cycles in ``report['model']`` and counts
    products, outputs and mismatches in ``report``; returns the mismatches."""
    from mmfree.checkpoint import open_checkpoint
    from mmfree.golden.hgrn_bit import IntegerBitLinear, token_step

    if model is None:
        model = open_checkpoint(cfg["checkpoint"]).load_model()
    backend = IntegerBitLinear(arith)
    run = ModelRun(cfg, report)
    dec = run.dec
    state = model.init_state()
    bad = 0
    while not dec.done:
        t0 = time.perf_counter()
        cycles = []
        gen = token_step(model, dec.next_token(), state)
        call = next(gen)
        while True:
            m, v, codes = backend.device_inputs(call)
            acc, scale, exp, cyc = await driver.product(m, v, codes)
            want_acc, want_scale, want_exp = arith.device(m, v, codes)
            wrong = (int(np.sum(np.asarray(acc) != want_acc)) + int(scale != want_scale)
                     + int(exp != want_exp))
            report["products"] += 1
            report["outputs"] += len(acc) + 2
            report["mismatches"] += wrong
            bad += wrong
            cycles.append(cyc)
            y = backend.rescale(call, np.asarray(acc, dtype=np.int64), scale, exp)
            try:
                call = gen.send(y)
            except StopIteration as stop:
                logits, state = stop.value
                break
        run.observe(logits, t0, cycles=sum(cycles), calls=len(cycles))
    run.finish()
    return bad
