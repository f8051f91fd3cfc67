"""``mmfree run``: HGRN-Bit (the released MatMul-free LM) from a checkpoint, on a backend.

Library part (usable without the command line):

* :data:`BACKENDS`: how a token is computed. ``float`` is the released arithmetic in float64
  (:func:`mmfree.golden.hgrn_bit.float_bitlinear`, element-wise work in float64);
  ``bitlinear-int`` the BitLinears in the hardware's arithmetic
  (:class:`mmfree.golden.hgrn_bit.IntegerBitLinear`), element-wise work in float64 on the
  host (what ``--backend rtl`` runs today); ``integer`` the whole token in fixed point
  (:mod:`mmfree.golden.hgrn_fixed`, the token engine's bit-exact contract). A backend is a
  :class:`Stepper` (``init_state()``, ``step(token, state) -> (float64 logits, state)``);
  :func:`as_stepper` also takes a BitLinear callable ``BitLinearCall -> float output`` (run
  through :func:`mmfree.golden.hgrn_bit.token_step`). A simulator that owns the event loop,
  as cocotb does, drives ``token_step`` itself with a :class:`Decoder`.
* :class:`Decoder`: the bookkeeping of one generation (feed the prompt, record the logits of
  every prompt position, pick each new token, stop at ``n_new`` or end-of-sequence), the same
  for every driver.
* :class:`Sampler`: greedy (``argmax``, ties to the lowest id) or temperature / top-k sampling
  from a seeded generator (reproducible).
* :func:`generate`, :func:`perplexity`.

The command: see :func:`add_parser` (``mmfree run --help``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from .golden.hgrn_bit import (
    BitLinearCall,
    HGRNBitModel,
    IntegerBitLinear,
    float_bitlinear,
    run_step,
)
from .golden.hgrn_fixed import FixedConfig, FixedModel, fixed_token_step

__all__ = ["BACKENDS", "BitLinearStepper", "Decoder", "FixedStepper", "Generation",
           "InputError", "Perplexity", "Progress", "RtlFailed", "Sampler", "Stepper",
           "add_parser", "as_stepper", "generate", "make_backend", "perplexity", "run",
           "run_rtl_checked"]

Backend = Callable[[BitLinearCall], np.ndarray]


class Stepper(Protocol):
    """How a backend computes tokens: a fresh recurrent state, and one token step."""

    def init_state(self) -> Any: ...

    def step(self, token: int, state: Any) -> tuple[np.ndarray, Any]: ...


class BitLinearStepper:
    """:func:`~mmfree.golden.hgrn_bit.token_step` with the element-wise work in float64 and
    every BitLinear through ``bitlinear`` (a callable ``BitLinearCall -> float output``)."""

    def __init__(self, model: HGRNBitModel, bitlinear: Backend) -> None:
        self.model, self.bitlinear = model, bitlinear

    def init_state(self) -> list[np.ndarray]:
        return self.model.init_state()

    def step(self, token: int, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        return run_step(self.model, token, state, self.bitlinear)


class FixedStepper:
    """The whole token in fixed point (:func:`~mmfree.golden.hgrn_fixed.fixed_token_step`):
    integer state; the logits handed out as float64 (``int * 2**-res_frac``, exact)."""

    def __init__(self, model: HGRNBitModel, cfg: FixedConfig | None = None) -> None:
        self.fixed = FixedModel(model, cfg)

    def init_state(self) -> list[np.ndarray]:
        return self.fixed.init_state()

    def step(self, token: int, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        r = fixed_token_step(self.fixed, token, state)
        return self.fixed.logits_float(r.logits), r.state


#: backend name -> factory (model -> stepper)
BACKENDS: dict[str, Callable[[HGRNBitModel], Stepper]] = {
    "float": lambda model: BitLinearStepper(model, float_bitlinear),
    "bitlinear-int": lambda model: BitLinearStepper(model, IntegerBitLinear()),
    "integer": lambda model: FixedStepper(model),
}

#: one line per backend for --help and the docs
BACKEND_HELP = {
    "float": "the released arithmetic in float64",
    "bitlinear-int": "BitLinears in the hardware's fixed point (mmfree.golden.quantiser."
                     "NormBitLinear), element-wise work in float64 on the host",
    "integer": "the whole token in fixed point (mmfree.golden.hgrn_fixed: the token "
               "engine's bit-exact contract)",
}


def make_backend(name: str, model: HGRNBitModel) -> Stepper:
    """A fresh backend by name (:data:`BACKENDS`)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
    return BACKENDS[name](model)


def as_stepper(model: HGRNBitModel, backend: Stepper | Backend) -> Stepper:
    """``backend`` as a :class:`Stepper`: a stepper as it is, a BitLinear callable through
    :class:`BitLinearStepper`."""
    if hasattr(backend, "step") and hasattr(backend, "init_state"):
        return backend  # type: ignore[return-value]
    return BitLinearStepper(model, backend)  # type: ignore[arg-type]


# --- generation ----------------------------------------------------------------------------------


