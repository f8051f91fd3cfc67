"""HGRN-Bit, the released MatMul-free LM, token by token: float reference and integer pipeline.

The model is the one the released checkpoints (``ridger/MMfreeLM-370M``, ``-1.3B``, ``-2.7B``)
need, as the public code ``ridgerchu/matmulfreellm`` computes it
(``mmfreelm/models/hgrn_bit/modeling_hgrn_bit.py``, ``mmfreelm/layers/hgrn_bit.py``,
``mmfreelm/ops/fusedbitnet.py``, ``mmfreelm/modules/fused_norm_gate.py``,
``mmfreelm/ops/hgrn/recurrent_fuse.py``; summary in ``../shared/reference/hgrn-bit.md``).
One token with the recurrent state ``s`` (one ``d``-vector per layer), in float64::

    x = embeddings[token]
    for layer l:
        h = rms_norm(x) * attn_norm                         eps = config.rms_norm_eps
        i, f, g = i_proj(h), f_proj(h), g_proj(h)           three BitLinears
        f = sigmoid(f)
        if use_lower_bound and l > 0: f = lb[l] + (1 - lb[l]) * f
        s[l] = f * s[l] + silu(i) * (1 - f)                 swiglu(i, 1 - f); the recurrence
        x = x + o_proj(rms_norm(g) * g_norm * silu(s[l]))   FusedRMSNormSwishGate(g, s)
        h = rms_norm(x) * mlp_norm
        gate, up = split(gate_proj(h))                      ONE matrix (2I x d), one scale
        x = x + down_proj(silu(gate) * up)
    logits = lm_head(rms_norm(x) * norm)

with ``lb = cumsum(softmax(lower_bounds, axis 0), axis 0) - that softmax's row 0``. Every
projection is a ``FusedBitLinear`` with its own RMSNorm weight (:class:`BitLinearWeights`):
``6 L + 1`` calls per token, in the order of :meth:`HGRNBitConfig.bitlinears` (i, f, g, o,
gate_proj, down_proj per layer, then lm_head).

**BitLinear** (``layer_norm_linear_quant_fn``, the released forward): ``rstd`` from the
unweighted input with eps **1e-6** (the function's default; the module's own 1e-8 is not
passed to it, and ``config.rms_norm_eps`` does not reach it either), absmax int8 of
``x * rstd * norm_weight`` with ``tl.math.round`` (**half away from zero**), ternary weights
``round_half_even(W / mean|W|)`` clipped to [-1, 1] with one absmean scale per matrix, output
``(q . W_q) / (s_x * s_w)`` (:func:`float_bitlinear`). Ternary codes and scales are computed
once, at load (:func:`quantise_ternary`), in float64 from the stored values; the released
code computes ``mean|W|`` in the dtype it runs in (fp32, or fp16 after ``.half()``), so a
weight lying within that precision of a rounding boundary can take the other code there.

**A token step is a generator** (:func:`token_step`): it yields each BitLinear it needs as a
:class:`BitLinearCall` and receives the float output back, so the host-side element-wise work
(float64) is the same code whichever backend evaluates the BitLinears:
:func:`float_bitlinear` (the released arithmetic in float64: the float reference),
:class:`IntegerBitLinear` (the hardware's fixed-point front end with the norm weight and the
integer ternary product: :class:`mmfree.golden.quantiser.NormBitLinear`), or an RTL
simulation driven by a testbench. An RTL run gives bit-identical logits exactly when every
integer it returns equals :meth:`IntegerBitLinear.device`'s.

The whole token in fixed point (the element-wise work in integers too, the token engine's
contract) is :mod:`mmfree.golden.hgrn_fixed`; it uses this module's weights and config.

**Config** (:class:`HGRNBitConfig`): the released ``config.json`` keys. Configurations the
released code can build but this model cannot run (``use_short_conv``, ``num_heads`` or
``expand_ratio`` other than 1, ``attn_mode`` other than ``fused_recurrent``) are rejected,
as are unknown ``model_type`` and bad values, with the key named. Keys the computation does
not use (``max_position_embeddings``, ``initializer_range``, ``torch_dtype`` ...) are ignored.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .quantiser import NormBitLinear, ternary_product

MODEL_TYPE = "hgrn_bit"
BITLINEAR_EPS = 1e-6  #: eps of every FusedBitLinear's RMSNorm (``layer_norm_linear_quant_fn``)
SCALE_FLOOR = 1e-5  #: floor of ``max|y|`` and of ``mean|W|`` in the released quantisers
Q_MAX = 127


class ConfigError(ValueError):
    """A ``config.json`` this model cannot run; the message names the key."""


# --- configuration -------------------------------------------------------------------------------


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)
            and math.isfinite(float(v)))



def mlp_width(hidden_size: int, hidden_ratio: float = 4) -> int:
    """The released MLP width ``I = 256 * ceil(int(hidden_size * hidden_ratio * 2 / 3) / 256)``
    (``intermediate_size`` null)."""
    n = int(hidden_size * hidden_ratio * 2 / 3)
    return 256 * ((n + 256 - 1) // 256)

@dataclass(frozen=True)
class HGRNBitConfig:
    """The released ``HGRNBitConfig`` keys this model uses, with the released defaults.

    ``intermediate_size`` ``None`` means the released formula
    ``256 * ceil(int(hidden_size * hidden_ratio * 2 / 3) / 256)`` (:attr:`intermediate`)."""

    vocab_size: int = 32000
    hidden_size: int = 2048
    num_hidden_layers: int = 24
    hidden_ratio: int | float | None = 4
    intermediate_size: int | None = None
    rms_norm_eps: float = 1e-6
    use_lower_bound: bool = True
    tie_word_embeddings: bool = False
    hidden_act: str = "swish"
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    pad_token_id: int | None = None

    def __post_init__(self) -> None:
        for key in ("vocab_size", "hidden_size", "num_hidden_layers"):
            value = getattr(self, key)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, got {value!r}")
        if self.hidden_ratio is not None and (not _is_number(self.hidden_ratio)
                                              or self.hidden_ratio <= 0):
            raise ConfigError(f"hidden_ratio must be a positive number or null, "
                              f"got {self.hidden_ratio!r}")
        if self.intermediate_size is not None and (not _is_int(self.intermediate_size)
                                                   or self.intermediate_size < 1):
            raise ConfigError(f"intermediate_size must be a positive integer or null, "
                              f"got {self.intermediate_size!r}")
        if self.intermediate < 1:
            raise ConfigError(f"intermediate_size: the released formula gives "
                              f"{self.intermediate} for hidden_size {self.hidden_size} and "
                              f"hidden_ratio {self.hidden_ratio}")
        if not _is_number(self.rms_norm_eps) or not 0 < self.rms_norm_eps < 1:
            raise ConfigError(f"rms_norm_eps must be a number in (0, 1), "
                              f"got {self.rms_norm_eps!r}")
        for key in ("use_lower_bound", "tie_word_embeddings"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        if self.hidden_act not in ("swish", "silu"):
            raise ConfigError(f"hidden_act {self.hidden_act!r} is not supported: the released "
                              "HGRN-Bit MLP computes swiglu (swish / silu)")
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(self, key)
            if value is not None and (not _is_int(value) or not 0 <= value < self.vocab_size):
                raise ConfigError(f"{key} must be null or a token id in 0..{self.vocab_size - 1}"
                                  f", got {value!r}")

    @property
    def intermediate(self) -> int:
        """``I``, the MLP width (``gate_proj`` has ``2 I`` rows)."""
        if self.intermediate_size is not None:
            return self.intermediate_size
        return mlp_width(self.hidden_size, 4 if self.hidden_ratio is None else self.hidden_ratio)

    # The keys of the released config this model reads, and what it requires of the rest.
    _FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "hidden_ratio",
               "intermediate_size", "rms_norm_eps", "use_lower_bound", "tie_word_embeddings",
               "hidden_act", "bos_token_id", "eos_token_id", "pad_token_id")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HGRNBitConfig:
        """Validate a parsed ``config.json``; a missing key takes the released default."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"the config must be a JSON object, got {type(d).__name__}")
        if "model_type" not in d:
            raise ConfigError(f"model_type is missing (expected {MODEL_TYPE!r})")
        if d["model_type"] != MODEL_TYPE:
            raise ConfigError(f"model_type {d['model_type']!r} is not supported (expected "
                              f"{MODEL_TYPE!r})")
        if d.get("use_short_conv", False) is not False:
            raise ConfigError(f"use_short_conv {d['use_short_conv']!r} is not supported "
                              "(only false: no short convolution)")
        for key in ("num_heads", "expand_ratio"):
            value = d.get(key, 1)
            if not _is_int(value) or value != 1:
                raise ConfigError(f"{key} {value!r} is not supported (only 1)")
        if d.get("attn_mode", "fused_recurrent") != "fused_recurrent":
            raise ConfigError(f"attn_mode {d['attn_mode']!r} is not supported "
                              "(only 'fused_recurrent', as the released layer asserts)")
        return cls(**{k: d[k] for k in cls._FIELDS if k in d})

    def to_dict(self) -> dict[str, Any]:
        """The released ``config.json`` keys for this configuration."""
        return {"architectures": ["HGRNBitForCausalLM"], "model_type": MODEL_TYPE,
                "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
                "num_hidden_layers": self.num_hidden_layers, "attn_mode": "fused_recurrent",
                "num_heads": 1, "expand_ratio": 1, "use_short_conv": False, "conv_size": 4,
                "share_conv_kernel": True, "use_lower_bound": self.use_lower_bound,
                "hidden_ratio": self.hidden_ratio, "intermediate_size": self.intermediate_size,
                "hidden_act": self.hidden_act, "max_position_embeddings": 2048,
                "rms_norm_eps": self.rms_norm_eps, "use_cache": True,
                "pad_token_id": self.pad_token_id, "bos_token_id": self.bos_token_id,
                "eos_token_id": self.eos_token_id,
                "tie_word_embeddings": self.tie_word_embeddings, "initializer_range": 0.02,
                "fuse_cross_entropy": True}

    def bitlinears(self) -> list[tuple[str, int, int]]:
        """The BitLinear calls of one token, in order: (module name, rows M, inputs K)."""
        d, inter = self.hidden_size, self.intermediate
        out = []
        for n in range(self.num_hidden_layers):
            p = f"model.layers.{n}."
            out += [(p + f"attn.{x}_proj", d, d) for x in "ifgo"]
            out += [(p + "mlp.gate_proj", 2 * inter, d), (p + "mlp.down_proj", d, inter)]
        return [*out, ("lm_head", self.vocab_size, d)]

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor of a checkpoint, by its official name, and its shape."""
        d, n_layers = self.hidden_size, self.num_hidden_layers
        out: dict[str, tuple[int, ...]] = {"model.embeddings.weight": (self.vocab_size, d)}
        if self.use_lower_bound:
            out["model.lower_bounds"] = (n_layers, d)
        for n in range(n_layers):
            p = f"model.layers.{n}."
            out[p + "attn_norm.weight"] = (d,)
            out[p + "attn.g_norm.weight"] = (d,)
            out[p + "mlp_norm.weight"] = (d,)
        out["model.norm.weight"] = (d,)
        for name, m, k in self.bitlinears():
            if not (name == "lm_head" and self.tie_word_embeddings):
                out[name + ".weight"] = (m, k)
            out[name + ".norm.weight"] = (k,)
        return out

    def parameters(self) -> int:
        """Number of stored parameters."""
        return sum(math.prod(s) for s in self.tensor_shapes().values())


# --- weights -------------------------------------------------------------------------------------


class RowSource(Protocol):
    """A 2-D float array, or anything that slices like one (a memory-mapped bf16 tensor)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, index: Any) -> np.ndarray: ...


