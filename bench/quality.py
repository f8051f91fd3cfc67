#!/usr/bin/env python3
"""What each hardware choice costs in model quality: held-out bits per byte of the shipped
trained HGRN-Bit under the float reference, the BitLinear-only integer pipeline, the
whole-token fixed-point model, and one row per hardware choice varied alone.

Text: the checkpoint's held-out help topics (``pydoc_data.topics``, the split recorded in its
``training.json``), whole topics in name order joined by newlines, cut after ``--bytes`` UTF-8
bytes; tokenised with the checkpoint's own ``tokenizer.json`` (``<s>`` first) and
teacher-forced from one zero recurrent state, carried across the whole text (the same
scoring as ``mmfree run --perplexity FILE``; ``--save-text FILE`` writes the text so that
command reproduces the first two rows).

Rows: the float64 reference (the released arithmetic: eps 1e-6, int8 half away from zero);
the ``bitlinear-int`` pipeline (``mmfree run --backend bitlinear-int``: BitLinears in the
default ``NormQuantFormat()``: 16-bit input and norm weight mantissas, P 17, int8, half away
from zero, eps dropped; element-wise work in float64); the whole-token fixed-point model
(``--backend integer``: :mod:`mmfree.golden.hgrn_fixed` with ``FixedConfig()``). Group
``bitlinear``, each alone on the bitlinear-int pipeline: input mantissa width, norm-weight
mantissa width, the quantiser's precision P (``f = 2P - act_bits`` fraction bits of the
absmax reciprocal, ``S = 2P - 2`` of the rsqrt), activation width, rounding mode; and eps
dropped from the float reference. Group ``fixed``, each alone on the whole-token model: the
sigmoid/SiLU table size, the recurrent-state width (3 integer bits kept), the element-wise
RMSNorm rsqrt bits, the residual width (6 integer bits kept), the activation width (5
integer bits kept), the element-wise rounding mode.

Each row: bits per byte, its difference from the float reference (absolute and %), twice the
paired standard error of that difference (per-token NLL differences taken as independent:
a rough yardstick for which differences are more than chance), the relative logit RMS
against the float reference over the whole text (``sqrt(sum (l - l_ref)**2 / sum
l_ref**2)``, each pipeline carrying its own state), and the share of steps whose argmax
equals the float reference's.

    .venv/bin/python bench/quality.py [--bytes 8000] [--groups bitlinear,fixed] [--json FILE]
        [--save-text FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmfree.checkpoint import CheckpointError, open_checkpoint
from mmfree.golden.hgrn_bit import HGRNBitModel, IntegerBitLinear, float_bitlinear
from mmfree.golden.hgrn_fixed import ROUNDINGS as FIXED_ROUNDINGS
from mmfree.golden.hgrn_fixed import FixedConfig
from mmfree.golden.quantiser import ROUNDINGS, NormBitLinear, NormQuantFormat
from mmfree.lm import FixedStepper, Perplexity, Progress, as_stepper, log_softmax
from mmfree.tiny_checkpoint import default_path

DEFAULT = NormQuantFormat()
FIXED = FixedConfig()
GROUPS = ("bitlinear", "fixed")
LADDERS = {  # option name -> (NormQuantFormat field, default ladder)
    "in-widths": ("in_width", "4,5,6,8,10,12,16"),
    "weight-widths": ("weight_width", "3,4,5,6,8,12,16"),
    "mant-bits": ("mant_bits", "9,10,11,12,13,14,15,16,17"),
    "act-bits": ("act_bits", "4,5,6,7,8,10"),
}
#: whole-token choices: option -> (label, default ladder, range, field changes for a value)
FIXED_LADDERS: dict[str, tuple[str, str, tuple[int, int], Callable[[int], dict]]] = {
    "table-bits": ("sigmoid/SiLU table size (table_bits)", "4,5,6,8,10,12", (2, 16),
                   lambda v: {"table_bits": v}),
    "state-widths": ("recurrent-state width (state_width, 3 integer bits)", "14,15,16,18,20",
                     (14, 24), lambda v: {"state_width": v, "state_frac": v - 3}),
    "rsqrt-bits": ("element-wise RMSNorm rsqrt bits (rsqrt_bits)", "6,8,10,12,17", (6, 24),
                   lambda v: {"rsqrt_bits": v}),
    "res-widths": ("residual width (res_width, 6 integer bits)", "10,12,14,16,18,20",
                   (8, 24), lambda v: {"res_width": v, "res_frac": v - 6}),
    "act-widths": ("activation width (act_width, 5 integer bits)", "8,10,12,14,16", (7, 16),
                   lambda v: {"act_width": v, "act_frac": v - 5}),
}


class BenchError(Exception):
    """Bad input: one line, exit status 2."""


@dataclass
class Row:
    """One line of the table: the choice varied, its value, and how to evaluate it."""

    choice: str
    value: str
    key: tuple  # rows with the same key share one evaluation
    make: Callable[[], Callable] | None  # backend factory (a BitLinear callable or a stepper)
    default: bool = False
    result: dict[str, Any] = field(default_factory=dict)


def integer_row(choice: str, value: str, fmt: NormQuantFormat) -> Row:
    return Row(choice, value + (" (default)" if fmt == DEFAULT else ""), ("integer", fmt),
               lambda: IntegerBitLinear(NormBitLinear(fmt)), default=fmt == DEFAULT)


def fixed_row(model_ref: list, choice: str, value: str, cfg: FixedConfig) -> Row:
    """A row on the whole-token model (``model_ref[0]``: the model, set once loaded)."""
    return Row(choice, value + (" (default)" if cfg == FIXED else ""), ("fixed", cfg),
               lambda: FixedStepper(model_ref[0], cfg), default=cfg == FIXED)


def build_rows(ladders: dict[str, list[int]], roundings: list[str],
               fixed_ladders: dict[str, list[int]] | None = None,
               fixed_roundings: list[str] | None = None,
               groups: tuple[str, ...] = GROUPS, model_ref: list | None = None) -> list[Row]:
    model_ref = [None] if model_ref is None else model_ref
    rows = [Row("float reference", "float64, eps 1e-6, int8 half away", ("float", 1e-6),
                lambda: float_bitlinear),
            integer_row("bitlinear-int pipeline", "NormQuantFormat(), element-wise float64",
                        DEFAULT),
            fixed_row(model_ref, "whole-token fixed point (integer)", "FixedConfig()", FIXED)]
    if "fixed" in groups:
        for option, (label, _, _, change) in FIXED_LADDERS.items():
            for v in (fixed_ladders or {}).get(option, []):
                rows.append(fixed_row(model_ref, label, str(v), FIXED.replace(**change(v))))
        for r in fixed_roundings or []:
            rows.append(fixed_row(model_ref, "element-wise rounding (rounding)",
                                  r.replace("_", " "), FIXED.replace(rounding=r)))
    if "bitlinear" not in groups:
        return rows
    for option, (name, _) in LADDERS.items():
        for v in ladders[option]:
            fmt = NormQuantFormat(**{name: v})
            label = {"in_width": f"{v} bits", "weight_width": f"{v} bits",
                     "mant_bits": f"P {v} (f {fmt.recip_frac}, S {fmt.rsqrt_frac})",
                     "act_bits": f"int{v} (±{fmt.q_max})"}[name]
            rows.append(integer_row({"in_width": "input mantissa width (in_width)",
                                     "weight_width": "norm-weight mantissa width (weight_width)",
                                     "mant_bits": "quantiser precision P (mant_bits)",
                                     "act_bits": "activation width (act_bits)"}[name],
                                    label, fmt))
    for r in roundings:
        rows.append(integer_row("activation rounding", r.replace("_", " "),
                                NormQuantFormat(rounding=r)))
    rows.append(Row("BitLinear eps (float reference)", "1e-6 kept (released)", ("float", 1e-6),
                    lambda: float_bitlinear))
    rows.append(Row("BitLinear eps (float reference)",
                    "0 (dropped, as the bitlinear-int pipeline)",
                    ("float", 0.0), lambda: functools.partial(float_bitlinear, eps=0.0)))
    return rows


def heldout_text(ckpt_dir: Path, n_bytes: int) -> tuple[str, list[str], int]:
    """The first ``n_bytes`` of the checkpoint's held-out topics (whole topics in order,
    joined by newlines); the topics it touches and the held-out total in bytes."""
    from mmfree.train.data import load_corpus

    every, names = 8, None
    meta = ckpt_dir / "training.json"
    if meta.is_file():
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            every = int(info["hyperparameters"]["holdout_every"])
            names = info.get("corpus", {}).get("heldout_topics")
        except (ValueError, KeyError, TypeError) as e:
            raise BenchError(f"{meta}: no usable hyperparameters.holdout_every ({e})") from None
    corpus = load_corpus(every)
    if names is not None and [n for n, _ in corpus.heldout] != names:
        raise BenchError(f"{meta}: its held-out topics differ from this Python's "
                         f"pydoc_data.topics split (every {every}th topic)")
    full = "\n".join(t for _, t in corpus.heldout).encode("utf-8")
    if n_bytes > len(full):
        raise BenchError(f"--bytes {n_bytes}: the held-out text has only {len(full)} bytes")
    text = full[:n_bytes].decode("utf-8", "ignore")
    used, pos = [], 0
    for name, t in corpus.heldout:
        if pos >= n_bytes:
            break
        used.append(name)
        pos += len(t.encode("utf-8")) + 1
    return text, used, len(full)


def score(model: HGRNBitModel, backend: Callable, ids: list[int], n_bytes: int,
          progress: Callable[[int, int], None]
          ) -> tuple[Perplexity, np.ndarray, np.ndarray, np.ndarray]:
    """Teacher-forced NLL of ``ids[1:]`` (as :func:`mmfree.lm.perplexity`), the NLL of every
    predicted token (nats), the argmax of every step's logits, and those logits."""
    stepper = as_stepper(model, backend)
    state = stepper.init_state()
    nll = np.empty(len(ids) - 1)
    top = np.empty(len(ids) - 1, dtype=np.int64)
    all_logits = np.empty((len(ids) - 1, model.config.vocab_size))
    for pos in range(len(ids) - 1):
        logits, state = stepper.step(ids[pos], state)
        all_logits[pos] = logits
        nll[pos] = -float(log_softmax(logits)[ids[pos + 1]])
        top[pos] = int(np.argmax(logits))
        progress(pos + 1, len(ids) - 1)
    return Perplexity(len(ids) - 1, float(nll.sum()), n_bytes), nll, top, all_logits