class Sampler:
    """Chooses the next token from logits: greedy for ``temperature == 0``; otherwise a draw
    from ``softmax(logits / temperature)`` restricted to the ``top_k`` largest logits
    (``top_k == 0``: all), by inverse CDF on one ``Generator.random()`` per token, so a seed
    reproduces the tokens."""

    def __init__(self, temperature: float = 0.0, top_k: int = 0, seed: int | None = None
                 ) -> None:
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        if top_k < 0:
            raise ValueError(f"top-k must be >= 0, got {top_k}")
        self.temperature, self.top_k, self.seed = temperature, top_k, seed
        self.rng = np.random.default_rng(seed)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def __call__(self, logits: np.ndarray) -> int:
        lg = np.asarray(logits, dtype=np.float64)
        if self.greedy:
            return int(np.argmax(lg))
        order = np.argsort(-lg, kind="stable")
        if self.top_k:
            order = order[:self.top_k]
        z = lg[order] / self.temperature
        p = np.exp(z - z.max())
        cdf = np.cumsum(p)
        pick = int(np.searchsorted(cdf, self.rng.random() * cdf[-1], side="right"))
        return int(order[min(pick, len(order) - 1)])


@dataclass
class Generation:
    """One run: the prompt, the generated tokens, the logits after every prompt token
    (teacher-forced, float64, (positions, vocab)) and whether end-of-sequence ended it."""

    prompt: list[int]
    tokens: list[int] = field(default_factory=list)
    prompt_logits: list[np.ndarray] = field(default_factory=list)
    stopped_at_eos: bool = False


class Decoder:
    """Generation bookkeeping for any driver of :func:`~mmfree.golden.hgrn_bit.token_step`:
    feed :meth:`next_token`, hand each step's logits to :meth:`observe`, until :attr:`done`.
    The prompt is fed token by token (its logits are recorded); then each chosen token is
    fed back, until ``n_new`` tokens exist or ``eos`` was chosen (``eos=None``: never stop
    early). ``n_new == 0`` runs the prompt only."""

    def __init__(self, prompt: Sequence[int], n_new: int, sampler: Sampler | None = None,
                 eos: int | None = None) -> None:
        if not prompt:
            raise ValueError("the prompt needs at least one token")
        if n_new < 0:
            raise ValueError(f"the number of new tokens must be >= 0, got {n_new}")
        self.n_new, self.eos = n_new, eos
        self.sampler = sampler or Sampler()
        self.result = Generation(list(prompt))
        self._fed = 0  # steps observed

    @property
    def steps(self) -> int:
        """Token steps this generation needs at most: prompt + new tokens - 1."""
        return len(self.result.prompt) + max(self.n_new - 1, 0)

    @property
    def done(self) -> bool:
        r = self.result
        return (self._fed >= len(r.prompt) and (len(r.tokens) >= self.n_new
                                                or r.stopped_at_eos))

    def next_token(self) -> int:
        """The token the next step consumes."""
        r = self.result
        return r.prompt[self._fed] if self._fed < len(r.prompt) else r.tokens[-1]

    def observe(self, logits: np.ndarray) -> None:
        """Record a finished step; from the prompt's last token on, each step picks a token."""
        r = self.result
        if self._fed < len(r.prompt):
            r.prompt_logits.append(np.asarray(logits, dtype=np.float64))
        self._fed += 1
        if self._fed >= len(r.prompt) and len(r.tokens) < self.n_new:
            tok = self.sampler(logits)
            r.tokens.append(tok)
            if self.eos is not None and tok == self.eos:
                r.stopped_at_eos = True


def generate(model: HGRNBitModel, backend: Stepper | Backend, prompt: Sequence[int],
             n_new: int, sampler: Sampler | None = None, eos: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> Generation:
    """Run the prompt and generate up to ``n_new`` tokens with a synchronous backend (a
    :class:`Stepper` or a BitLinear callable)."""
    stepper = as_stepper(model, backend)
    dec = Decoder(prompt, n_new, sampler, eos)
    state = stepper.init_state()
    step = 0
    while not dec.done:
        logits, state = stepper.step(dec.next_token(), state)
        dec.observe(logits)
        step += 1
        if progress is not None:
            progress(step, dec.steps)
    return dec.result


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max()
    return z - math.log(float(np.exp(z).sum()))


@dataclass(frozen=True)
class Perplexity:
    """Teacher-forced quality of a token sequence: ``predicted`` = tokens scored (all but
    the first), ``nll`` = their total negative log-likelihood in nats."""

    predicted: int
    nll: float
    text_bytes: int

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / self.predicted)

    @property
    def bits_per_byte(self) -> float:
        """Total NLL in bits over the text's UTF-8 bytes (comparable across tokenizers)."""
        return self.nll / math.log(2) / self.text_bytes

    def as_dict(self) -> dict[str, float | int]:
        return {"predicted_tokens": self.predicted, "nll": self.nll,
                "nll_per_token": self.nll / self.predicted, "perplexity": self.perplexity,
                "bits_per_byte": self.bits_per_byte}


def perplexity(model: HGRNBitModel, backend: Stepper | Backend, ids: Sequence[int],
               text_bytes: int, progress: Callable[[int, int], None] | None = None
               ) -> Perplexity:
    """Score ``ids[1:]`` given their prefixes (one token step per id but the last)."""
    if len(ids) < 2:
        raise ValueError("perplexity needs at least two tokens")
    stepper = as_stepper(model, backend)
    state = stepper.init_state()
    nll = 0.0
    for pos in range(len(ids) - 1):
        logits, state = stepper.step(ids[pos], state)
        nll -= float(log_softmax(logits)[ids[pos + 1]])
        if progress is not None:
            progress(pos + 1, len(ids) - 1)
    return Perplexity(len(ids) - 1, nll, text_bytes)


