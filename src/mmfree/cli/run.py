"""``mmfree cosim``: the tiny MatMul-free LM with every BitLinear executed on the RTL."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

SIMS = ("icarus", "verilator")


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
    r.add_argument("--sim", choices=[*SIMS, "both"], default="both")
    r.add_argument("--waves", action="store_true", help="dump waveforms (large)")
    r.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    u = c.add_argument_group("BitLinear unit")
    u.add_argument("--lanes", type=int, default=16, help="lanes (default 16)")
    u.add_argument("--tree-levels-per-stage", type=int, default=0,
                   help="register the core's adder tree every N levels (default 0)")
    c.set_defaults(func=cmd_cosim)


def _load(args: argparse.Namespace):  # -> tuple[TinyModel, dict]
    from ..golden.tiny_model import TinyConfig, TinyModel, WeightFileError, load_weights
    try:
        if args.weights:
            path = Path(args.weights).resolve()
            return load_weights(path), {"weights": str(path)}
        cfg = TinyConfig(args.d, args.layers, args.vocab, args.inter)
        spec = {"d": cfg.d, "layers": cfg.layers, "vocab": cfg.vocab, "inter": cfg.inter,
                "seed": args.seed}
        return TinyModel.random(cfg, args.seed), spec
    except FileNotFoundError as e:
        raise SystemExit(f"mmfree: weight file not found: {e.filename}") from None
    except (WeightFileError, ValueError) as e:
        raise SystemExit(f"mmfree: {e}") from None


def _text(tokens: list[int]) -> str:
    return repr(bytes(t for t in tokens if t < 256)) if all(t < 256 for t in tokens) else ""


def cmd_cosim(args: argparse.Namespace) -> int:
    from ..flow.toolchain import SimulatorMissing
    from ..golden.tiny_model import deviation, save_weights
    from ..sim.model_cosim import arith, golden_run, run_model, size_unit

    model, spec = _load(args)
    cfg = model.config
    prompt = list(args.prompt.encode())
    if not prompt:
        raise SystemExit("mmfree: --prompt must not be empty")
    if max(prompt) >= cfg.vocab:
        raise SystemExit(f"mmfree: the prompt's byte {max(prompt)} is outside the model's "
                         f"vocabulary of {cfg.vocab}")
    if args.tokens < 1:
        raise SystemExit("mmfree: --tokens must be at least 1")
    if args.save_weights:
        save_weights(model, args.save_weights)
        print(f"wrote {args.save_weights}")
    try:
        unit = size_unit(model, lanes=args.lanes,
                         tree_levels_per_stage=args.tree_levels_per_stage)
        params = unit.params()
    except ValueError as e:
        raise SystemExit(f"mmfree: {e}") from None

    source = args.weights or f"random, seed {args.seed}"
    layers = f"{cfg.layers} layer" + ("s" if cfg.layers != 1 else "")
    print(f"tiny MatMul-free LM: d {cfg.d}, {layers}, vocab {cfg.vocab}, GLU {cfg.inter}"
          f" ({source}); prompt {bytes(prompt)!r}, {args.tokens} new tokens")
    print(f"BitLinear unit: {params['lanes']} lanes, max K {params['max_dim']}, "
          f"{unit.in_width}-bit mantissas, R with {unit.recip_frac} and r with "
          f"{unit.rsqrt_frac} fraction bits; {len(cfg.calls())} BitLinear products per token")
    gold = golden_run(model, prompt, args.tokens, unit)
    print(f"golden integer pipeline: {gold.tokens} {_text(gold.tokens)}")
    dev = deviation(model, prompt, args.tokens, arith(unit))
    print(f"float reference vs integer pipeline ({dev.steps} steps, teacher-forced): max "
          f"|logit diff| {dev.max_abs_logit:.4g}, RMS diff / RMS logit "
          f"{100 * dev.rel_rms_logit:.3f} %, argmax agreement {100 * dev.argmax_agree:.0f} %, "
          f"free-running tokens {'identical' if dev.tokens_equal else 'differ'}")

    steps_total = len(prompt) + args.tokens - 1
    sims = list(SIMS) if args.sim == "both" else [args.sim]
    runs, status = [], 0
    for sim in sims:
        t0 = time.monotonic()

        def progress(entry: dict, sim: str = sim, t0: float = t0) -> None:
            tok = "" if entry["token"] is None else f", token {entry['token']}"
            print(f"  [{sim}] step {entry['step'] + 1}/{steps_total}: {entry['cycles']:,} "
                  f"cycles, {entry['wall_s']:.2f} s{tok} ({time.monotonic() - t0:.0f} s)",
                  file=sys.stderr, flush=True)

        print(f"[{sim}] building and running ...", file=sys.stderr, flush=True)
        try:
            run = run_model(model, spec, prompt, args.tokens, sim, unit, waves=args.waves,
                            progress=progress)
        except SimulatorMissing as e:
            print(f"{sim}: not available: {e}")
            status = 2
            continue
        except (RuntimeError, OSError) as e:
            print(f"{sim}: FAILED: {e}")
            status = 1
            continue
        runs.append(run)
        if not run.ok:
            status = 1

    print(f"\n{'simulator':10} {'tokens':>8} {'logits':>8} {'mismatch':>8} "
          f"{'cycles/token':>12} {'predicted':>10} {'wall s/token':>12} {'total s':>8}")
    for run in runs:
        cyc = sorted(set(run.step_cycles))
        measured = f"{cyc[0]:,}" if len(cyc) == 1 else f"{cyc[0]:,}..{cyc[-1]:,}"
        per_tok = sum(run.step_wall_s) / len(run.step_wall_s)
        print(f"{run.simulator:10} {'same' if run.tokens == run.golden else 'DIFFER':>8} "
              f"{'same' if run.logits_equal else 'DIFFER':>8} {run.mismatches:8} "
              f"{measured:>12} {run.predicted_cycles:>10,} {per_tok:12.2f} {run.wall_s:8.1f}")
        print(f"  RTL tokens: {run.tokens} {_text(run.tokens)}")
        if args.waves:
            print(f"  waveforms: {run.run_dir}")
    if runs:
        print("(cycles/token: the BitLinear unit's products of one token step, back to back; "
              "the prediction is the cycle model's, BitLinearUnitSpec.cycles of each product)")
    if args.json:
        out = {"model": {"d": cfg.d, "layers": cfg.layers, "vocab": cfg.vocab,
                         "inter": cfg.inter, "source": source},
               "unit": params, "prompt": prompt, "golden_tokens": gold.tokens,
               "deviation": dev.__dict__,
               "runs": [{"simulator": r.simulator, "tokens": r.tokens,
                         "tokens_equal": r.tokens == r.golden,
                         "logits_equal": r.logits_equal, "mismatches": r.mismatches,
                         "step_cycles": r.step_cycles, "predicted_cycles": r.predicted_cycles,
                         "step_wall_s": r.step_wall_s, "wall_s": r.wall_s, "ok": r.ok}
                        for r in runs]}
        Path(args.json).write_text(json.dumps(out, indent=1))
    return status
