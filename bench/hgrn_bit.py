#!/usr/bin/env python3
"""HGRN-Bit: bitlinear-int pipeline vs float reference, and the cost of big checkpoints.

Table 1 (deviation): the bitlinear-int pipeline (hardware BitLinears, element-wise work in
float64; ``mmfree run --backend bitlinear-int``) and the whole token in fixed point
(``--backend integer``, :mod:`mmfree.golden.hgrn_fixed`) against the float reference
(the released arithmetic in float64), teacher-forced on the same tokens (a text from CPython's
own help topics, byte tokens): relative logit RMS, the largest logit difference, argmax
agreement, perplexity under each pipeline. One more row per model measures dropping eps
(1e-6) alone: the float reference with eps 0 against the float reference. Models: the
shipped tiny checkpoint, and a bigger random one (d 512, 4 layers, same byte vocabulary).

Table 2 (scale): a random checkpoint at the 370M / 1.3B (/ 2.7B) dimensions (vocabulary
32000, BF16, sharded into 1 GB files) written under --scratch, then loaded through
``mmfree.checkpoint`` in a fresh process: load + quantise time, peak RSS (``VmHWM``)
and seconds per token of the integer and float pipelines. The checkpoint is deleted after.

    .venv/bin/python bench/hgrn_bit.py [--sizes 370M,1.3B] [--scratch DIR]
                                       [--text-bytes 600] [--tokens 3] [--skip-scale]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mmfree.checkpoint import open_checkpoint, write_checkpoint
from mmfree.golden.hgrn_bit import (
    HGRNBitConfig,
    HGRNBitModel,
    IntegerBitLinear,
    float_bitlinear,
    random_tensor,
    run_step,
)
from mmfree.lm import FixedStepper, as_stepper, log_softmax
from mmfree.tiny_checkpoint import default_path

SIZES = {"370M": (1024, 24), "1.3B": (2048, 24), "2.7B": (2560, 32)}


def sample_text(n_bytes: int) -> str:
    """English text present on every CPython: the held-out help topics (pydoc_data.topics,
    the split recorded in the shipped checkpoint's training.json, never trained on)."""
    from mmfree.train.data import load_corpus
    meta = json.loads((default_path() / "training.json").read_text())
    every = int(meta["hyperparameters"]["holdout_every"])
    text = "\n".join(t for _, t in load_corpus(every).heldout)
    return text.encode()[:n_bytes].decode("utf-8", "ignore")


def compare(model: HGRNBitModel, ids: list[int], a, b) -> dict:
    """Teacher-forced: both backends (BitLinear callables or steppers, ``mmfree.lm``) see
    the same tokens, each keeps its own state."""
    a, b = as_stepper(model, a), as_stepper(model, b)
    sa, sb = a.init_state(), b.init_state()
    la, lb = [], []
    nll_a = nll_b = 0.0
    for pos, tok in enumerate(ids[:-1]):
        x, sa = a.step(tok, sa)
        y, sb = b.step(tok, sb)
        la.append(x)
        lb.append(y)
        nll_a -= log_softmax(x)[ids[pos + 1]]
        nll_b -= log_softmax(y)[ids[pos + 1]]
    la, lb = np.stack(la), np.stack(lb)
    rms = math.sqrt(float(np.mean(la ** 2)))
    n = len(ids) - 1
    return {"steps": n, "rel_rms": math.sqrt(float(np.mean((la - lb) ** 2))) / rms,
            "max_abs": float(np.abs(la - lb).max()) / rms,
            "argmax": float(np.mean(np.argmax(la, 1) == np.argmax(lb, 1))),
            "ppl_a": math.exp(nll_a / n), "ppl_b": math.exp(nll_b / n)}


def front_end_table(vectors: int) -> None:
    """The weighted fixed-point front end (NormBitLinear) against the released float
    BitLinear, one vector at a time."""
    from mmfree.golden.hgrn_bit import BitLinearCall, BitLinearWeights
    rng = np.random.default_rng(2024)
    arith = IntegerBitLinear()
    print(f"Table 0: BitLinear front end with the norm weight, fixed point vs float64 "
          f"(released kernel, eps 1e-6), {vectors} random vectors per row; x N(0, 1) "
          "times 10**U(-2, 1) with one 30x outlier in a quarter of them, norm weight "
          "N(1, 0.5) times 10**U(-1, 1), 64 ternary rows")
    print("| K | q equal | max abs q diff | 1/s_x rel. error max (median) | same, float "
          "without eps | output rel. RMS error max (median) |")
    print("|---|---|---|---|---|---|")
    for k in (64, 1024, 2048, 5632):
        eq = tot = 0
        dq, se, se0, oe = 0, [], [], []
        for _ in range(vectors):
            x = rng.normal(size=k) * 10 ** rng.uniform(-2, 1)
            if rng.random() < 0.25:
                x[rng.integers(k)] *= 30
            w = rng.normal(1, 0.5, k) * 10 ** rng.uniform(-1, 1)
            codes = rng.integers(-1, 2, (64, k)).astype(np.int8)
            call = BitLinearCall("v", x, BitLinearWeights(codes, 1.0, w))
            y = x / math.sqrt(np.mean(x * x) + 1e-6) * w
            inv_s = float(np.abs(y).max()) / 127
            v = y / inv_s
            q = np.clip(np.copysign(np.floor(np.abs(v) + 0.5), v), -128, 127)
            m, acc, scale, exp = arith.device(call)
            res = arith.arith.quantise(m, arith.norm_weight(call)[0])
            eq += int(np.sum(res.q == q))
            tot += k
            dq = max(dq, int(np.abs(res.q - q).max()))
            out = arith.rescale(call, acc, scale, exp)  # = acc * (1/s_x of the device)
            ref = float_bitlinear(call)
            nz = np.flatnonzero(acc)
            factor = out[nz[0]] / acc[nz[0]] if nz.size else inv_s
            se.append(abs(factor / inv_s - 1))
            se0.append(abs(factor / (inv_s * math.sqrt(1 + 1e-6 / np.mean(x * x))) - 1))
            oe.append(math.sqrt(float(np.mean((out - ref) ** 2) / np.mean(ref ** 2))))
        print(f"| {k} | {100 * eq / tot:.2f} % | {dq} | {max(se):.2e} ({np.median(se):.1e}) | "
              f"{max(se0):.2e} ({np.median(se0):.1e}) | "
              f"{100 * max(oe):.3f} % ({100 * np.median(oe):.3f} %) |", flush=True)


def deviation_table(text_bytes: int) -> None:
    text = sample_text(text_bytes)
    byte_ids = [1] + [b + 3 for b in text.encode()]  # the random model's byte tokens
    ckpt = open_checkpoint(default_path())
    tiny, tiny_ids = ckpt.load_model(), ckpt.tokenizer.encode(text)
    big_cfg = HGRNBitConfig(vocab_size=259, hidden_size=512, num_hidden_layers=4)
    big = HGRNBitModel.random(big_cfg, 7)
    no_eps = functools.partial(float_bitlinear, eps=0.0)
    print(f"Table 1: bitlinear-int vs float, teacher-forced on {len(text.encode())} bytes of "
          f"held-out pydoc_data.topics ({len(tiny_ids)} BPE tokens for the shipped model, "
          f"{len(byte_ids)} byte tokens for the random one); logit errors relative to the "
          "float logits' RMS")
    print("| model | comparison | steps | rel. logit RMS | max abs diff / RMS | argmax agree "
          "| ppl float | ppl other | ppl diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, model, ids in (("tiny (shipped, trained) d 128, 2 L", tiny, tiny_ids),
                              ("random d 512, 4 L", big, byte_ids[:300])):
        for what, other in (("bitlinear-int vs float", IntegerBitLinear()),
                            ("integer (whole token) vs float", FixedStepper(model)),
                            ("float eps 0 vs float", no_eps)):
            t0 = time.monotonic()
            r = compare(model, ids, float_bitlinear, other)
            print(f"| {label} | {what} | {r['steps']} | {100 * r['rel_rms']:.3f} % | "
                  f"{100 * r['max_abs']:.2f} % | {100 * r['argmax']:.1f} % | "
                  f"{r['ppl_a']:.4f} | {r['ppl_b']:.4f} | "
                  f"{100 * (r['ppl_b'] / r['ppl_a'] - 1):+.3f} % |", flush=True)
            print(f"<!-- {time.monotonic() - t0:.0f} s -->", file=sys.stderr)


def child(path: str, tokens: int) -> None:
    """Load a checkpoint and run a few tokens; print one JSON line (fresh process: clean
    peak RSS)."""
    t0 = time.monotonic()
    ckpt = open_checkpoint(path)
    model = ckpt.load_model()
    load_s = time.monotonic() - t0
    codes = sum(b.codes.nbytes for b in model.bitlinears.values())
    out = {"load_s": load_s, "codes_bytes": codes, "rss_after_load": _status("VmRSS"),
           "peak_rss_load": _status("VmHWM")}
    for name, backend in (("integer", IntegerBitLinear()), ("float", float_bitlinear)):
        state = model.init_state()
        run_step(model, 1, state, backend)  # warm-up (first-touch of the embedding pages)
        t1 = time.monotonic()
        for tok in range(2, 2 + tokens):
            _, state = run_step(model, tok, state, backend)
        out[f"{name}_s_per_token"] = (time.monotonic() - t1) / tokens
    out["peak_rss"] = _status("VmHWM")
    print(json.dumps(out))


def _status(key: str) -> int:
    """Bytes of a /proc/self/status field. VmHWM is this process's peak resident set; unlike
    ru_maxrss it does not inherit the peak of the process that spawned it (Linux records
    the pre-exec memory's peak in ru_maxrss)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def scale_table(sizes: list[str], scratch: Path, tokens: int) -> None:
    print(f"\nTable 2: random BF16 checkpoints (vocab 32000, 1 GB shards) loaded through "
          f"mmfree.checkpoint; {tokens} tokens per pipeline after one warm-up token")
    print("| size | d x layers | params | checkpoint GB | write s | load + quantise s | "
          "int8 codes GB | peak RSS GB | integer s/token | float s/token |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        d, layers = SIZES[size]
        cfg = HGRNBitConfig(vocab_size=32000, hidden_size=d, num_hidden_layers=layers)
        path = scratch / f"hgrn-bit-{size}-random"
        shutil.rmtree(path, ignore_errors=True)
        try:
            t0 = time.monotonic()
            files = write_checkpoint(path, cfg, lambda n, cfg=cfg: random_tensor(cfg, 1, n),
                                     dtype="bfloat16", shard_bytes=1 << 30)
            write_s = time.monotonic() - t0
            gb = sum(f.stat().st_size for f in files) / 1e9
            r = subprocess.run([sys.executable, __file__, "--child", str(path), "--tokens",
                                str(tokens)], capture_output=True, text=True, check=True)
            m = json.loads(r.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(path, ignore_errors=True)
        print(f"| {size} | {d} x {layers} | {cfg.parameters() / 1e9:.2f} B | {gb:.2f} | "
              f"{write_s:.0f} | {m['load_s']:.0f} | {m['codes_bytes'] / 1e9:.2f} | "
              f"{m['peak_rss'] / 1e9:.2f} | {m['integer_s_per_token']:.2f} | "
              f"{m['float_s_per_token']:.2f} |", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="370M,1.3B", help="comma-separated: 370M, 1.3B, 2.7B")
    ap.add_argument("--scratch", default="/tmp", help="folder for the big checkpoints")
    ap.add_argument("--text-bytes", type=int, default=600)
    ap.add_argument("--tokens", type=int, default=3)
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-deviation", action="store_true")
    ap.add_argument("--vectors", type=int, default=200, help="vectors per row of table 0")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.tokens)
        return 0
    print(f"machine: {platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}, numpy {np.__version__}")
    if not args.skip_deviation:
        front_end_table(args.vectors)
        deviation_table(args.text_bytes)
    if not args.skip_scale:
        sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
        bad = [s for s in sizes if s not in SIZES]
        if bad:
            ap.error(f"unknown size {bad[0]} (known: {', '.join(SIZES)})")
        scale_table(sizes, Path(args.scratch), args.tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