class Progress:
    """Progress lines on stderr for long runs: silent for the first ``after`` seconds, then
    one line at most every ``every`` seconds, and a final line if any was printed."""

    def __init__(self, label: str, stream: TextIO | None = None, after: float = 2.0,
                 every: float = 2.0) -> None:
        self.label, self.stream = label, stream or sys.stderr
        self.after, self.every = after, every
        self.t0 = time.monotonic()
        self.last = -math.inf
        self.printed = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and (now - self.t0 < self.after or now - self.last < self.every):
            return
        if done >= total and not self.printed:
            return
        self.last, self.printed = now, True
        rate = (now - self.t0) / max(done, 1)
        print(f"  {self.label} {done}/{total} ({rate:.3g} s each, "
              f"{now - self.t0:.0f} s)", file=self.stream, flush=True)


# --- the command ---------------------------------------------------------------------------------


class InputError(Exception):
    """Bad input to ``mmfree run``: printed as one line, exit status 2."""


@dataclass(frozen=True)
class EngineMemory:
    """The engine's BitLinear cores and their memory channels (``mmfree run --cores``):
    ``cores`` (0: the weight stream, the rest unused), the AXI port's ``data_width``,
    ``outstanding`` bursts, ``packed`` weights, each channel's ``latency`` (cycles)
    and ``rate`` (``(n, d)``: at most ``n`` R beats in every ``d`` cycles), and the
    ``channels`` (AXI ports; ``cores / channels`` cores share each through an AR arbiter)."""

    cores: int = 0
    data_width: int = 64
    outstanding: int = 4
    packed: bool = False
    latency: int = 30
    rate: tuple[int, int] = (1, 1)
    channels: int = 0

    @property
    def ports(self) -> int:
        """Memory channels (AXI ports): ``channels``, or one per core."""
        return self.channels or self.cores

    def params(self) -> dict[str, Any]:
        """The :class:`mmfree.spec.EngineSpec` parameters (``channels`` only when fewer than
        the cores: one per core is the engine's default, the same design)."""
        out: dict[str, Any] = {"cores": self.cores, "data_width": self.data_width,
                               "outstanding": self.outstanding, "packed": self.packed}
        if self.ports < self.cores:
            out["channels"] = self.channels
        return out


#: the options that only mean something with --cores
_MEMORY_OPTIONS = (("--mem-bits", "mem_bits"), ("--mem-latency", "mem_latency"),
                   ("--mem-rate", "mem_rate"), ("--outstanding", "outstanding"),
                   ("--channels", "channels"), ("--packed", "packed"))


def _engine_memory(args: argparse.Namespace) -> EngineMemory | None:
    """``--cores`` and the memory options, checked (one-line errors naming the option)."""
    cores = getattr(args, "cores", 0)
    given = [flag for flag, name in _MEMORY_OPTIONS if getattr(args, name, None)
             not in (None, False)]
    if not 0 <= cores <= 16:
        raise InputError(f"--cores must be in 0..16, got {cores}")
    if not cores:
        if given:
            raise InputError(f"{given[0]} needs --cores C >= 1 (the weights over AXI)")
        return None
    if args.backend != "rtl" or getattr(args, "rtl_unit", "engine") != "engine":
        raise InputError("--cores runs the whole-token engine: give --backend rtl (with "
                         "--rtl-unit engine, the default)")
    width = 64 if args.mem_bits is None else args.mem_bits
    if not 32 <= width <= 512 or width & (width - 1):
        raise InputError(f"--mem-bits must be a power of two in 32..512, got {width}")
    latency = 30 if args.mem_latency is None else args.mem_latency
    if not 2 <= latency <= 100000:
        raise InputError(f"--mem-latency must be in 2..100000 cycles, got {latency}")
    rate = (1, 1)
    if args.mem_rate is not None:
        n, sep, d = args.mem_rate.partition("/")
        try:
            rate = (int(n), int(d)) if sep else (0, 0)
        except ValueError:
            rate = (0, 0)
        if not 1 <= rate[0] <= rate[1] <= 1000:
            raise InputError(f"--mem-rate must be N/D with 1 <= N <= D <= 1000 (at most N "
                             f"beats in every D cycles), got {args.mem_rate!r}")
    outstanding = 4 if args.outstanding is None else args.outstanding
    if not 1 <= outstanding <= 64:
        raise InputError(f"--outstanding must be in 1..64, got {outstanding}")
    channels = cores if args.channels is None else args.channels
    if channels > cores or channels < 1:
        raise InputError(f"--channels must be in 1..--cores ({cores}), got {channels}")
    if cores % channels:
        raise InputError(f"--channels {channels} must divide --cores {cores} (each channel "
                         "serves as many cores)")
    return EngineMemory(cores, width, outstanding, bool(args.packed), latency, rate,
                        0 if channels == cores else channels)


