"""``mmfree cosim``: the tiny MatMul-free LM with every BitLinear executed on the RTL."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..spec import BitLinearUnitSpec
from .errors import BAD_INPUT, CHECK_FAILED, OK, UsageError
from .options import add_sim_option, add_unit_options, check_output_file, simulators, write_output

if TYPE_CHECKING:
    from ..golden.tiny_model import TinyConfig, TinyModel

__all__ = ["add_parser", "random_model", "run", "run_tiny_model"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mmfree cosim``."""
    c = sub.add_parser(
        "cosim", help="run the tiny MatMul-free LM with every BitLinear on the RTL",
        description="Generate tokens with a tiny MatMul-free LM (embedding, MLGRU, GLU, "
                    "ternary lm_head, greedy decoding) whose BitLinear products (the fused "
                    "RMSNorm + absmax quantiser and the ternary core) execute on the "
                    "generated RTL through cocotb, the element-wise work on the host. Prints "
                    "the RTL's tokens beside the golden integer pipeline's (they must be "
                    "identical), the measured RTL cycles per token beside the cycle model's "
                    "prediction (they must be equal), and the float reference's deviation. "
                    "Exit status 1 on any difference.")
    m = c.add_argument_group("model")
    m.add_argument("--weights", metavar="FILE.npz",
                   help="weight file (format: mmfree.golden.tiny_model); default: random "
                        "weights from --seed and the shape options")
    m.add_argument("--d", type=int, default=128, help="hidden size (default 128)")
    m.add_argument("--layers", type=int, default=2, help="blocks (default 2)")
    m.add_argument("--vocab", type=int, default=256, help="vocabulary (default 256: bytes)")
    m.add_argument("--inter", type=int, default=0,
                   help="GLU width (default 256 * ceil(8d/3 / 256), as the MatMul-free LM)")
    m.add_argument("--seed", type=int, default=1, help="weight seed (default 1)")
    m.add_argument("--save-weights", metavar="FILE.npz",
                   help="write the model's weights in the documented .npz format and go on")
    r = c.add_argument_group("run")
    r.add_argument("--prompt", default="Hi",
                   help="prompt text, fed as UTF-8 bytes (default 'Hi')")
    r.add_argument("--tokens", type=int, default=8, help="tokens to generate (default 8)")
    add_sim_option(r)
    r.add_argument("--waves", action="store_true",
                   help="dump waveforms (waves.fst in the run folder, printed at the end)")
    r.add_argument("--harness", choices=("bulk", "per-beat"), default="bulk",
                   help="bulk: weights resident in a generated Verilog wrapper, one "
                        "simulator run per product, no Python per cycle; per-beat: the "
                        "cocotb stream drivers (default bulk)")
    r.add_argument("--json", metavar="FILE",
                   help="also write the results as JSON to FILE ('-': standard output)")
    add_unit_options(c, BitLinearUnitSpec, only=("lanes", "tree_levels_per_stage"),
                     title="BitLinear unit")


#: The largest tiny model the command builds (its weights are generated in memory and its
#: BitLinear products run on the RTL simulator: larger sizes would take hours or run out of
#: memory); ``--layers`` is bounded so as well.
MAX_LAYERS, MAX_VOCAB, MAX_WEIGHTS = 64, 1 << 16, 1 << 27


def random_model(d: int, layers: int, vocab: int = 256, inter: int = 0,
                 seed: int = 1, lanes: int | None = None) -> tuple[TinyModel, dict]:
    """A tiny model with random weights, and how the testbench rebuilds it. Its sizes are
    checked before anything is allocated: against :data:`MAX_LAYERS`, :data:`MAX_VOCAB`
    and the largest input the BitLinear unit takes (``max_dim``, with ``lanes`` lanes)."""
    from ..golden.tiny_model import TinyConfig, TinyModel
    try:
        cfg = TinyConfig(d, layers, vocab, inter)
    except ValueError as e:
        raise UsageError(f"--{str(e).split()[0]}: {e}") from None
    check_model_size(cfg, lanes)
    source = {"d": cfg.d, "layers": cfg.layers, "vocab": cfg.vocab, "inter": cfg.inter,
              "seed": seed}
    return TinyModel.random(cfg, seed), source