_QUANT_CHUNK = 1 << 22  #: elements per block when quantising a matrix


def _float_block(w: RowSource, r0: int, r1: int) -> np.ndarray:
    blk = np.asarray(w[r0:r1])
    return blk if blk.dtype in (np.float32, np.float64) else blk.astype(np.float32)


def quantise_ternary(w: RowSource) -> tuple[np.ndarray, float]:
    """The released absmean quantisation of one matrix: int8 codes in {-1, 0, 1} and the
    scale ``s_w = 1 / max(mean|W|, 1e-5)`` (``W ~= codes / s_w``); ``mean|W|`` accumulated in
    float64, ``W * s_w`` in float64, rounded half to even (``torch.round``) and clipped, i.e.
    ``codes = sign(W)`` where ``|W * s_w| > 0.5``, else 0. Works through the rows in blocks,
    so a memory-mapped tensor is read twice but never held whole. Raises ``ValueError`` if
    it holds NaN or infinity."""
    rows, cols = w.shape
    step = max(1, _QUANT_CHUNK // max(cols, 1))
    total = 0.0
    for r0 in range(0, rows, step):
        total += float(np.abs(_float_block(w, r0, r0 + step)).sum(dtype=np.float64))
    if not math.isfinite(total):
        raise ValueError("holds NaN or infinity")
    scale = 1.0 / max(total / (rows * cols), SCALE_FLOOR)
    codes = np.empty((rows, cols), dtype=np.int8)
    for r0 in range(0, rows, step):
        v = _float_block(w, r0, r0 + step) * np.float64(scale)  # float64 products
        codes[r0:r0 + step] = (v > 0.5).view(np.int8) - (v < -0.5).view(np.int8)
    return codes, scale


@dataclass(frozen=True, eq=False)
class BitLinearWeights:
    """One BitLinear: ternary ``codes`` (M x K, int8), the matrix's absmean scale ``scale``
    (``s_w``, one per matrix) and its RMSNorm weight ``norm`` (K, float64). Compared and
    hashed by identity (backends cache per-matrix data keyed on it)."""

    codes: np.ndarray
    scale: float
    norm: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape


def lower_bound_table(raw: npt.ArrayLike) -> np.ndarray:
    """``cumsum(softmax(raw, axis 0), axis 0) - softmax(raw)[0]`` (layers x d): the forget
    gates' lower bounds; row 0 is zero."""
    r = np.asarray(raw, dtype=np.float64)
    e = np.exp(r - r.max(axis=0, keepdims=True))
    sm = e / e.sum(axis=0, keepdims=True)
    return np.cumsum(sm, axis=0) - sm[0]


def _vector(name: str, arr: Any, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(arr[...] if not isinstance(arr, np.ndarray) else arr, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name}: shape {a.shape}, the config needs {shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: holds NaN or infinity")
    return a


class HGRNBitModel:
    """HGRN-Bit weights ready to run: float embeddings (row by row, possibly memory-mapped),
    float64 norm weights and lower bounds, and every BitLinear as int8 codes + one scale.

    Build it with :meth:`from_tensors` (float tensors by official name; this is what the
    checkpoint loader uses) or :meth:`random`."""

    def __init__(self, config: HGRNBitConfig, embeddings: RowSource,
                 norms: Mapping[str, np.ndarray], bitlinears: Mapping[str, BitLinearWeights],
                 lower_bounds: np.ndarray | None) -> None:
        self.config = config
        self.embeddings = embeddings
        self.norms = dict(norms)
        self.bitlinears = dict(bitlinears)
        self.lower_bounds = lower_bounds

    @classmethod
    def from_tensors(cls, config: HGRNBitConfig, tensors: Mapping[str, RowSource],
                     progress: Any = None) -> HGRNBitModel:
        """Validate float tensors keyed by official name (missing, extra or mis-shaped ones
        raise ``ValueError`` naming the key) and quantise the BitLinears. ``progress``, if
        given, is called with (done, total) after each matrix."""
        want = config.tensor_shapes()
        missing = [k for k in want if k not in tensors]
        extra = sorted(k for k in tensors if k not in want
                       and not (k == "lm_head.weight" and config.tie_word_embeddings))
        if missing:
            raise ValueError(f"missing tensor {missing[0]}" + (
                f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        if extra:
            raise ValueError(f"unexpected tensor {extra[0]}" + (
                f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
        for name, shape in want.items():
            if tuple(tensors[name].shape) != shape:
                raise ValueError(f"{name}: shape {tuple(tensors[name].shape)}, the config "
                                 f"needs {shape}")
        emb = tensors["model.embeddings.weight"]
        norms = {}
        for n in range(config.num_hidden_layers):
            for part in ("attn_norm", "attn.g_norm", "mlp_norm"):
                key = f"model.layers.{n}.{part}.weight"
                norms[key[:-len(".weight")]] = _vector(key, tensors[key], want[key])
        norms["model.norm"] = _vector("model.norm.weight", tensors["model.norm.weight"],
                                      want["model.norm.weight"])
        lb = None
        if config.use_lower_bound:
            lb = lower_bound_table(_vector("model.lower_bounds", tensors["model.lower_bounds"],
                                           want["model.lower_bounds"]))
        bitlinears = {}
        calls = config.bitlinears()
        for done, (name, _m, k) in enumerate(calls, 1):
            key = "model.embeddings.weight" if (name == "lm_head" and
                                                config.tie_word_embeddings) else name + ".weight"
            try:
                codes, scale = quantise_ternary(tensors[key])
            except ValueError as e:
                raise ValueError(f"{key}: {e}") from None
            norm = _vector(name + ".norm.weight", tensors[name + ".norm.weight"], (k,))
            bitlinears[name] = BitLinearWeights(codes, scale, norm)
            if progress is not None:
                progress(done, len(calls))
        return cls(config, emb, norms, bitlinears, lb)

    @classmethod
    def random(cls, config: HGRNBitConfig, seed: int) -> HGRNBitModel:
        """A model with :func:`random_tensors` weights."""
        return cls.from_tensors(config, dict(random_tensors(config, seed)))

    def embed(self, token: int) -> np.ndarray:
        """The float64 embedding of ``token``."""
        if not 0 <= token < self.config.vocab_size:
            raise ValueError(f"token {token} outside the vocabulary "
                             f"0..{self.config.vocab_size - 1}")
        row = np.asarray(self.embeddings[int(token)], dtype=np.float64)
        if not np.all(np.isfinite(row)):
            raise ValueError(f"model.embeddings.weight: row {token} holds NaN or infinity")
        return row

    def init_state(self) -> list[np.ndarray]:
        """The recurrent state: one zero vector per layer."""
        return [np.zeros(self.config.hidden_size) for _ in range(self.config.num_hidden_layers)]


def random_tensor(config: HGRNBitConfig, seed: int, name: str) -> np.ndarray:
    """One deterministic random float32 tensor by official name. Each tensor has its own
    generator, derived from ``seed`` and the tensor's position in
    :meth:`HGRNBitConfig.tensor_shapes`, so tensors can be drawn one at a time, in any
    order (a 2.7B model never needs to be in memory whole).

    Embeddings and lower bounds N(0, 1); projections N(0, 1/fan_in); every RMSNorm weight
    (block norms, g_norm, the final norm and each BitLinear's) N(1, 0.25)."""
    shapes = config.tensor_shapes()
    if name not in shapes:
        raise KeyError(name)
    index = list(shapes).index(name)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    shape = shapes[name]
    if len(shape) == 1:
        return rng.normal(1.0, 0.25, shape).astype(np.float32)
    arr = rng.standard_normal(shape, dtype=np.float32)
    if name not in ("model.embeddings.weight", "model.lower_bounds"):
        arr *= np.float32(1.0 / math.sqrt(shape[1]))
    return arr


def random_tensors(config: HGRNBitConfig, seed: int) -> Iterator[tuple[str, np.ndarray]]:
    """:func:`random_tensor` for every tensor, in checkpoint order."""
    for name in config.tensor_shapes():
        yield name, random_tensor(config, seed, name)


# --- the token step ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BitLinearCall:
    """One BitLinear a token step needs: float input ``x`` (K) through module ``name``."""

    name: str
    x: np.ndarray
    weights: BitLinearWeights


def sigmoid(v: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for large ``|v|``."""
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def silu(v: np.ndarray) -> np.ndarray:
    """``v * sigmoid(v)`` (swish)."""
    return v * sigmoid(v)


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """``x / sqrt(mean(x**2) + eps) * weight``, in float64."""
    return x / np.sqrt(np.mean(x * x) + eps) * weight


StepResult = tuple[np.ndarray, list[np.ndarray]]


def token_step(model: HGRNBitModel, token: int, state: list[np.ndarray]
               ) -> Generator[BitLinearCall, np.ndarray, StepResult]:
    """One token through the model: yields the ``6 L + 1`` BitLinear calls and receives
    their float outputs; returns (logits, new state). ``state`` is not modified."""
    cfg = model.config
    eps, inter = cfg.rms_norm_eps, cfg.intermediate
    bl, norms = model.bitlinears, model.norms
    x = model.embed(token)
    new_state = []
    for n in range(cfg.num_hidden_layers):
        p = f"model.layers.{n}."
        h = rms_norm(x, norms[p + "attn_norm"], eps)
        i = yield BitLinearCall(p + "attn.i_proj", h, bl[p + "attn.i_proj"])
        f = yield BitLinearCall(p + "attn.f_proj", h, bl[p + "attn.f_proj"])
        g = yield BitLinearCall(p + "attn.g_proj", h, bl[p + "attn.g_proj"])
        f = sigmoid(f)
        if model.lower_bounds is not None and n > 0:
            lb = model.lower_bounds[n]
            f = lb + (1.0 - lb) * f
        s = f * state[n] + silu(i) * (1.0 - f)
        new_state.append(s)
        o = rms_norm(g, norms[p + "attn.g_norm"], eps) * silu(s)
        x = x + (yield BitLinearCall(p + "attn.o_proj", o, bl[p + "attn.o_proj"]))
        h = rms_norm(x, norms[p + "mlp_norm"], eps)
        y = yield BitLinearCall(p + "mlp.gate_proj", h, bl[p + "mlp.gate_proj"])
        x = x + (yield BitLinearCall(p + "mlp.down_proj", silu(y[:inter]) * y[inter:],
                                     bl[p + "mlp.down_proj"]))
    h = rms_norm(x, norms["model.norm"], eps)
    logits = yield BitLinearCall("lm_head", h, bl["lm_head"])
    return logits, new_state


def run_step(model: HGRNBitModel, token: int, state: list[np.ndarray],
             backend: Any) -> StepResult:
    """Drive :func:`token_step` with a synchronous backend (``call -> float output``)."""
    gen = token_step(model, token, state)
    try:
        call = next(gen)
        while True:
            call = gen.send(backend(call))
    except StopIteration as stop:
        return stop.value


# --- BitLinear backends --------------------------------------------------------------------------


def round_half_away(v: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, ties away from zero (C ``round``, ``tl.math.round``)."""
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def float_bitlinear(call: BitLinearCall, eps: float = BITLINEAR_EPS) -> np.ndarray:
    """The released ``FusedBitLinear`` forward in float64: RMSNorm with eps 1e-6 and the norm
    weight, absmax int8 (half away from zero), the ternary codes, ``acc / (s_x s_w)``.
    (``eps`` is a parameter only to measure what dropping it costs.)"""
    x, wts = call.x, call.weights
    y = x / np.sqrt(np.mean(x * x) + eps) * wts.norm
    s_x = Q_MAX / max(float(np.max(np.abs(y))), SCALE_FLOOR)
    q = np.clip(round_half_away(y * s_x), -128, 127)
    return ternary_product(wts.codes, q).astype(np.float64) / (s_x * wts.scale)


@dataclass
class IntegerBitLinear:
    """BitLinear in the hardware's arithmetic (:class:`~mmfree.golden.quantiser.NormBitLinear`):
    block-float input, the weighted fixed-point quantiser, the integer ternary product; the
    rescale on the host. Each norm weight is converted once, on first use (a pure function of
    the checkpoint: the same as converting all of them at load). With ``trace`` set, every
    device result (name, row sums, ``D``, ``E``) is recorded for comparison with an RTL run."""

    arith: NormBitLinear = field(default_factory=NormBitLinear)
    trace: list[tuple[str, np.ndarray, int, int]] | None = None
    _norms: weakref.WeakKeyDictionary[BitLinearWeights, tuple[np.ndarray, int]] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False)

    def norm_weight(self, call: BitLinearCall) -> tuple[np.ndarray, int]:
        """The call's norm weight as mantissas ``v`` and exponent ``e_w`` (cached)."""
        cached = self._norms.get(call.weights)
        if cached is None:
            cached = self._norms[call.weights] = self.arith.norm_weight(call.weights.norm)
        return cached

    def device_inputs(self, call: BitLinearCall) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the device receives for a call: input mantissas ``m``, norm weight mantissas
        ``v`` and the ternary codes (M x K, int8). An RTL backend sends these, gets back the
        row sums, ``D`` and ``E``, and hands them to :meth:`rescale`."""
        return self.arith.mantissas(call.x), self.norm_weight(call)[0], call.weights.codes

    def device(self, call: BitLinearCall) -> tuple[np.ndarray, np.ndarray, int, int]:
        """The device's inputs and results: mantissas ``m``, row sums, ``D``, ``E``."""
        m, v, codes = self.device_inputs(call)
        acc, scale, exp = self.arith.device(m, v, codes)
        return m, acc, scale, exp

    def rescale(self, call: BitLinearCall, acc: np.ndarray, scale: int, exp: int
                ) -> np.ndarray:
        """The host's float output from the device's results."""
        _, weight_exp = self.norm_weight(call)
        return self.arith.rescale(acc, scale, exp, len(call.x), weight_exp, call.weights.scale)

    def __call__(self, call: BitLinearCall) -> np.ndarray:
        _, acc, scale, exp = self.device(call)
        if self.trace is not None:
            self.trace.append((call.name, acc, scale, exp))
        return self.rescale(call, acc, scale, exp)


__all__ = [
    "BITLINEAR_EPS",
    "MODEL_TYPE",
    "BitLinearCall",
    "BitLinearWeights",
    "ConfigError",
    "HGRNBitConfig",
    "HGRNBitModel",
    "IntegerBitLinear",
    "float_bitlinear",
    "lower_bound_table",
    "mlp_width",
    "quantise_ternary",
    "random_tensor",
    "random_tensors",
    "rms_norm",
    "round_half_away",
    "run_step",
    "sigmoid",
    "silu",
    "token_step",
]