_DESCRIPTION = (
    "Run the released MatMul-free LM (HGRN-Bit) from a Hugging Face checkpoint folder "
    "(config.json, model.safetensors or a sharded index, tokenizer.json): feed the prompt, "
    "generate tokens (greedy unless --temperature is given) and print them with their text. "
    "The backend computes each token: 'float' in the released floating-point arithmetic; "
    "'bitlinear-int' with every BitLinear in the hardware's fixed-point arithmetic "
    "(mmfree.golden.quantiser.NormBitLinear) and the element-wise work in float64 on the "
    "host; 'integer' the whole token in fixed point (mmfree.golden.hgrn_fixed: norms, "
    "sigmoid/SiLU tables, the recurrence, residuals, rescale and argmax in integers, the "
    "token engine's contract); 'rtl' on the generated RTL through cocotb: with --rtl-unit "
    "engine (the default) the whole token on the whole-token engine (checked: logits "
    "bit-identical to 'integer', cycles per token equal to the engine's formula), with "
    "--rtl-unit bitlinear every BitLinear on the BitLinear unit and the element-wise work "
    "on the host (checked against 'bitlinear-int' and the cycle model). Exit status 1 when "
    "an rtl check fails, 2 on bad input or a missing simulator.")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``mmfree run`` and its alias ``mmfree cosim`` (``run --backend rtl``)."""
    p = subparsers.add_parser(
        "run", help="run HGRN-Bit (the released MatMul-free LM) from a checkpoint",
        description=_DESCRIPTION,
        epilog="Examples: mmfree run --prompt 'Hello'; mmfree run --ids 1,72,105 --tokens 4 "
               "--logits out.npy --json out.json; mmfree run --backend rtl --sim icarus "
               "--tokens 2; mmfree run --perplexity text.txt")
    _arguments(p, "integer")
    c = subparsers.add_parser(
        "cosim", help="mmfree run --backend rtl: HGRN-Bit with every BitLinear on the RTL",
        description=_DESCRIPTION + " 'mmfree cosim' is 'mmfree run' with --backend rtl.")
    _arguments(c, "rtl")
    return p


def _arguments(p: argparse.ArgumentParser, backend: str) -> None:
    p.add_argument("--checkpoint", metavar="DIR",
                   help="checkpoint folder (default: the shipped trained tiny model, "
                        "d 128, 2 layers, 512-token BPE vocabulary)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prompt", metavar="TEXT", help="prompt text (needs the checkpoint's "
                                                      "tokenizer)")
    src.add_argument("--ids", metavar="LIST",
                     help="prompt as comma-separated token ids, e.g. 1,72,105 (no tokenizer "
                          "involved)")
    p.add_argument("--tokens", type=int, default=16, metavar="N",
                   help="tokens to generate (default 16; 0: run the prompt only)")
    p.add_argument("--backend", choices=[*BACKENDS, "rtl"], default=backend,
                   help="how each token is computed: " + "; ".join(
                       f"{k}: {v}" for k, v in BACKEND_HELP.items())
                   + "; rtl: the generated RTL through cocotb, the whole-token engine or "
                     f"the BitLinear unit (--rtl-unit) (default {backend})")
    p.add_argument("--logits", metavar="FILE.npy",
                   help="write the teacher-forced logits of every prompt position: float32, "
                        "shape (positions, vocab)")
    p.add_argument("--json", metavar="FILE",
                   help="write the results as JSON ('tokens': the generated ids, and more) "
                        "to FILE ('-': standard output)")
    p.add_argument("--perplexity", metavar="FILE.txt",
                   help="report the perplexity (and bits per byte) of a UTF-8 text under the "
                        "float, bitlinear-int and integer backends; --prompt/--ids become "
                        "optional")
    r = p.add_argument_group("rtl backend (the whole-token engine, checked against the "
                             "integer backend, or the BitLinear unit as a co-processor, "
                             "checked against bitlinear-int)")
    r.add_argument("--sim", choices=("icarus", "verilator"), default="verilator",
                   help="simulator (default verilator)")
    r.add_argument("--lanes", type=int, default=16, metavar="N",
                   help="lanes: the BitLinear unit's 1..1024 (its max_dim is the model's "
                        "longest BitLinear input rounded up to lanes), the engine's 1..64 "
                        "(they must divide the MLP width) (default 16)")
    r.add_argument("--rtl-unit", choices=("engine", "bitlinear"), default="engine",
                   help="engine: the whole token on the whole-token engine's RTL, checked "
                        "against the integer backend; bitlinear: every BitLinear on the "
                        "BitLinear unit's RTL as a co-processor, the rest on the host, checked "
                        "against the bitlinear-int backend (default engine)")
    r.add_argument("--cores", type=int, default=0, metavar="C",
                   help="engine: ternary cores of the BitLinear unit, 1..16, each reading its "
                        "share of every matrix's rows over an AXI4 port from a cocotbext-axi "
                        "memory (a channel; see --channels); 0: one core fed by the "
                        "testbench on a weight stream (default 0)")
    r.add_argument("--mem-bits", type=int, default=None, metavar="W",
                   help="with --cores: AXI data bus width per port, a power of two 32..512 "
                        "(default 64)")
    r.add_argument("--mem-latency", type=int, default=None, metavar="L",
                   help="with --cores: cycles from an AR transfer to its first R beat in "
                        "each channel, 2..100000 (default 30)")
    r.add_argument("--mem-rate", default=None, metavar="N/D",
                   help="with --cores: each channel's bandwidth limit, at most N R beats in "
                        "every D cycles (default 1/1)")
    r.add_argument("--outstanding", type=int, default=None, metavar="N",
                   help="with --cores: read bursts in flight per port, 1..64 (default 4)")
    r.add_argument("--channels", type=int, default=None, metavar="K",
                   help="with --cores: memory channels (AXI4 ports), dividing --cores: core c "
                        "reads over channel c mod K, in its own region of it; fewer channels "
                        "than cores share each through an AR arbiter and split its bandwidth "
                        "(cycles then an estimate, checked within 2 %%) (default: --cores, "
                        "one channel per core)")
    r.add_argument("--packed", action="store_true",
                   help="with --cores: weights stored packed 5 trits per byte (1.6 bits per "
                        "weight) and unpacked on chip (default: 2-bit codes)")
    r.add_argument("--harness", choices=("bulk", "per-beat"), default="bulk",
                   help="with --rtl-unit bitlinear: how the testbench feeds the unit (default "
                        "bulk: the weights resident in an HDL-side replay memory, one "
                        "simulator call per product, no Python per cycle; per-beat: cocotb "
                        "drivers on every clock edge, slower); both check every output and "
                        "cycle count")
    r.add_argument("--waves", action="store_true", help="dump waveforms (large)")
    s = p.add_argument_group("sampling (default: greedy)")
    s.add_argument("--temperature", type=float, default=0.0, metavar="T",
                   help="sample from softmax(logits / T); 0 (default) is greedy")
    s.add_argument("--top-k", type=int, default=0, metavar="K",
                   help="sample among the K most likely tokens only (default 0: all)")
    s.add_argument("--seed", type=int, metavar="S",
                   help="sampling seed (default: random, printed on stderr)")
    s.add_argument("--ignore-eos", action="store_true",
                   help="do not stop at the end-of-sequence token (always N tokens)")
    p.set_defaults(func=run)


def _parse_ids(text: str, vocab: int) -> list[int]:
    ids = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise InputError(f"--ids: {part!r} is not an integer token id") from None
        if not 0 <= value < vocab:
            raise InputError(f"--ids: token id {value} is outside the vocabulary 0..{vocab - 1}")
        ids.append(value)
    return ids


def _check_output(option: str, path: str | None) -> None:
    if path is None or (option == "--json" and path == "-"):  # "-": standard output
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise InputError(f"{option}: folder {parent} does not exist")
    if Path(path).is_dir():
        raise InputError(f"{option}: {path} is a folder")


def _write_atomic(path: str, write: Callable[[Any], None], binary: bool) -> None:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.resolve().parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else
                                                         {"encoding": "utf-8"})) as f:
            write(f)
        mask = os.umask(0o22)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _encode(tokenizer: Any, note: str, text: str, vocab: int, what: str) -> list[int]:
    if tokenizer is None:
        raise InputError(f"{what} needs a tokenizer: {note}")
    ids = tokenizer.encode(text)
    bad = [i for i in ids if not 0 <= i < vocab]
    if bad:
        raise InputError(f"{what}: the tokenizer gives token id {bad[0]}, outside the model's "
                         f"vocabulary 0..{vocab - 1}")
    return ids


def _describe(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    """``mmfree run``; returns the exit status (errors: one line on stderr, status 2; a
    failed check of the rtl backend: status 1)."""
    try:
        return _run(args)
    except InputError as e:
        print(f"mmfree: {e}", file=sys.stderr)
        return 2
    except RtlFailed:
        return 1


def _run(args: argparse.Namespace) -> int:
    from .checkpoint import CheckpointError, open_checkpoint
    from .tiny_checkpoint import default_path

    # arguments first: nothing slow happens before they are known to be usable
    if args.prompt is None and args.ids is None and not args.perplexity:
        raise InputError("give --prompt TEXT or --ids LIST (or --perplexity FILE.txt)")
    if args.tokens < 0:
        raise InputError(f"--tokens must be >= 0, got {args.tokens}")
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise InputError(f"--temperature must be a finite number >= 0, got {args.temperature}")
    if args.top_k < 0:
        raise InputError(f"--top-k must be >= 0, got {args.top_k}")
    if args.backend == "rtl" and not 1 <= args.lanes <= 1024:
        raise InputError(f"--lanes must be in 1..1024, got {args.lanes}")
    if args.backend == "rtl" and args.perplexity:
        raise InputError("--perplexity runs the float, bitlinear-int and integer backends; "
                         "drop --backend rtl")
    args.memory = _engine_memory(args)
    if args.top_k and args.temperature == 0:
        raise InputError("--top-k samples: give --temperature > 0 too (0 is greedy)")
    if args.logits and args.prompt is None and args.ids is None:
        raise InputError("--logits needs a prompt (--prompt or --ids)")
    for option, path in (("--logits", args.logits), ("--json", args.json)):
        _check_output(option, path)
    text = None
    if args.perplexity:
        try:
            text = Path(args.perplexity).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"--perplexity: {args.perplexity} not found") from None
        except UnicodeDecodeError as e:
            raise InputError(f"--perplexity: {args.perplexity} is not UTF-8 text "
                             f"({e.reason} at byte {e.start})") from None
        except OSError as e:
            raise InputError(f"--perplexity: cannot read {args.perplexity} ({e.strerror})"
                             ) from None

    path = Path(args.checkpoint) if args.checkpoint else default_path()
    try:
        ckpt = open_checkpoint(path)
        cfg = ckpt.config
        prompt: list[int] | None = None
        if args.ids is not None:
            prompt = _parse_ids(args.ids, cfg.vocab_size)
        elif args.prompt is not None:
            prompt = _encode(ckpt.tokenizer, ckpt.tokenizer_note, args.prompt, cfg.vocab_size,
                             "--prompt")
        if prompt is not None and not prompt:
            raise InputError("the prompt gives no tokens (empty text?)")
        ppl_ids = (_encode(ckpt.tokenizer, ckpt.tokenizer_note, text, cfg.vocab_size,
                           "--perplexity") if text is not None else None)
        if ppl_ids is not None and len(ppl_ids) < 2:
            raise InputError(f"--perplexity: {args.perplexity} gives {len(ppl_ids)} token(s); "
                             "at least 2 are needed")
        model = ckpt.load_model(progress=Progress("quantising matrices"))
    except CheckpointError as e:
        raise InputError(f"--checkpoint: {e}" if args.checkpoint else str(e)) from None

    label = "the shipped tiny model" if args.checkpoint is None else str(path)
    print(f"HGRN-Bit {label}: d {cfg.hidden_size}, {cfg.num_hidden_layers} layers, vocab "
          f"{cfg.vocab_size}, MLP {cfg.intermediate}, {'/'.join(ckpt.dtypes)}, "
          f"{len(cfg.bitlinears())} BitLinears per token; tokenizer: {ckpt.tokenizer_note}")
    out: dict[str, Any] = {"checkpoint": str(path), "backend": args.backend,
                           "config": {"hidden_size": cfg.hidden_size,
                                      "num_hidden_layers": cfg.num_hidden_layers,
                                      "vocab_size": cfg.vocab_size,
                                      "intermediate_size": cfg.intermediate}}
    decode = ckpt.tokenizer.decode if ckpt.tokenizer is not None else None
    status = 0
    try:
        if prompt is not None:
            seed = args.seed
            if args.temperature > 0 and seed is None:
                seed = random.randrange(1 << 31)
                print(f"mmfree: sampling seed {seed} (replay with --seed {seed})",
                      file=sys.stderr)
            sampler = Sampler(args.temperature, args.top_k, seed)
            eos = None if args.ignore_eos else cfg.eos_token_id
            t0 = time.monotonic()
            if args.backend == "rtl":
                gen, status = _run_rtl(args, path, model, prompt, sampler, eos, out)
            else:
                gen = generate(model, make_backend(args.backend, model), prompt, args.tokens,
                               sampler, eos, Progress("token step"))
            wall = time.monotonic() - t0
            print(f"backend {args.backend}: prompt {len(prompt)} tokens {prompt}")
            stop = " (stopped at end-of-sequence)" if gen.stopped_at_eos else ""
            print(f"generated {len(gen.tokens)} tokens{stop}: {gen.tokens}")
            if decode is not None:
                print(f"text: {_describe(decode(gen.tokens))}")
            steps = len(prompt) + max(len(gen.tokens) - 1, 0)
            print(f"{steps} token steps in {wall:.2f} s ({wall / steps:.3g} s per step)")
            out.update({"prompt_ids": prompt, "tokens": gen.tokens,
                        "stopped_at_eos": gen.stopped_at_eos,
                        "sampling": {"temperature": args.temperature, "top_k": args.top_k,
                                     "seed": seed}})
            if decode is not None:
                out["text"] = decode(gen.tokens)
            if args.logits:
                logits = np.stack(gen.prompt_logits).astype(np.float32)
                _write_atomic(args.logits, lambda f: np.save(f, logits), binary=True)
                print(f"logits of {logits.shape[0]} positions -> {args.logits} "
                      f"(float32, shape {list(logits.shape)})")
        if ppl_ids is not None:
            assert text is not None
            nbytes = len(text.encode("utf-8"))
            res = {name: perplexity(model, make_backend(name, model), ppl_ids, nbytes,
                                    Progress(f"perplexity ({name})"))
                   for name in BACKENDS}
            print(f"perplexity of {args.perplexity}: {len(ppl_ids)} tokens, {nbytes} bytes")
            print(f"  {'backend':13} {'nll/token':>10} {'perplexity':>12} {'bits/byte':>10}")
            for name, r in res.items():
                print(f"  {name:13} {r.nll / r.predicted:10.5f} {r.perplexity:12.5g} "
                      f"{r.bits_per_byte:10.5f}")
            for name in ("bitlinear-int", "integer"):
                diff = res[name].perplexity - res["float"].perplexity
                print(f"  {name} - float: perplexity {diff:+.4g} "
                      f"({100 * diff / res['float'].perplexity:+.3f} %)")
            out["perplexity"] = {"file": args.perplexity, "tokens": len(ppl_ids),
                                 "bytes": nbytes} | {n: r.as_dict() for n, r in res.items()}
    except ValueError as e:  # a non-finite embedding row, a token outside the vocabulary ...
        raise InputError(str(e)) from None
    if args.json == "-":
        print(json.dumps(out, indent=1))
    elif args.json:
        _write_atomic(args.json, lambda f: f.write(json.dumps(out, indent=1) + "\n"),
                      binary=False)
    return status


# --- the rtl backend -----------------------------------------------------------------------------


def _run_rtl(args: argparse.Namespace, path: Path, model: HGRNBitModel, prompt: list[int],
             sampler: Sampler, eos: int | None, out: dict[str, Any]) -> tuple[Generation, int]:
    """``--backend rtl``: :func:`run_engine_checked` (``--rtl-unit engine``) or
    :func:`run_rtl_checked` (``bitlinear``) with the command's options."""
    if getattr(args, "rtl_unit", "engine") == "engine":
        return run_engine_checked(model, path, prompt, args.tokens, args.sim, args.lanes,
                                  sampler, eos, out, waves=args.waves,
                                  memory=getattr(args, "memory", None))
    return run_rtl_checked(model, path, prompt, args.tokens, args.sim, args.lanes, sampler,
                           eos, out, waves=args.waves, harness=args.harness)


