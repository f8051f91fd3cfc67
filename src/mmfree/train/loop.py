"""The training loop, held-out evaluation, checkpoint files and text generation (JAX)."""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .model import HGRNBitConfig, forward, param_shapes, token_nll

LN2 = math.log(2.0)
EVAL_BATCH = 16
PROMPTS = ("The", "Python", "The import statement", "A class definition")


class CheckpointError(Exception):
    """A checkpoint directory that cannot be read; the message names the file and key."""


@functools.cache
def _eval_fn(cfg: HGRNBitConfig):
    @jax.jit
    def nll_sum(params: dict, ids: jax.Array, mask: jax.Array) -> jax.Array:
        return jnp.sum(token_nll(params, ids, cfg) * mask)
    return nll_sum


def heldout_bpb(params: dict, cfg: HGRNBitConfig, windows: np.ndarray, mask: np.ndarray,
                tbytes: np.ndarray) -> float:
    """Held-out bits per byte: total NLL in bits over the UTF-8 bytes of the predicted tokens.

    Windows are evaluated in fixed batches of ``EVAL_BATCH`` (zero-padded, masked) so one
    compiled function serves every call.
    """
    fn = _eval_fn(cfg)
    n = len(windows)
    pad = (-n) % EVAL_BATCH
    w = np.concatenate([windows, np.zeros((pad, windows.shape[1]), windows.dtype)])
    m = np.concatenate([mask, np.zeros((pad, mask.shape[1]), bool)]).astype(np.float32)
    total = 0.0
    for s in range(0, len(w), EVAL_BATCH):
        total += float(fn(params, jnp.asarray(w[s:s + EVAL_BATCH]),
                          jnp.asarray(m[s:s + EVAL_BATCH])))
    nbytes = int((tbytes[windows[:, 1:]] * mask).sum())
    return total / LN2 / nbytes


def fit(params: dict, opt, cfg: HGRNBitConfig, batches, tbytes: np.ndarray,  # noqa: ANN001
        windows: np.ndarray, mask: np.ndarray, args: argparse.Namespace,
        sched) -> dict:  # noqa: ANN001
    """Train for ``args.steps`` steps; returns the curve and the final ``params``."""
    import optax

    state = opt.init(params)

    @jax.jit
    def step(params: dict, state, ids: jax.Array):  # noqa: ANN001
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(token_nll(p, ids, cfg)))(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    curve: dict[str, list] = {"step": [], "train_bits_per_byte": [],
                              "heldout_bits_per_byte": [], "lr": [], "seconds": []}
    t0 = time.time()
    acc_nats, acc_bytes, acc_tokens = 0.0, 0, 0
    for k in range(1, args.steps + 1):
        ids = next(batches)
        params, state, loss = step(params, state, jnp.asarray(ids))
        # Training bits per byte of this batch: mean nats * tokens over the batch's bytes.
        acc_nats += float(loss) * ids[:, 1:].size
        acc_bytes += int(tbytes[ids[:, 1:]].sum())
        acc_tokens += ids[:, 1:].size
        if not np.isfinite(float(loss)):
            raise FloatingPointError(f"loss is {float(loss)} at step {k}")
        if k % args.eval_every == 0 or k == args.steps:
            ho = heldout_bpb(params, cfg, windows, mask, tbytes)
            tr = acc_nats / LN2 / acc_bytes
            el = time.time() - t0
            curve["step"].append(k)
            curve["train_bits_per_byte"].append(round(tr, 5))
            curve["heldout_bits_per_byte"].append(round(ho, 5))
            curve["lr"].append(float(sched(k)))
            curve["seconds"].append(round(el, 1))
            eta = el / k * (args.steps - k)
            print(f"step {k:5d}/{args.steps}  train {tr:.3f}  held-out {ho:.3f} bits/byte  "
                  f"lr {float(sched(k)):.2e}  {acc_tokens / max(el - _last(curve), 1e-9):.0f} "
                  f"tok/s  {el / 60:.1f} min, ~{eta / 60:.1f} min left", flush=True)
            acc_nats, acc_bytes, acc_tokens = 0.0, 0, 0
    curve["params"] = params
    return curve


def _last(curve: dict) -> float:
    s = curve["seconds"]
    return s[-2] if len(s) > 1 else 0.0


# ---------------------------------------------------------------- checkpoint files

def write_checkpoint(path: Path, cfg: HGRNBitConfig, params: dict, tok) -> None:  # noqa: ANN001
    """``config.json``, ``model.safetensors`` (float32, official names), ``tokenizer.json``."""
    from safetensors.numpy import save_file

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(cfg.to_json(), indent=2) + "\n")
    tensors = {k: np.ascontiguousarray(np.asarray(params[k], np.float32))
               for k in param_shapes(cfg)}
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    tok.save(str(path / "tokenizer.json"))