def check_model_size(cfg: TinyConfig, lanes: int | None = None) -> None:
    """A :class:`UsageError` naming the option if the model is too large to run (checked
    on the shapes alone, before any weight is allocated)."""
    from ..spec import MAX_DIM
    d, inter = cfg.d, cfg.inter
    if max(d, inter) > MAX_DIM:
        which = "--d" if d >= inter else "--inter (default from --d)"
        raise UsageError(f"{which}: the model's largest BitLinear input is {max(d, inter)}, "
                         f"above the BitLinear unit's largest ({MAX_DIM})")
    if cfg.layers > MAX_LAYERS:
        raise UsageError(f"--layers must be at most {MAX_LAYERS}, got {cfg.layers}")
    if cfg.vocab > MAX_VOCAB:
        raise UsageError(f"--vocab must be at most {MAX_VOCAB}, got {cfg.vocab}")
    weights = sum(r * c for r, c in cfg.shapes().values())
    if weights > MAX_WEIGHTS:
        raise UsageError(f"--d/--layers/--inter/--vocab: the model has {weights:,} weights, "
                         f"more than the {MAX_WEIGHTS:,} this command generates and "
                         "simulates")
    if lanes is not None:
        blo, bhi = BitLinearUnitSpec.limits("lanes")
        if not blo <= lanes <= bhi:
            raise UsageError(f"--lanes must be in {blo}..{bhi}, got {lanes}")


def _load(args: argparse.Namespace) -> tuple[TinyModel, dict]:
    from ..golden.tiny_model import WeightFileError, load_weights
    if not args.weights:
        return random_model(args.d, args.layers, args.vocab, args.inter, args.seed,
                            lanes=args.lanes)
    path = Path(args.weights).resolve()
    try:
        return load_weights(path), {"weights": str(path)}
    except FileNotFoundError as e:
        raise UsageError(f"--weights: weight file not found: {e.filename}") from None
    except WeightFileError as e:
        raise UsageError(f"--weights: {e}") from None


def _text(tokens: list[int]) -> str:
    return repr(bytes(t for t in tokens if t < 256)) if all(t < 256 for t in tokens) else ""


def run(args: argparse.Namespace) -> int:
    """``mmfree cosim``: check the arguments, then :func:`run_tiny_model`."""
    from ..golden.tiny_model import save_weights
    from ..sim.model_cosim import size_unit
    check_output_file("--save-weights", args.save_weights)
    check_output_file("--json", args.json)
    model, source = _load(args)
    prompt = list(args.prompt.encode())
    if not prompt:
        raise UsageError("--prompt must not be empty")
    if max(prompt) >= model.config.vocab:
        raise UsageError(f"the prompt's byte {max(prompt)} is outside the model's "
                         f"vocabulary of {model.config.vocab}")
    if args.tokens < 1:
        raise UsageError("--tokens must be at least 1")
    if args.save_weights:
        try:
            save_weights(model, args.save_weights)
        except OSError as e:
            raise UsageError(f"--save-weights {args.save_weights}: cannot write: "
                             f"{e.strerror}") from None
        print(f"wrote {args.save_weights}")
    try:
        unit = size_unit(model, lanes=args.lanes,
                         tree_levels_per_stage=args.tree_levels_per_stage)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    label = args.weights or f"random, seed {args.seed}"
    return run_tiny_model(model, source, label, prompt, args.tokens, simulators(args.sim),
                          unit, waves=args.waves, json_path=args.json,
                          harness=args.harness)