def run_engine_checked(model: HGRNBitModel, path: Path, prompt: list[int], n_new: int,
                       sim: str, lanes: int, sampler: Sampler, eos: int | None,
                       out: dict[str, Any], waves: bool = False,
                       memory: EngineMemory | None = None) -> tuple[Generation, int]:
    """The generation on the whole-token engine's RTL (:func:`mmfree.sim.lm_cosim.run_engine`),
    checked against the integer backend (every step's logits bit-identical, the same tokens)
    and the engine's cycle formula (every step's cycles equal to
    :func:`mmfree.spec.engine.program_cycles`, or within
    :data:`mmfree.spec.multicore_bitlinear.CYCLE_TOLERANCE` where a memory channel limits
    the weights and the formula is an estimate); prints the comparison and adds the results
    to ``out``. ``memory``: the BitLinear unit's cores and their AXI channels (``None``: the
    weight stream). Returns the generation and the exit status (1 if a check failed).
    Raises :class:`InputError` for bad input or a missing simulator."""
    from .sim.lm_cosim import run_engine, size_engine
    from .spec.engine import compile_token, program_cycles
    from .spec.multicore_bitlinear import CYCLE_TOLERANCE

    cfg = model.config
    mem = memory or EngineMemory()
    try:
        spec = size_engine(cfg, lanes)
    except (TypeError, ValueError) as e:
        raise InputError(f"--lanes: {e}") from None
    if mem.cores:
        try:
            spec = size_engine(cfg, lanes, **mem.params())
            spec.matrix_addresses(compile_token(cfg, lanes=lanes))  # the images fit
        except (TypeError, ValueError) as e:
            raise InputError(f"--cores/--channels/--mem-bits/--packed/--outstanding: {e}"
                             ) from None
    program = compile_token(cfg, lanes=lanes)
    predicted = program_cycles(program, spec.vector(), spec.bitlinear(), mem.latency,
                               mem.rate[0] / mem.rate[1])["total"]
    exact = spec.cycles_exact(program, mem.latency, mem.rate[0] / mem.rate[1])
    ref = FixedStepper(model)
    reference = _reference_run(prompt, n_new, sampler, eos, ref.init_state(), ref.step)
    fmt = "packed 5 trits/byte" if spec.packed else "2-bit codes"
    weights = ("weights on the stream port" if not mem.cores else
               f"{mem.cores} cores x {spec.lanes} lanes, weights over {mem.ports} AXI4 "
               f"port{'s' if mem.ports > 1 else ''} "
               f"of {spec.data_width} bits"
               + (f", {mem.cores // mem.ports} cores per port through an AR arbiter"
                  if mem.ports < mem.cores else "") + f" ({fmt}; "
               f"channels: latency {mem.latency}, {mem.rate[0]}/{mem.rate[1]} beats per "
               "cycle)")
    why = ("cores share channels" if mem.ports < mem.cores else
           "a channel limits the fetch")
    print(f"engine: {spec.lanes} lanes, {spec.width}-bit VMEM of {spec.vmem_words} words, "
          f"{spec.prog_depth} instructions per token, {weights}, predicted {predicted:,} "
          f"cycles per token{'' if exact else f' (an estimate: {why})'} "
          f"({spec.top_name()})")

    def launch(progress: Callable[[dict], None]) -> Any:
        return run_engine(path, prompt, n_new, sim, spec, temperature=sampler.temperature,
                          top_k=sampler.top_k, seed=sampler.seed, eos=eos, waves=waves,
                          progress=progress, mem_latency=mem.latency, mem_rate=mem.rate)

    extra = {"rtl_unit": "engine", "engine": spec.params(), "cycles_exact": exact}
    if mem.cores:
        extra["memory"] = {"channels": mem.ports, "latency": mem.latency,
                           "rate": list(mem.rate)}
    return _simulate_checked(sim, "", launch, reference, predicted, prompt, out,
                             ("engine", "integer", "mismatches"), extra,
                             tolerance=0.0 if exact else CYCLE_TOLERANCE)