def fixed_dict(cfg: FixedConfig) -> dict[str, Any]:
    """A whole-token config as JSON (the BitLinear format nested)."""
    return dataclasses.asdict(cfg)


def write_atomic(path: str, text: str) -> None:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.resolve().parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def int_list(option: str, text: str, lo: int, hi: int) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"--{option}: {text!r} is not a comma-separated list of integers"
                         ) from None
    bad = [v for v in values if not lo <= v <= hi]
    if bad:
        raise BenchError(f"--{option}: {bad[0]} is outside {lo}..{hi}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="About 3.5 ms per token for a float row, 10 ms for a bitlinear-int row and 11 ms "
               "for a whole-token row on the shipped d 128 model (one core): 8000 bytes are "
               "about 3800 tokens, 15-45 s a row; the default table has about 60 rows. Exit "
               "status 2 on bad input.")
    ap.add_argument("--checkpoint", metavar="DIR", default=None,
                    help="checkpoint folder with training.json (default: the shipped "
                         "trained tiny model)")
    ap.add_argument("--bytes", type=int, default=8000, metavar="N",
                    help="held-out UTF-8 bytes scored (whole topics in order, the last cut)")
    for option, (name, ladder) in LADDERS.items():
        ap.add_argument(f"--{option}", default=ladder, metavar="LIST",
                        help=f"values of {name} (default of the format: "
                             f"{getattr(DEFAULT, name)})")
    ap.add_argument("--roundings", default=",".join(r for r in ROUNDINGS
                                                    if r != DEFAULT.rounding),
                    metavar="LIST", help=f"rounding modes other than the contract's "
                                         f"{DEFAULT.rounding} (known: {', '.join(ROUNDINGS)})")
    ap.add_argument("--groups", default=",".join(GROUPS), metavar="LIST",
                    help="row groups besides the three pipelines: bitlinear (choices of the "
                         "BitLinear front end), fixed (choices of the whole-token model)")
    for option, (label, ladder, _, _) in FIXED_LADDERS.items():
        ap.add_argument(f"--{option}", default=ladder, metavar="LIST",
                        help=f"values for the row group '{label}' (group fixed)")
    ap.add_argument("--fixed-roundings", default=",".join(
        r for r in FIXED_ROUNDINGS if r != FIXED.rounding), metavar="LIST",
        help=f"element-wise rounding modes other than the contract's {FIXED.rounding} "
             f"(known: {', '.join(FIXED_ROUNDINGS)}; group fixed)")
    ap.add_argument("--json", metavar="FILE", help="write the rows and the run's facts as JSON")
    ap.add_argument("--save-text", metavar="FILE",
                    help="write the scored text (for mmfree run --perplexity FILE)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args, argv)
    except BenchError as e:
        print(f"bench/quality.py: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, argv: list[str] | None) -> int:
    t_start = time.monotonic()
    if args.bytes < 16:
        raise BenchError(f"--bytes must be >= 16, got {args.bytes}")
    ranges = {"in_width": (2, 24), "weight_width": (2, 24), "mant_bits": (9, 30),
              "act_bits": (2, 16)}
    ladders = {o: int_list(o, getattr(args, o.replace("-", "_")), *ranges[n])
               for o, (n, _) in LADDERS.items()}
    roundings = [r.strip() for r in args.roundings.split(",") if r.strip()]
    unknown = [r for r in roundings if r not in ROUNDINGS]
    if unknown:
        raise BenchError(f"--roundings: unknown mode {unknown[0]!r} (known: "
                         f"{', '.join(ROUNDINGS)})")
    groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise BenchError(f"--groups: unknown group {bad[0]!r} (known: {', '.join(GROUPS)})")
    fixed_ladders = {o: int_list(o, getattr(args, o.replace("-", "_")), *rng)
                     for o, (_, _, rng, _) in FIXED_LADDERS.items()}
    fixed_roundings = [r.strip() for r in args.fixed_roundings.split(",") if r.strip()]
    unknown = [r for r in fixed_roundings if r not in FIXED_ROUNDINGS]
    if unknown:
        raise BenchError(f"--fixed-roundings: unknown mode {unknown[0]!r} (known: "
                         f"{', '.join(FIXED_ROUNDINGS)})")
    for option, path in (("--json", args.json), ("--save-text", args.save_text)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise BenchError(f"{option}: folder {Path(path).resolve().parent} does not exist")
    ckpt_dir = Path(args.checkpoint) if args.checkpoint else default_path()
    try:
        ckpt = open_checkpoint(ckpt_dir)
    except CheckpointError as e:
        raise BenchError(str(e)) from None
    if ckpt.tokenizer is None:
        raise BenchError(f"{ckpt_dir}: no tokenizer ({ckpt.tokenizer_note})")
    text, topics, total = heldout_text(ckpt_dir, args.bytes)
    n_bytes = len(text.encode("utf-8"))
    ids = ckpt.tokenizer.encode(text)
    model = ckpt.load_model()
    cfg = model.config
    if args.save_text:
        write_atomic(args.save_text, text)

    command = "python bench/quality.py" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    load = os.getloadavg()
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, load average "
               f"{load[0]:.1f} at the start, {platform.python_implementation()} "
               f"{platform.python_version()}, numpy {np.__version__}")
    print(f"command: {command}")
    print(f"machine: {machine}")
    label = "the shipped trained tiny model" if args.checkpoint is None else str(ckpt_dir)
    print(f"checkpoint: {label}: d {cfg.hidden_size}, {cfg.num_hidden_layers} layers, vocab "
          f"{cfg.vocab_size}, MLP {cfg.intermediate}")
    cut = "; the last one cut" if n_bytes < total else ""
    print(f"text: the first {n_bytes} of {total} held-out bytes (topics {', '.join(topics)}"
          f"{cut}), {len(ids)} tokens with the checkpoint's tokenizer, "
          f"{len(ids) - 1} predicted; one recurrent state carried across the text")
    print()

    model_ref: list = [model]
    rows = build_rows(ladders, roundings, fixed_ladders, fixed_roundings, groups, model_ref)
    done: dict[tuple, dict[str, Any]] = {}
    runs = [r for r in rows if r.make is not None]
    todo = len({r.key for r in runs})
    ref_top = ref_nll = ref_logits = None
    for row in runs:
        if row.key not in done:
            print(f"bench/quality.py: row {len(done) + 1}/{todo}: {row.choice} = {row.value}",
                  file=sys.stderr, flush=True)
            t0 = time.monotonic()
            ppl, nll, top, logits = score(model, row.make(), ids, n_bytes,
                                          Progress(f"{row.choice} {row.value}: token",
                                                   every=20))
            if ref_top is None:  # the float reference comes first
                ref_top, ref_nll, ref_logits = top, nll, logits
            # paired standard error of the difference in bits per byte, tokens taken as
            # independent (they are not quite: a perturbation lives on in the state)
            diff = nll - ref_nll
            se = float(np.std(diff, ddof=1)) * len(diff) ** 0.5 / np.log(2) / n_bytes
            done[row.key] = {"bits_per_byte": ppl.bits_per_byte,
                             "perplexity": ppl.perplexity, "nll": ppl.nll,
                             "delta_se": se,
                             "logit_rel_rms": float(np.sqrt(
                                 np.sum((logits - ref_logits) ** 2) / np.sum(ref_logits ** 2))),
                             "argmax_agree": float(np.mean(top == ref_top)),
                             "seconds": time.monotonic() - t0}
            print(f"bench/quality.py:   {ppl.bits_per_byte:.5f} bits/byte, "
                  f"{done[row.key]['seconds']:.0f} s", file=sys.stderr, flush=True)
        row.result = done[row.key]
    ref = done[("float", 1e-6)]["bits_per_byte"]

    print("| choice | value | bits/byte | Δ vs float | Δ % | 2 s.e. of Δ | rel. logit RMS | "
          "argmax agree |")
    print("|---|---|---|---|---|---|---|---|")
    out_rows = []
    for row in rows:
        r = row.result
        delta = r["bits_per_byte"] - ref
        print(f"| {row.choice} | {row.value} | {r['bits_per_byte']:.4f} | {delta:+.4f} | "
              f"{100 * delta / ref:+.2f} % | {2 * r['delta_se']:.4f} | "
              f"{100 * r['logit_rel_rms']:.2f} % | {100 * r['argmax_agree']:.1f} % |")
        out_rows.append({"choice": row.choice, "value": row.value, "measured": True,
                         "format": (dict(zip(("in_width", "weight_width", "mant_bits",
                                              "act_bits", "rounding"),
                                             (getattr(row.key[1], k) for k in (
                                                 "in_width", "weight_width", "mant_bits",
                                                 "act_bits", "rounding")), strict=True))
                                    if row.key[0] == "integer" else None),
                         "fixed_config": (fixed_dict(row.key[1]) if row.key[0] == "fixed"
                                          else None),
                         "float_eps": row.key[1] if row.key[0] == "float" else None,
                         "bits_per_byte": r["bits_per_byte"], "delta": delta,
                         "delta_percent": 100 * delta / ref, "delta_se": r["delta_se"],
                         "perplexity": r["perplexity"],
                         "logit_rel_rms": r["logit_rel_rms"],
                         "argmax_agree": r["argmax_agree"], "seconds": r["seconds"]})
    wall = time.monotonic() - t_start
    print(f"\n{len(done)} evaluations of {len(ids) - 1} token steps in {wall:.0f} s "
          f"(load average {os.getloadavg()[0]:.1f} at the end)")
    if args.json:
        write_atomic(args.json, json.dumps({
            "command": command, "machine": machine, "checkpoint": str(ckpt_dir),
            "text_bytes": n_bytes, "tokens": len(ids), "predicted": len(ids) - 1,
            "topics": topics, "seconds": wall, "rows": out_rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
