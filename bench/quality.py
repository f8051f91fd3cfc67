#!/usr/bin/env python3
"""What each hardware choice costs in model quality: held-out bits per byte of the shipped
trained HGRN-Bit under the float reference, the integer BitLinear pipeline, and one row per
hardware choice varied alone.

Text: the checkpoint's held-out help topics (``pydoc_data.topics``, the split recorded in its
``training.json``), whole topics in name order joined by newlines, cut after ``--bytes`` UTF-8
bytes; tokenised with the checkpoint's own ``tokenizer.json`` (``<s>`` first) and
teacher-forced from one zero recurrent state, carried across the whole text (the same
scoring as ``mmfree run --perplexity FILE``; ``--save-text FILE`` writes the text so that
command reproduces the first two rows).

Rows: the float64 reference (the released arithmetic: eps 1e-6, int8 half away from zero);
the integer pipeline with the default format (``NormQuantFormat()``: 16-bit input and norm
weight mantissas, P 17, int8, half away from zero, eps dropped); then, each alone on the
integer pipeline: input mantissa width, norm-weight mantissa width, the quantiser's precision
P (``f = 2P - act_bits`` fraction bits of the absmax reciprocal, ``S = 2P - 2`` of the rsqrt),
activation width, rounding mode; and eps dropped from the float reference. The element-wise
work outside the BitLinears (norms, sigmoid/SiLU, the recurrence) is float64 on the host
until the whole-token fixed-point model (issue 13) exists: its rows say so.

Each row: bits per byte, its difference from the float reference (absolute and %), twice the
paired standard error of that difference (per-token NLL differences taken as independent:
a rough yardstick for which differences are more than chance), and the share of steps whose
argmax equals the float reference's.

    .venv/bin/python bench/quality.py [--bytes 8000] [--json FILE] [--save-text FILE]
"""

from __future__ import annotations

import argparse
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
from mmfree.golden.hgrn_bit import HGRNBitModel, IntegerBitLinear, float_bitlinear, run_step
from mmfree.golden.quantiser import ROUNDINGS, NormBitLinear, NormQuantFormat
from mmfree.lm import Perplexity, Progress, log_softmax
from mmfree.tiny_checkpoint import default_path

DEFAULT = NormQuantFormat()
LADDERS = {  # option name -> (NormQuantFormat field, default ladder)
    "in-widths": ("in_width", "4,5,6,8,10,12,16"),
    "weight-widths": ("weight_width", "3,4,5,6,8,12,16"),
    "mant-bits": ("mant_bits", "9,10,11,12,13,14,15,16,17"),
    "act-bits": ("act_bits", "4,5,6,7,8,10"),
}
#: the hardware choices that need the whole-token fixed-point model (issue 13)
NEEDS_13 = (
    ("sigmoid table / approximation", "forget gate f = sigmoid(f_proj)"),
    ("SiLU table / approximation", "silu(i), silu(state), silu(gate) in the GLU"),
    ("recurrent-state width", "state = f * state + silu(i) * (1 - f)"),
    ("element-wise RMSNorm rsqrt bits", "attn_norm, mlp_norm, g_norm, final norm"),
    ("residual / activation buffer width", "x = x + o_proj(...), x = x + down_proj(...)"),
    ("whole-token fixed-point model", "every element-wise op in fixed point at once"),
)


class BenchError(Exception):
    """Bad input: one line, exit status 2."""


@dataclass
class Row:
    """One line of the table: the choice varied, its value, and how to evaluate it."""

    choice: str
    value: str
    key: tuple  # rows with the same key share one evaluation
    make: Callable[[], Callable] | None  # backend factory; None: needs issue 13
    default: bool = False
    result: dict[str, Any] = field(default_factory=dict)


def integer_row(choice: str, value: str, fmt: NormQuantFormat) -> Row:
    return Row(choice, value + (" (default)" if fmt == DEFAULT else ""), ("integer", fmt),
               lambda: IntegerBitLinear(NormBitLinear(fmt)), default=fmt == DEFAULT)