def run_rtl_checked(model: HGRNBitModel, path: Path, prompt: list[int], n_new: int, sim: str,
                    lanes: int, sampler: Sampler, eos: int | None, out: dict[str, Any],
                    waves: bool = False, harness: str = "bulk") -> tuple[Generation, int]:
    """The generation with every BitLinear on the simulated BitLinear unit
    (:func:`mmfree.sim.lm_cosim.run_rtl`), checked against the bitlinear-int backend (every
    step's logits bit-identical, the same tokens) and the cycle model (every step's cycles
    equal to :func:`mmfree.model.cycles.bitlinear_token_cycles`); prints the comparison and
    adds the results to ``out``. ``harness``: ``bulk`` or ``per-beat``
    (:data:`mmfree.sim.lm_cosim.HARNESSES`). Returns the generation and the exit status (1 if
    a check failed). Raises :class:`InputError` for bad input or a missing simulator."""
    from .golden.hgrn_bit import IntegerBitLinear
    from .golden.quantiser import NormBitLinear
    from .model.cycles import bitlinear_token_cycles
    from .sim.lm_cosim import run_rtl, size_unit

    cfg = model.config
    try:
        unit = size_unit(cfg, lanes=lanes)
    except (TypeError, ValueError) as e:
        raise InputError(f"--lanes: {e}") from None
    predicted = bitlinear_token_cycles(cfg, unit)
    # the reference: the bitlinear-int backend in the unit's arithmetic (the pipeline the
    # RTL runs: BitLinears on the device, element-wise work on the host), every step's logits
    ref = IntegerBitLinear(NormBitLinear(unit.fmt, unit.acc_width))
    reference = _reference_run(prompt, n_new, sampler, eos, model.init_state(),
                               lambda token, state: run_step(model, token, state, ref))
    print(f"BitLinear unit: {unit.lanes} lanes, max K {unit.max_dim}, {unit.in_width}-bit "
          f"inputs, {unit.weight_width}-bit norm weights, P = {unit.mant_bits}; "
          f"{len(cfg.bitlinears())} products per token, predicted {predicted:,} cycles per "
          f"token ({unit.top_name()})")

    def launch(progress: Callable[[dict], None]) -> Any:
        return run_rtl(path, prompt, n_new, sim, unit, temperature=sampler.temperature,
                       top_k=sampler.top_k, seed=sampler.seed, eos=eos, waves=waves,
                       harness=harness, progress=progress)

    return _simulate_checked(sim, f" ({harness} harness)", launch, reference, predicted,
                             prompt, out, ("rtl", "bitlinear-int", "device mismatches"),
                             {"harness": harness, "unit": unit.params()})


