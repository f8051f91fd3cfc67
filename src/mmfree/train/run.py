"""``python -m mmfree.train``: train the tiny HGRN-Bit and write it in the released layout.

See ``docs/training.md`` for the hyper-parameters, the measured run and how to reproduce the
shipped checkpoint. Needs the ``[train]`` extra (JAX's CPU wheel, optax, safetensors,
tokenizers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = "hgrn-bit-tiny"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mmfree.train",
        description="Train a small HGRN-Bit (the released MatMul-free LM architecture) with "
        "quantisation-aware training on CPython's help topics (pydoc_data.topics), "
        "deterministically on CPU, and write config.json, model.safetensors and "
        "tokenizer.json in the released checkpoint layout, with training.json (provenance, "
        "loss curve, held-out bits per byte) and training-loss.png.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT, help="checkpoint directory to write "
                   "(replaced only when training has finished)")
    p.add_argument("--evaluate", metavar="DIR", help="do not train: report the held-out bits "
                   "per byte of the checkpoint in DIR and generate text from the prompts")
    m = p.add_argument_group("model (released config.json keys)")
    m.add_argument("--hidden-size", type=int, default=128)
    m.add_argument("--layers", type=int, default=2, help="num_hidden_layers")
    m.add_argument("--hidden-ratio", type=int, default=2,
                   help="MLP width rule of the released code: intermediate_size = "
                   "256 * ceil(int(hidden * ratio * 2/3) / 256)")
    m.add_argument("--vocab-size", type=int, default=512,
                   help="byte-level BPE size (259 = plain bytes, no merges)")
    t = p.add_argument_group("training")
    t.add_argument("--seed", type=int, default=0, help="one seed for init and batches")
    t.add_argument("--steps", type=int, default=600)
    t.add_argument("--batch", type=int, default=16, help="sequences per step")
    t.add_argument("--seq-len", type=int, default=256, help="tokens per sequence")
    t.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate")
    t.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    t.add_argument("--min-lr-ratio", type=float, default=0.1,
                   help="cosine decay ends at lr * this")
    t.add_argument("--weight-decay", type=float, default=0.1,
                   help="AdamW decay of the matrices (not of norms and lower bounds)")
    t.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clip")
    t.add_argument("--holdout-every", type=int, default=8,
                   help="hold out every N-th help topic in name order")
    t.add_argument("--eval-every", type=int, default=100,
                   help="steps between held-out evaluations (the loss curve)")
    g = p.add_argument_group("text samples")
    g.add_argument("--prompt", action="append",
                   help="prompt to continue (repeatable; default: "
                   "'The', 'Python', 'The import statement', 'A class definition')")
    g.add_argument("--tokens", type=int, default=60, help="tokens generated per prompt")
    g.add_argument("--temperature", type=float, default=0.8,
                   help="sampled continuation's temperature (greedy is always shown too)")
    g.add_argument("--top-k", type=int, default=40)
    return p


def _fail(msg: str) -> int:
    print(f"mmfree: {msg}", file=sys.stderr)
    return 2


def _check(args: argparse.Namespace) -> str | None:
    for name in ("hidden_size", "layers", "hidden_ratio", "steps", "batch", "seq_len",
                 "eval_every", "tokens", "top_k"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} must be >= 1, not {getattr(args, name)}"
    if args.vocab_size < 259:
        return f"--vocab-size must be >= 259 (256 bytes + 3 specials), not {args.vocab_size}"
    if args.warmup >= args.steps:
        return f"--warmup ({args.warmup}) must be smaller than --steps ({args.steps})"
    if args.holdout_every < 2:
        return f"--holdout-every must be >= 2, not {args.holdout_every}"
    if not (args.lr > 0 and 0 <= args.min_lr_ratio <= 1 and args.weight_decay >= 0
            and args.clip > 0 and args.temperature > 0 and args.warmup >= 0):
        return "--lr, --clip and --temperature must be > 0; --min-lr-ratio in [0, 1]; " \
               "--weight-decay and --warmup >= 0"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    err = _check(args)
    if err:
        return _fail(err)
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
        import safetensors  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as e:
        return _fail(f"training needs the [train] extra ({e.name} is missing): "
                     "pip install -e \".[train]\"")
    from . import loop
    try:
        if args.evaluate:
            return loop.evaluate_dir(Path(args.evaluate), args)
        return train(args)
    except loop.CheckpointError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print("mmfree: interrupted; nothing written", file=sys.stderr)
        return 130


def train(args: argparse.Namespace) -> int:
    import jax
    import optax

    from . import loop
    from .data import Batches, encode_docs, eval_windows, load_corpus, token_bytes, train_tokenizer
    from .model import HGRNBitConfig, init_params

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail(f"--out {out} exists and is not a directory")
    t0 = time.time()
    corpus = load_corpus(args.holdout_every)
    tok = train_tokenizer([t for _, t in corpus.train], args.vocab_size)
    vocab = tok.get_vocab_size()
    cfg = HGRNBitConfig(vocab_size=vocab, hidden_size=args.hidden_size,
                        num_hidden_layers=args.layers, hidden_ratio=args.hidden_ratio)
    train_docs = encode_docs(tok, corpus.train)
    held_docs = encode_docs(tok, corpus.heldout)
    tbytes = token_bytes(tok)
    windows, mask = eval_windows(held_docs, args.seq_len)
    n_params = sum(int(np.prod(s)) for s in
                   (v.shape for v in init_params(cfg, args.seed).values()))
    train_tokens = sum(len(d) for d in train_docs)
    print(f"corpus: {len(corpus.train)} train topics ({corpus.train_bytes} B, {train_tokens} "
          f"tokens), {len(corpus.heldout)} held-out ({corpus.heldout_bytes} B); "
          f"tokenizer {vocab} ids, {corpus.train_bytes / train_tokens:.2f} B/token")
    print(f"model: d {cfg.hidden_size}, {cfg.num_hidden_layers} layers, intermediate "
          f"{cfg.inter}, {n_params} parameters; {args.steps} steps of {args.batch}x"
          f"{args.seq_len} tokens = {args.steps * args.batch * args.seq_len / train_tokens:.1f} "
          f"epochs; jax {jax.__version__} on {jax.devices()[0].platform}, "
          f"{os.cpu_count()} cores")

    sched = optax.warmup_cosine_decay_schedule(
        0.0, args.lr, max(args.warmup, 1), args.steps, args.lr * args.min_lr_ratio)
    params = {k: jax.numpy.asarray(v) for k, v in init_params(cfg, args.seed).items()}
    opt = optax.chain(
        optax.clip_by_global_norm(args.clip),
        optax.adamw(sched, b1=0.9, b2=0.95, eps=1e-8, weight_decay=args.weight_decay,
                    mask={k: v.ndim == 2 and k != "model.lower_bounds"
                          for k, v in params.items()}))
    batches = Batches(train_docs, args.seq_len, args.batch, args.seed)
    curve = loop.fit(params, opt, cfg, batches, tbytes, windows, mask, args, sched)
    params = curve.pop("params")
    train_s = time.time() - t0

    # The output folder is where the files were written, not how they were made: recorded as
    # OUT so that no machine's path ends up in a shipped file.
    argv = ["OUT" if i and args.argv[i - 1] == "--out" else a for i, a in enumerate(args.argv)]
    meta = {
        "command": " ".join(["python -m mmfree.train", *argv]),
        "hyperparameters": {k: v for k, v in vars(args).items()
                            if k not in ("out", "evaluate", "prompt", "argv")},
        "corpus": {"source": "pydoc_data.topics", "python": platform.python_version(),
                   "sha256": corpus.sha256, "train_topics": len(corpus.train),
                   "heldout_topics": [n for n, _ in corpus.heldout],
                   "train_bytes": corpus.train_bytes, "heldout_bytes": corpus.heldout_bytes},
        "parameters": n_params,
        "software": {"jax": jax.__version__, "optax": optax.__version__,
                     "numpy": np.__version__, "tokenizers": __import__("tokenizers").__version__},
        "machine": {"cores": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "train_seconds": round(train_s, 1),
        "curve": curve,
    }
    tmp = Path(tempfile.mkdtemp(prefix=".train-", dir=out.parent if out.parent.exists()
                                else None))
    try:
        loop.write_checkpoint(tmp, cfg, params, tok)
        # The figure of record comes from the files as written, read back.
        bpb = loop.heldout_bpb_of_dir(tmp, args)
        meta["heldout_bits_per_byte"] = round(bpb, 5)
        meta["model_safetensors_sha256"] = hashlib.sha256(
            (tmp / "model.safetensors").read_bytes()).hexdigest()
        (tmp / "training.json").write_text(json.dumps(meta, indent=1) + "\n")
        loop.plot_curve(meta, tmp / "training-loss.png")
        tmp.chmod(0o755)
        for f in tmp.iterdir():
            f.chmod(0o644)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out}/ ({size / 1e6:.2f} MB): held-out {bpb:.4f} bits/byte; trained in "
          f"{train_s / 60:.1f} min (load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores)")
    loop.print_samples(out, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