def build_rows(ladders: dict[str, list[int]], roundings: list[str]) -> list[Row]:
    rows = [Row("float reference", "float64, eps 1e-6, int8 half away", ("float", 1e-6),
                lambda: float_bitlinear),
            integer_row("integer pipeline", "NormQuantFormat()", DEFAULT)]
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
    rows.append(Row("BitLinear eps (float reference)", "0 (dropped, as the integer pipeline)",
                    ("float", 0.0), lambda: functools.partial(float_bitlinear, eps=0.0)))
    rows += [Row(choice, what, ("needs 13", choice), None) for choice, what in NEEDS_13]
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
          progress: Callable[[int, int], None]) -> tuple[Perplexity, np.ndarray, np.ndarray]:
    """Teacher-forced NLL of ``ids[1:]`` (as :func:`mmfree.lm.perplexity`), the NLL of every
    predicted token (nats) and the argmax of every step's logits."""
    state = model.init_state()
    nll = np.empty(len(ids) - 1)
    top = np.empty(len(ids) - 1, dtype=np.int64)
    for pos in range(len(ids) - 1):
        logits, state = run_step(model, ids[pos], state, backend)
        nll[pos] = -float(log_softmax(logits)[ids[pos + 1]])
        top[pos] = int(np.argmax(logits))
        progress(pos + 1, len(ids) - 1)
    return Perplexity(len(ids) - 1, float(nll.sum()), n_bytes), nll, top


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
        epilog="About 3.5 ms per token for a float row and 10 ms for an integer row on the "
               "shipped d 128 model (one core): 8000 bytes are about 3800 tokens, 15-40 s a row; "
               "the default table has about 40 rows. Exit status 2 on bad input.")
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

    rows = build_rows(ladders, roundings)
    done: dict[tuple, dict[str, Any]] = {}
    runs = [r for r in rows if r.make is not None]
    todo = len({r.key for r in runs})
    ref_top = ref_nll = None
    for row in runs:
        if row.key not in done:
            print(f"bench/quality.py: row {len(done) + 1}/{todo}: {row.choice} = {row.value}",
                  file=sys.stderr, flush=True)
            t0 = time.monotonic()
            ppl, nll, top = score(model, row.make(), ids, n_bytes,
                                  Progress(f"{row.choice} {row.value}: token", every=20))
            if ref_top is None:  # the float reference comes first
                ref_top, ref_nll = top, nll
            # paired standard error of the difference in bits per byte, tokens taken as
            # independent (they are not quite: a perturbation lives on in the state)
            diff = nll - ref_nll
            se = float(np.std(diff, ddof=1)) * len(diff) ** 0.5 / np.log(2) / n_bytes
            done[row.key] = {"bits_per_byte": ppl.bits_per_byte,
                             "perplexity": ppl.perplexity, "nll": ppl.nll,
                             "delta_se": se,
                             "argmax_agree": float(np.mean(top == ref_top)),
                             "seconds": time.monotonic() - t0}
            print(f"bench/quality.py:   {ppl.bits_per_byte:.5f} bits/byte, "
                  f"{done[row.key]['seconds']:.0f} s", file=sys.stderr, flush=True)
        row.result = done[row.key]
    ref = done[("float", 1e-6)]["bits_per_byte"]

    print("| choice | value | bits/byte | Δ vs float | Δ % | 2 s.e. of Δ | argmax agree |")
    print("|---|---|---|---|---|---|---|")
    out_rows = []
    for row in rows:
        if row.make is None:
            print(f"| {row.choice} | {row.value} | needs issue 13 | | | | |")
            out_rows.append({"choice": row.choice, "value": row.value, "measured": False,
                             "note": "needs the whole-token fixed-point model (issue 13)"})
            continue
        r = row.result
        delta = r["bits_per_byte"] - ref
        print(f"| {row.choice} | {row.value} | {r['bits_per_byte']:.4f} | {delta:+.4f} | "
              f"{100 * delta / ref:+.2f} % | {2 * r['delta_se']:.4f} | "
              f"{100 * r['argmax_agree']:.1f} % |")
        out_rows.append({"choice": row.choice, "value": row.value, "measured": True,
                         "format": (dict(zip(("in_width", "weight_width", "mant_bits",
                                              "act_bits", "rounding"),
                                             (getattr(row.key[1], k) for k in (
                                                 "in_width", "weight_width", "mant_bits",
                                                 "act_bits", "rounding")), strict=True))
                                    if row.key[0] == "integer" else None),
                         "float_eps": row.key[1] if row.key[0] == "float" else None,
                         "bits_per_byte": r["bits_per_byte"], "delta": delta,
                         "delta_percent": 100 * delta / ref, "delta_se": r["delta_se"],
                         "perplexity": r["perplexity"],
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
