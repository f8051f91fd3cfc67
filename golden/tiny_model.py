"""A tiny MatMul-free LM, end to end: the integer (hardware) pipeline and a float reference.

The architecture is the MatMul-free LM's (Zhu et al., arXiv 2406.02528; see
``../shared/reference/matmulfree-lm.md``), scaled down: byte vocabulary, ``layers`` blocks of

    x -> RMSNorm -> MLGRU -> + x -> RMSNorm -> GLU -> + x

then a final RMSNorm and a ternary lm_head; greedy decoding (``argmax``, ties to the lowest
token). The MLGRU is the paper's form, ``f = sigmoid(x W_f)``, ``c = SiLU(x W_c)``,
``h = f * h_prev + (1 - f) * c``, ``g = sigmoid(x W_g)``, ``o = (g * h) W_o``; the GLU is
``down(SiLU(x W_gate) * (x W_up))``. Block RMSNorms have eps 1e-6 and no weight, the
embedding is float, every projection is a BitLinear with absmean ternary weights.

A token step is a generator (:func:`token_step`) that yields each BitLinear it needs as a
:class:`BitLinearCall` and receives the float output back: the host-side element-wise work
is the same code whichever backend evaluates the BitLinears, so a run whose BitLinears
execute on the RTL produces bit-identical floats (and tokens) exactly when every integer the
RTL returns is right. Backends here: :class:`IntegerBackend` (the hardware arithmetic of
:class:`mmfree.golden.quantiser.FixedBitLinear`: block-float input, fixed-point RMSNorm and
absmax quantiser, integer ternary product) and :class:`FloatBackend` (BitLinear as the
reference implementation computes it in floating point, :mod:`mmfree.golden.bitlinear`).

Per layer the token step makes four BitLinear calls, because ``W_c``, ``W_f`` and ``W_g`` read
the same input (one quantised vector, the three matrices stacked: ``3d`` rows) and so do
``W_gate`` and ``W_up`` (``2I`` rows); then ``W_o`` (``d`` rows) and ``W_down`` (``d`` rows,
``K = I``); one more for the lm_head. Each stacked matrix keeps its own weight scale.

**Weight file** (:func:`load_weights`, :func:`save_weights`): a numpy ``.npz`` holding
``config`` (a JSON string: ``d``, ``layers``, ``vocab``, ``inter``), ``embed`` (vocab x d),
``lm_head`` (vocab x d) and per layer ``l``: ``layers.l.mlgru.{c,f,g,o}`` (d x d),
``layers.l.glu.{gate,up}`` (inter x d), ``layers.l.glu.down`` (d x inter), all finite floats
(full precision; ternary quantisation happens on loading). Missing, extra, mis-shaped or
non-finite arrays are rejected with the key named.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bitlinear import BITLINEAR_RMS_EPS, RMS_EPS, quantize_activations, quantize_weights, rms_norm
from .quantiser import FixedBitLinear
from .ternary import ternary_matvec

__all__ = ["BitLinearCall", "Deviation", "Generation", "Greedy", "IntegerBackend", "Matrix",
           "TinyConfig", "TinyModel", "WeightFileError", "deviation", "float_backend", "generate",
           "glu_size", "load_weights", "run_step", "save_weights", "stack", "token_step"]


def glu_size(d: int) -> int:
    """The MatMul-free LM's GLU width, ``256 * ceil((8d/3) / 256)`` (reference config)."""
    return 256 * math.ceil(8 * d / 3 / 256)