def load_checkpoint(path: Path) -> tuple[HGRNBitConfig, dict, object]:
    """Read a directory written by :func:`write_checkpoint` (or a released one of this size)."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (path / f).is_file():
            raise CheckpointError(f"{path}: no {f}")
    try:
        c = json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path / 'config.json'}: not JSON ({e})") from None
    if c.get("model_type") != "hgrn_bit":
        raise CheckpointError(f"{path / 'config.json'}: model_type {c.get('model_type')!r} "
                              "is not 'hgrn_bit'")
    try:
        cfg = HGRNBitConfig(vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
                            num_hidden_layers=c["num_hidden_layers"],
                            hidden_ratio=c.get("hidden_ratio", 4),
                            intermediate_size=c.get("intermediate_size"),
                            rms_norm_eps=c.get("rms_norm_eps", 1e-6))
    except KeyError as e:
        raise CheckpointError(f"{path / 'config.json'}: missing key {e}") from None
    tensors = load_file(str(path / "model.safetensors"))
    for name, shape in param_shapes(cfg).items():
        if name not in tensors:
            raise CheckpointError(f"{path / 'model.safetensors'}: no tensor {name}")
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(f"{path / 'model.safetensors'}: {name} has shape "
                                  f"{tuple(tensors[name].shape)}, config says {shape}")
    params = {k: jnp.asarray(tensors[k], jnp.float32) for k in param_shapes(cfg)}
    return cfg, params, Tokenizer.from_file(str(path / "tokenizer.json"))


def heldout_bpb_of_dir(path: Path, args: argparse.Namespace) -> float:
    """Held-out bits per byte of the checkpoint in ``path`` on the help-topics split."""
    from .data import encode_docs, eval_windows, load_corpus, token_bytes

    cfg, params, tok = load_checkpoint(path)
    corpus = load_corpus(args.holdout_every)
    windows, mask = eval_windows(encode_docs(tok, corpus.heldout), args.seq_len)
    return heldout_bpb(params, cfg, windows, mask, token_bytes(tok))


# ---------------------------------------------------------------- generation and reports

@functools.cache
def _step_fn(cfg: HGRNBitConfig):
    """One token through the model, state in and out (compiled once per config)."""
    return jax.jit(lambda p, ids, s: forward(p, ids, cfg, s))


def generate(params: dict, cfg: HGRNBitConfig, prompt_ids: list[int], n: int,
             temperature: float = 0.0, top_k: int = 0, seed: int = 0) -> list[int]:
    """``n`` tokens after the prompt, recurrent state carried token by token (greedy when
    ``temperature`` is 0; otherwise top-k sampling from one numpy generator)."""
    step = _step_fn(cfg)
    rng = np.random.default_rng(seed)
    state = jnp.zeros((cfg.num_hidden_layers, 1, cfg.hidden_size), jnp.float32)
    for t in prompt_ids:
        logits, state = step(params, jnp.asarray([[t]], jnp.int32), state)
    out: list[int] = []
    last = np.asarray(logits[0, -1], np.float64)
    for _ in range(n):
        if temperature <= 0:
            nxt = int(np.argmax(last))
        else:
            z = last / temperature
            if 0 < top_k < len(z):
                z = np.where(z >= np.sort(z)[-top_k], z, -np.inf)
            p = np.exp(z - z.max())
            nxt = int(rng.choice(len(p), p=p / p.sum()))
        out.append(nxt)
        logits, state = step(params, jnp.asarray([[nxt]], jnp.int32), state)
        last = np.asarray(logits[0, -1], np.float64)
    return out


def print_samples(path: Path, args: argparse.Namespace) -> None:
    cfg, params, tok = load_checkpoint(path)
    for prompt in args.prompt or PROMPTS:
        ids = tok.encode(prompt).ids
        for label, temp in (("greedy", 0.0), (f"T={args.temperature}", args.temperature)):
            gen = generate(params, cfg, ids, args.tokens, temp, args.top_k, args.seed)
            text = tok.decode(ids + gen, skip_special_tokens=True)
            print(f"--- {label}: {text!r}")


def evaluate_dir(path: Path, args: argparse.Namespace) -> int:
    """``--evaluate``: held-out bits per byte (with the split and window length recorded in
    ``training.json`` when there is one) and text samples."""
    meta_file = path / "training.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    hp = meta.get("hyperparameters", {})
    args = argparse.Namespace(**{**vars(args), **{k: hp[k] for k in ("seq_len", "holdout_every")
                                                  if k in hp}})
    bpb = heldout_bpb_of_dir(path, args)
    rec = ""
    if meta:
        ref = meta.get("heldout_bits_per_byte")
        if ref:
            rec = f" (training.json records {ref:.5f}: {100 * (bpb - ref) / ref:+.3f} %)"
    print(f"{path}: held-out {bpb:.5f} bits/byte{rec}")
    print_samples(path, args)
    return 0


def plot_curve(meta: dict, png: Path) -> None:
    """Train and held-out bits per byte against step, with the training time in the title."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = meta["curve"]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.plot(c["step"], c["train_bits_per_byte"], label="train (mean since last point)")
    ax.plot(c["step"], c["heldout_bits_per_byte"], label="held-out")
    hp = meta["hyperparameters"]
    ax.set_title(f"HGRN-Bit d{hp['hidden_size']} L{hp['layers']}, vocab {hp['vocab_size']}: "
                 f"held-out {meta['heldout_bits_per_byte']:.3f} bits/byte", fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylabel("bits per byte")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, metadata={"Software": None})
    plt.close(fig)