def _reference_run(prompt: list[int], n_new: int, sampler: Sampler, eos: int | None,
                   state: Any, step: Callable[[int, Any], tuple[np.ndarray, Any]]
                   ) -> tuple[Decoder, list[np.ndarray]]:
    """The reference generation an RTL run is checked against: the decoder (its tokens and
    step count) and every step's logits."""
    dec = Decoder(prompt, n_new, Sampler(sampler.temperature, sampler.top_k, sampler.seed),
                  eos)
    logits_all = []
    while not dec.done:
        logits, state = step(dec.next_token(), state)
        dec.observe(logits)
        logits_all.append(logits)
    return dec, logits_all


def _simulate_checked(sim: str, note: str, launch: Callable[[Callable[[dict], None]], Any],
                      reference: tuple[Decoder, list[np.ndarray]], predicted: int,
                      prompt: list[int], out: dict[str, Any], words: tuple[str, str, str],
                      extra: dict[str, Any], tolerance: float = 0.0
                      ) -> tuple[Generation, int]:
    """Run ``launch(progress)`` (an :class:`mmfree.sim.lm_cosim.RtlRun`) with per-step
    progress on standard error, compare it with the reference run (logits bit-identical,
    the same tokens, every step's cycles equal to ``predicted``, or within the relative
    ``tolerance`` of it where the prediction is an estimate, no mismatch), print the
    comparison (``words``: what ran, the reference backend's name, what its mismatches
    are) and add the results and ``extra`` to ``out``. Returns the generation and the exit
    status."""
    from .flow.toolchain import SimulatorMissing

    ref_dec, ref_logits = reference
    what, versus, mism = words
    steps = ref_dec.steps
    t0 = time.monotonic()

    def progress(entry: dict) -> None:
        tok = "" if entry["token"] is None else f", token {entry['token']}"
        print(f"mmfree: [{sim}] step {entry['step'] + 1}/{steps}: "
              f"{entry['cycles']:,} cycles, {entry['wall_s']:.2f} s{tok} "
              f"({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)

    print(f"mmfree: [{sim}] building and running{note} ...", file=sys.stderr, flush=True)
    try:
        run = launch(progress)
    except SimulatorMissing as e:
        raise InputError(str(e)) from None
    except (RuntimeError, OSError) as e:
        print(f"mmfree: {e}", file=sys.stderr)
        raise RtlFailed() from None
    identical = (len(run.logits) == len(ref_logits) and all(
        np.array_equal(a, b) for a, b in zip(run.logits, ref_logits, strict=True)))
    tokens_same = run.tokens == ref_dec.result.tokens
    cycles_ok = all(abs(c - predicted) <= tolerance * predicted for c in run.step_cycles)
    wall_per = sum(run.step_wall_s) / max(len(run.step_wall_s), 1)
    measured = sorted(set(run.step_cycles))
    shown = (f"{measured[0]:,}" if len(measured) == 1 else
             f"{measured[0]:,}..{measured[-1]:,}")
    print(f"{what} on {sim}: logits {'bit-identical to' if identical else 'DIFFER from'} "
          f"the {versus} backend ({len(run.logits)} steps), tokens "
          f"{'identical' if tokens_same else 'DIFFER'}, {run.mismatches} {mism}")
    verdict = ("DIFFER" if not cycles_ok else "equal" if not tolerance
               else f"within {100 * tolerance:g} %")
    print(f"cycles per token: measured {shown}, predicted {predicted:,} ({verdict}); "
          f"{wall_per:.2f} s of simulation per token "
          f"({run.wall_s:.0f} s in all, build included)")
    out.update({"simulator": sim, **extra,
                "cycles_per_token": measured[0] if len(measured) == 1 else run.step_cycles,
                "step_cycles": run.step_cycles, "predicted_cycles_per_token": predicted,
                "logits_identical": identical, "tokens_identical": tokens_same,
                "device_mismatches": run.mismatches, "wall_s_per_token": wall_per,
                "wall_s": run.wall_s})
    gen = Generation(list(prompt), list(run.tokens), run.prompt_logits, run.stopped_at_eos)
    ok = identical and tokens_same and cycles_ok and run.mismatches == 0
    return gen, 0 if ok else 1


class RtlFailed(Exception):
    """The RTL run broke (its message was printed): exit status 1."""