def run_tiny_model(model: TinyModel, source: dict, label: str, prompt: Sequence[int],
                   tokens: int, sims: Sequence[str], unit: BitLinearUnitSpec, *,
                   waves: bool = False, json_path: str | None = None,
                   harness: str = "bulk") -> int:
    """Generate ``tokens`` tokens after ``prompt`` with every BitLinear on the RTL of
    ``unit``, on each simulator of ``sims``; print the golden pipeline's tokens, the float
    reference's deviation and a table of each run beside the golden model and the cycle
    model. Returns 0 if every run matched, 1 if one differed, 2 if a simulator is missing.
    ``source`` tells the testbench how to rebuild ``model`` (``label`` describes it)."""
    from ..flow.toolchain import ToolMissing
    from ..golden.tiny_model import deviation
    from ..sim.model_cosim import arith, golden_run, run_model

    cfg = model.config
    params = unit.params()
    layers = f"{cfg.layers} layer" + ("s" if cfg.layers != 1 else "")
    print(f"tiny MatMul-free LM: d {cfg.d}, {layers}, vocab {cfg.vocab}, GLU {cfg.inter}"
          f" ({label}); prompt {bytes(prompt)!r}, {tokens} new tokens")
    print(f"BitLinear unit: {unit.lanes} lanes, max K {unit.max_dim}, "
          f"{unit.in_width}-bit mantissas, R with {unit.recip_frac} and r with "
          f"{unit.rsqrt_frac} fraction bits; {len(cfg.calls())} BitLinear products per token")
    gold = golden_run(model, prompt, tokens, unit)
    print(f"golden integer pipeline: {gold.tokens} {_text(gold.tokens)}")
    dev = deviation(model, prompt, tokens, arith(unit))
    print(f"float reference vs integer pipeline ({dev.steps} steps, teacher-forced): max "
          f"|logit diff| {dev.max_abs_logit:.4g}, RMS diff / RMS logit "
          f"{100 * dev.rel_rms_logit:.3f} %, argmax agreement {100 * dev.argmax_agree:.0f} %, "
          f"free-running tokens {'identical' if dev.tokens_equal else 'differ'}")

    steps_total = len(prompt) + tokens - 1
    runs, status = [], OK
    for sim in sims:
        t0 = time.monotonic()

        def progress(entry: dict, sim: str = sim, t0: float = t0) -> None:
            tok = "" if entry["token"] is None else f", token {entry['token']}"
            print(f"  [{sim}] step {entry['step'] + 1}/{steps_total}: {entry['cycles']:,} "
                  f"cycles, {entry['wall_s']:.2f} s{tok} ({time.monotonic() - t0:.0f} s)",
                  file=sys.stderr, flush=True)

        print(f"[{sim}] building and running ...", file=sys.stderr, flush=True)
        try:
            result = run_model(model, source, prompt, tokens, sim, unit, waves=waves,
                               progress=progress, harness=harness)
        except ToolMissing as e:
            print(f"{sim}: not available: {e}")
            status = BAD_INPUT
            continue
        except (RuntimeError, OSError) as e:
            print(f"{sim}: FAILED: {e}")
            status = CHECK_FAILED
            continue
        runs.append(result)
        if not result.ok:
            status = CHECK_FAILED

    print(f"\n{'simulator':10} {'tokens':>8} {'logits':>8} {'mismatch':>8} "
          f"{'cycles/token':>12} {'predicted':>10} {'wall s/token':>12} {'total s':>8}")
    for r in runs:
        cyc = sorted(set(r.step_cycles))
        measured = f"{cyc[0]:,}" if len(cyc) == 1 else f"{cyc[0]:,}..{cyc[-1]:,}"
        per_tok = sum(r.step_wall_s) / len(r.step_wall_s)
        print(f"{r.simulator:10} {'same' if r.tokens == r.golden else 'DIFFER':>8} "
              f"{'same' if r.logits_equal else 'DIFFER':>8} {r.mismatches:8} "
              f"{measured:>12} {r.predicted_cycles:>10,} {per_tok:12.2f} {r.wall_s:8.1f}")
        print(f"  RTL tokens: {r.tokens} {_text(r.tokens)}")
        if waves:
            print(f"  waveforms: {r.run_dir}")
    if runs:
        print("(cycles/token: the BitLinear unit's products of one token step, back to back; "
              "the prediction is the cycle model's, BitLinearUnitSpec.cycles of each product)")
    if json_path:
        out = {"model": {"d": cfg.d, "layers": cfg.layers, "vocab": cfg.vocab,
                         "inter": cfg.inter, "source": label},
               "unit": params, "prompt": list(prompt), "golden_tokens": gold.tokens,
               "deviation": dev.__dict__,
               "runs": [{"simulator": r.simulator, "tokens": r.tokens,
                         "tokens_equal": r.tokens == r.golden,
                         "logits_equal": r.logits_equal, "mismatches": r.mismatches,
                         "step_cycles": r.step_cycles, "predicted_cycles": r.predicted_cycles,
                         "step_wall_s": r.step_wall_s, "wall_s": r.wall_s, "ok": r.ok}
                        for r in runs]}
        write_output("--json", json_path, json.dumps(out, indent=1))
    return status