@dataclass(frozen=True)
class TinyConfig:
    """Shape of a tiny model; ``inter`` defaults to :func:`glu_size`."""

    d: int = 128
    layers: int = 2
    vocab: int = 256
    inter: int = 0

    def __post_init__(self) -> None:
        for name in ("d", "layers", "vocab"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.inter == 0:
            object.__setattr__(self, "inter", glu_size(self.d))
        if isinstance(self.inter, bool) or not isinstance(self.inter, int) or self.inter < 1:
            raise ValueError(f"inter must be a positive integer, got {self.inter!r}")

    def shapes(self) -> dict[str, tuple[int, int]]:
        """Every weight array's name and shape, as the weight file stores them."""
        d, i = self.d, self.inter
        out = {"embed": (self.vocab, d)}
        for layer in range(self.layers):
            p = f"layers.{layer}."
            out.update({p + f"mlgru.{n}": (d, d) for n in "cfgo"})
            out.update({p + "glu.gate": (i, d), p + "glu.up": (i, d), p + "glu.down": (d, i)})
        out["lm_head"] = (self.vocab, d)
        return out

    def calls(self) -> list[tuple[str, int, int]]:
        """The BitLinear calls of one token step, in order: (name, rows M, inputs K)."""
        d, i = self.d, self.inter
        per_layer = [("mlgru.cfg", 3 * d, d), ("mlgru.o", d, d), ("glu.gate_up", 2 * i, d),
                     ("glu.down", d, i)]
        return [(f"layers.{n}.{name}", m, k) for n in range(self.layers)
                for name, m, k in per_layer] + [("lm_head", self.vocab, self.d)]


class WeightFileError(ValueError):
    """A weight file that is malformed or does not match its configuration."""


@dataclass(frozen=True)
class Matrix:
    """A (possibly stacked) ternary matrix: codes in {-1, 0, 1} and one weight scale per row
    (``s_w`` of the matrix each row came from)."""

    w_q: np.ndarray
    row_scales: np.ndarray


def stack(parts: Sequence[np.ndarray]) -> Matrix:
    """Quantise each float matrix with its own absmean scale and stack the rows."""
    qs = [quantize_weights(p) for p in parts]
    return Matrix(np.concatenate([q for q, _ in qs]),
                  np.concatenate([np.full(len(q), s) for q, s in qs]))


@dataclass
class TinyModel:
    """Float weights of a tiny model and their ternary forms, keyed as :meth:`TinyConfig.shapes`."""

    config: TinyConfig
    weights: dict[str, np.ndarray]
    matrices: dict[str, Matrix] = field(init=False)

    def __post_init__(self) -> None:
        _check_arrays(self.config, self.weights)
        w = self.weights
        self.matrices = {}
        for n in range(self.config.layers):
            p = f"layers.{n}."
            self.matrices[p + "mlgru.cfg"] = stack([w[p + "mlgru.c"], w[p + "mlgru.f"],
                                                    w[p + "mlgru.g"]])
            self.matrices[p + "mlgru.o"] = stack([w[p + "mlgru.o"]])
            self.matrices[p + "glu.gate_up"] = stack([w[p + "glu.gate"], w[p + "glu.up"]])
            self.matrices[p + "glu.down"] = stack([w[p + "glu.down"]])
        self.matrices["lm_head"] = stack([w["lm_head"]])

    @classmethod
    def random(cls, config: TinyConfig, seed: int) -> TinyModel:
        """Deterministic random weights: embedding N(0, 1), projections N(0, 1/fan_in)."""
        rng = np.random.default_rng(seed)
        weights = {}
        for name, shape in config.shapes().items():
            std = 1.0 if name == "embed" else 1.0 / math.sqrt(shape[1])
            weights[name] = rng.normal(0.0, std, shape)
        return cls(config, weights)

    def init_state(self) -> list[np.ndarray]:
        """The recurrent state: one zero hidden vector per layer."""
        return [np.zeros(self.config.d) for _ in range(self.config.layers)]


def _check_arrays(config: TinyConfig, weights: dict[str, np.ndarray]) -> None:
    want = config.shapes()
    missing = sorted(set(want) - set(weights))
    extra = sorted(set(weights) - set(want))
    if missing:
        raise WeightFileError(f"missing weight arrays: {', '.join(missing[:5])}"
                              + (" ..." if len(missing) > 5 else ""))
    if extra:
        raise WeightFileError(f"unexpected weight arrays: {', '.join(extra[:5])}"
                              + (" ..." if len(extra) > 5 else ""))
    for name, shape in want.items():
        arr = weights[name]
        if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
            raise WeightFileError(f"{name}: needs a float array, got "
                                  f"{getattr(arr, 'dtype', type(arr).__name__)}")
        if arr.shape != shape:
            raise WeightFileError(f"{name}: shape {arr.shape}, the config needs {shape}")
        if not np.all(np.isfinite(arr)):
            raise WeightFileError(f"{name}: holds NaN or infinity")


def save_weights(model: TinyModel, path: str | Path) -> None:
    """Write the model as the documented ``.npz``."""
    cfg = model.config
    meta = json.dumps({"d": cfg.d, "layers": cfg.layers, "vocab": cfg.vocab, "inter": cfg.inter})
    np.savez(path, config=np.array(meta), **model.weights)


def load_weights(path: str | Path) -> TinyModel:
    """Read a ``.npz`` weight file, validating it against its own ``config``."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise
    except Exception as e:  # zipfile/format errors: one clear message
        raise WeightFileError(f"{path}: not a readable .npz file ({e})") from e
    if "config" not in arrays:
        raise WeightFileError(f"{path}: no 'config' entry")
    try:
        meta = json.loads(str(arrays.pop("config")))
        if not isinstance(meta, dict):
            raise TypeError("not an object")
        unknown = set(meta) - {"d", "layers", "vocab", "inter"}
        if unknown:
            raise TypeError(f"unknown keys {sorted(unknown)}")
        config = TinyConfig(**meta)
    except (ValueError, TypeError) as e:
        raise WeightFileError(f"{path}: bad 'config' ({e})") from e
    try:
        return TinyModel(config, arrays)
    except WeightFileError as e:
        raise WeightFileError(f"{path}: {e}") from e


@dataclass(frozen=True)
class BitLinearCall:
    """One BitLinear a token step needs: float input ``x`` (K,) times matrix ``name``."""

    name: str
    x: np.ndarray
    matrix: Matrix


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _silu(v: np.ndarray) -> np.ndarray:
    return v * _sigmoid(v)


StepResult = tuple[np.ndarray, list[np.ndarray]]


def token_step(model: TinyModel, token: int, state: list[np.ndarray]
               ) -> Generator[BitLinearCall, np.ndarray, StepResult]:
    """One token through the model: yields the BitLinear calls, returns (logits, new state)."""
    cfg = model.config
    if not 0 <= token < cfg.vocab:
        raise ValueError(f"token {token} outside the vocabulary 0..{cfg.vocab - 1}")
    d = cfg.d
    x = model.weights["embed"][token].astype(np.float64)
    new_state = []
    for n in range(cfg.layers):
        p = f"layers.{n}."
        cfg_out = yield BitLinearCall(p + "mlgru.cfg", rms_norm(x, eps=RMS_EPS),
                                      model.matrices[p + "mlgru.cfg"])
        c, f, g = _silu(cfg_out[:d]), _sigmoid(cfg_out[d:2 * d]), _sigmoid(cfg_out[2 * d:])
        h = f * state[n] + (1.0 - f) * c
        new_state.append(h)
        x = x + (yield BitLinearCall(p + "mlgru.o", g * h, model.matrices[p + "mlgru.o"]))
        gu = yield BitLinearCall(p + "glu.gate_up", rms_norm(x, eps=RMS_EPS),
                                 model.matrices[p + "glu.gate_up"])
        hidden = _silu(gu[:cfg.inter]) * gu[cfg.inter:]
        x = x + (yield BitLinearCall(p + "glu.down", hidden, model.matrices[p + "glu.down"]))
    logits = yield BitLinearCall("lm_head", rms_norm(x, eps=RMS_EPS), model.matrices["lm_head"])
    return logits, new_state


Backend = Callable[[BitLinearCall], np.ndarray]


@dataclass
class IntegerBackend:
    """BitLinear in the hardware's arithmetic (:class:`FixedBitLinear`); records every
    device-side result (row sums and ``D``) for comparison with an RTL run."""

    arith: FixedBitLinear = field(default_factory=FixedBitLinear)
    trace: list[tuple[str, np.ndarray, int]] = field(default_factory=list)

    def __call__(self, call: BitLinearCall) -> np.ndarray:
        m = self.arith.mantissas(call.x)
        acc, scale = self.arith.device(m, call.matrix.w_q)
        self.trace.append((call.name, acc, scale))
        return self.arith.rescale(acc, scale, len(call.x), call.matrix.row_scales)


def float_backend(call: BitLinearCall) -> np.ndarray:
    """BitLinear as the reference implementation computes it, in float64: RMSNorm (eps
    1e-8), absmax int8 (round half to even), the same ternary weights, float rescale."""
    x_q, s_x = quantize_activations(rms_norm(call.x, eps=BITLINEAR_RMS_EPS))
    acc = ternary_matvec(call.matrix.w_q, x_q, 8, 64)
    return acc / (s_x[0] * call.matrix.row_scales)


def run_step(model: TinyModel, token: int, state: list[np.ndarray], backend: Backend
             ) -> StepResult:
    """Drive :func:`token_step` with a synchronous backend."""
    gen = token_step(model, token, state)
    try:
        call = next(gen)
        while True:
            call = gen.send(backend(call))
    except StopIteration as stop:
        return stop.value


@dataclass
class Generation:
    """A greedy run: the generated tokens and the logits of every step that predicted one."""

    tokens: list[int]
    logits: list[np.ndarray]


class Greedy:
    """Greedy decoding bookkeeping, shared by every driver of :func:`token_step`: feed the
    prompt token by token, then each predicted token, until ``n_new`` are generated."""

    def __init__(self, prompt: Sequence[int], n_new: int) -> None:
        if not prompt:
            raise ValueError("the prompt needs at least one token")
        if n_new < 1:
            raise ValueError(f"n_new must be at least 1, got {n_new}")
        self.n_new = n_new
        self.feed = list(prompt)
        self.result = Generation([], [])

    @property
    def done(self) -> bool:
        return len(self.result.tokens) >= self.n_new

    def next_token(self) -> int:
        """The token the next step consumes."""
        return self.feed[0]

    def observe(self, logits: np.ndarray) -> None:
        """Record a finished step; once the prompt is consumed, it predicts a token."""
        self.feed.pop(0)
        if not self.feed:
            self.result.logits.append(logits)
            self.result.tokens.append(int(np.argmax(logits)))
            self.feed.append(self.result.tokens[-1])


def generate(model: TinyModel, prompt: Sequence[int], n_new: int, backend: Backend
             ) -> Generation:
    """Greedy generation of ``n_new`` tokens after ``prompt`` with a synchronous backend."""
    greedy = Greedy(prompt, n_new)
    state = model.init_state()
    while not greedy.done:
        logits, state = run_step(model, greedy.next_token(), state, backend)
        greedy.observe(logits)
    return greedy.result


@dataclass(frozen=True)
class Deviation:
    """Integer pipeline vs float reference on the same weights, teacher-forced on the
    integer run's tokens (so every step sees the same input)."""

    steps: int
    max_abs_logit: float  #: largest |logit difference|
    rel_rms_logit: float  #: RMS of the differences / RMS of the float logits
    argmax_agree: float  #: fraction of steps whose argmax agrees
    tokens_equal: bool  #: free-running greedy generations identical


def deviation(model: TinyModel, prompt: Sequence[int], n_new: int,
              arith: FixedBitLinear | None = None) -> Deviation:
    """Measure the integer pipeline's deviation from the float reference."""
    ints = generate(model, prompt, n_new, IntegerBackend(arith or FixedBitLinear()))
    floats = generate(model, prompt, n_new, float_backend)
    # teacher-forced float logits along the integer run's tokens
    state_f = model.init_state()
    feed = list(prompt) + ints.tokens[:-1]
    forced = []
    for pos, tok in enumerate(feed):
        logits, state_f = run_step(model, tok, state_f, float_backend)
        if pos >= len(prompt) - 1:
            forced.append(logits)
    diff = np.stack(ints.logits) - np.stack(forced)
    ref = np.stack(forced)
    agree = np.mean([int(np.argmax(a)) == int(np.argmax(b))
                     for a, b in zip(ints.logits, forced, strict=True)])
    return Deviation(len(forced), float(np.abs(diff).max()),
                     float(np.sqrt(np.mean(diff ** 2)) / np.sqrt(np.mean(ref ** 2))),
                     float(agree), ints.tokens == floats.tokens)
