"""HGRN-Bit in JAX for quantisation-aware training, as the released code trains it.

The parameters are a flat ``dict`` keyed by the released checkpoint's tensor names
(``model.layers.0.attn.i_proj.weight``, ...), so the trained pytree *is* the
``model.safetensors`` content: no renaming step between training and shipping.

What is computed (``ridgerchu/matmulfreellm``, ``mmfreelm/models/hgrn_bit/modeling_hgrn_bit.py``,
``mmfreelm/layers/hgrn_bit.py``, ``mmfreelm/ops/fusedbitnet.py``; see
``shared/reference/hgrn-bit.md`` in the project notes):

* **BitLinear** (``FusedBitLinear``): ``x_hat = x / sqrt(mean(x^2) + 1e-6) * norm.weight``;
  per-token absmax int8 of ``x_hat`` (``127 / max(max|x_hat|, 1e-5)``, rounded half away from
  zero as ``tl.math.round`` does, clamped to [-128, 127]); per-matrix absmean ternary weights
  (``1 / max(mean|W|, 1e-5)``, rounded half to even as ``torch.round`` does, clipped to
  [-1, 1]); output ``x_q . W_q^T`` after de-quantising both.
* **Straight-through estimator**: the forward pass uses the de-quantised values, the backward
  pass treats both quantisers as the identity (``x + stop_gradient(q(x) - x)``), and the
  quantiser scales carry no gradient. This is the ``.detach()`` form of ``ops/bitnet.py`` and
  gives the same gradients as the fused kernel's hand-written backward (input gradient through
  the de-quantised ternary weights, weight gradient from the de-quantised int8 activations,
  RMSNorm backward through the unquantised ``x_hat``).
* **Block**: ``attn_norm``; ``i, f, g`` projections; ``f = sigmoid(f)``, lower-bounded for
  layers > 0 by ``cumsum(softmax(lower_bounds, 0), 0) - row 0``; ``i = silu(i) * (1 - f)``;
  ``h_t = f_t * h_(t-1) + i_t`` per channel; ``o = RMSNorm(g; g_norm.weight) * silu(h)``;
  residual ``o_proj``; ``mlp_norm``; one ``gate_proj`` (rows ``[:I]`` gate, ``[I:]`` up, one
  absmean scale); ``down_proj(silu(gate) * up)``; residual. Then ``model.norm`` and the
  ``lm_head`` BitLinear. All RMSNorms outside BitLinears use ``rms_norm_eps``.

Everything is float32, the released code's training dtype on CPU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

#: The fused BitLinear kernel's RMSNorm eps (``layer_norm_linear_quant_fn`` default; the
#: module's own ``eps=1e-8`` is never passed to it).
BITLINEAR_EPS = 1e-6


@dataclass(frozen=True)
class HGRNBitConfig:
    """The released ``config.json`` keys that change the computation, plus the fixed ones.

    ``intermediate_size`` None follows the released rule
    ``256 * ceil(int(hidden_size * hidden_ratio * 2 / 3) / 256)``.
    """

    vocab_size: int = 512
    hidden_size: int = 128
    num_hidden_layers: int = 2
    hidden_ratio: int = 2
    intermediate_size: int | None = None
    rms_norm_eps: float = 1e-6
    initializer_range: float = 0.02
    bos_token_id: int = 1
    eos_token_id: int = 2
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def inter(self) -> int:
        if self.intermediate_size is not None:
            return self.intermediate_size
        n = int(self.hidden_size * self.hidden_ratio * 2 / 3)
        return 256 * ((n + 256 - 1) // 256)

    def to_json(self) -> dict:
        """``config.json`` with every key of the released ``HGRNBitConfig``."""
        d = asdict(self)
        d.pop("extra")
        return {
            "architectures": ["HGRNBitForCausalLM"],
            "model_type": "hgrn_bit",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "attn_mode": "fused_recurrent",
            "num_heads": 1,
            "expand_ratio": 1,
            "use_short_conv": False,
            "conv_size": 4,
            "share_conv_kernel": True,
            "use_lower_bound": True,
            "hidden_ratio": self.hidden_ratio,
            "intermediate_size": self.intermediate_size,
            "hidden_act": "swish",
            "max_position_embeddings": 2048,
            "rms_norm_eps": self.rms_norm_eps,
            "use_cache": True,
            "pad_token_id": None,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "tie_word_embeddings": False,
            "initializer_range": self.initializer_range,
            "fuse_cross_entropy": True,
            "torch_dtype": "float32",
            **self.extra,
        }


def param_shapes(cfg: HGRNBitConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of the released checkpoint layout, name -> shape, in a fixed order."""
    d, i_, v, n = cfg.hidden_size, cfg.inter, cfg.vocab_size, cfg.num_hidden_layers
    shapes: dict[str, tuple[int, ...]] = {
        "model.embeddings.weight": (v, d),
        "model.lower_bounds": (n, d),
    }
    for layer in range(n):
        p = f"model.layers.{layer}."
        shapes[p + "attn_norm.weight"] = (d,)
        for proj in "ifgo":
            shapes[p + f"attn.{proj}_proj.weight"] = (d, d)
            shapes[p + f"attn.{proj}_proj.norm.weight"] = (d,)
        shapes[p + "attn.g_norm.weight"] = (d,)
        shapes[p + "mlp_norm.weight"] = (d,)
        shapes[p + "mlp.gate_proj.weight"] = (2 * i_, d)
        shapes[p + "mlp.gate_proj.norm.weight"] = (d,)
        shapes[p + "mlp.down_proj.weight"] = (d, i_)
        shapes[p + "mlp.down_proj.norm.weight"] = (i_,)
    shapes["model.norm.weight"] = (d,)
    shapes["lm_head.weight"] = (v, d)
    shapes["lm_head.norm.weight"] = (d,)
    return shapes


def init_params(cfg: HGRNBitConfig, seed: int) -> dict[str, np.ndarray]:
    """The released initialisation, drawn from one numpy generator in name order.

    Embedding, MLP and ``lm_head`` weights ~ N(0, initializer_range) (``_init_weights``), with
    ``down_proj`` further divided by sqrt(2 L) (``rescale_prenorm_residual``); the attention
    projections are Xavier-uniform with gain 2^-2.5 (``HGRNBitAttention._initialize_weights``,
    which marks them initialised so ``_init_weights`` leaves them alone); every norm weight is
    one and ``lower_bounds`` zero.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    std = cfg.initializer_range
    for name, shape in param_shapes(cfg).items():
        if name.endswith("norm.weight"):
            w = np.ones(shape)
        elif name == "model.lower_bounds":
            w = np.zeros(shape)
        elif ".attn." in name:
            fan_out, fan_in = shape
            a = 2 ** -2.5 * math.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-a, a, shape)
        else:
            w = rng.normal(0.0, std, shape)
            if name.endswith("down_proj.weight"):
                w = w / math.sqrt(2 * cfg.num_hidden_layers)
        out[name] = w.astype(np.float32)
    return out


def _round_half_away(x: jax.Array) -> jax.Array:
    return jnp.sign(x) * jnp.floor(jnp.abs(x) + 0.5)


def rms_norm(x: jax.Array, weight: jax.Array, eps: float) -> jax.Array:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last axis."""
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def quant_activations(x: jax.Array) -> jax.Array:
    """Per-token absmax int8, de-quantised (forward value of the released quantiser)."""
    scale = 127.0 / jnp.maximum(jnp.max(jnp.abs(x), axis=-1, keepdims=True), 1e-5)
    return jnp.clip(_round_half_away(x * scale), -128, 127) / scale


def quant_weights(w: jax.Array) -> jax.Array:
    """Per-matrix absmean ternary, de-quantised (``weight_quant``)."""
    scale = 1.0 / jnp.maximum(jnp.mean(jnp.abs(w)), 1e-5)
    return jnp.clip(jnp.round(w * scale), -1, 1) / scale


def _ste(x: jax.Array, q: jax.Array) -> jax.Array:
    return x + jax.lax.stop_gradient(q - x)


def bitlinear(x: jax.Array, weight: jax.Array, norm_weight: jax.Array) -> jax.Array:
    """The released BitLinear forward with straight-through gradients (see module doc)."""
    x_hat = rms_norm(x, norm_weight, BITLINEAR_EPS)
    x_q = _ste(x_hat, quant_activations(x_hat))
    w_q = _ste(weight, quant_weights(weight))
    return x_q @ w_q.T


def lower_bounds(raw: jax.Array) -> jax.Array:
    """``cumsum(softmax(raw, 0), 0) - softmax(raw, 0)[0]``: row 0 is exactly zero."""
    p = jax.nn.softmax(raw, axis=0)
    return jnp.cumsum(p, axis=0) - p[0]


def _scan_hgrn(f: jax.Array, i: jax.Array, h0: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``h_t = f_t * h_(t-1) + i_t`` over axis 1 of (batch, time, d); returns (all h, last h)."""
    def step(h: jax.Array, fi: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        h = fi[0] * h + fi[1]
        return h, h
    last, hs = jax.lax.scan(step, h0, (jnp.swapaxes(f, 0, 1), jnp.swapaxes(i, 0, 1)))
    return jnp.swapaxes(hs, 0, 1), last


def forward(params: dict[str, jax.Array], ids: jax.Array, cfg: HGRNBitConfig,
            state: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Logits (batch, time, vocab) of token ids (batch, time), and the final recurrent states.

    ``state`` (layers, batch, d) continues from earlier tokens (zero when None), as the
    released recurrent cache does; it is returned updated.
    """
    eps = cfg.rms_norm_eps
    x = params["model.embeddings.weight"][ids]
    lb = lower_bounds(params["model.lower_bounds"])
    if state is None:
        state = jnp.zeros((cfg.num_hidden_layers, ids.shape[0], cfg.hidden_size), x.dtype)
    new_state = []
    for layer in range(cfg.num_hidden_layers):
        p = f"model.layers.{layer}."
        h = rms_norm(x, params[p + "attn_norm.weight"], eps)

        def proj(name: str, v: jax.Array, p: str = p) -> jax.Array:
            return bitlinear(v, params[p + name + ".weight"], params[p + name + ".norm.weight"])

        i = proj("attn.i_proj", h)
        f = jax.nn.sigmoid(proj("attn.f_proj", h))
        g = proj("attn.g_proj", h)
        if layer > 0:
            f = lb[layer] + (1 - lb[layer]) * f
        i = jax.nn.silu(i) * (1 - f)
        hs, last = _scan_hgrn(f, i, state[layer])
        new_state.append(last)
        o = rms_norm(g, params[p + "attn.g_norm.weight"], eps) * jax.nn.silu(hs)
        x = x + proj("attn.o_proj", o)
        h = rms_norm(x, params[p + "mlp_norm.weight"], eps)
        gate, up = jnp.split(proj("mlp.gate_proj", h), 2, axis=-1)
        x = x + proj("mlp.down_proj", jax.nn.silu(gate) * up)
    x = rms_norm(x, params["model.norm.weight"], eps)
    logits = bitlinear(x, params["lm_head.weight"], params["lm_head.norm.weight"])
    return logits, jnp.stack(new_state)


def token_nll(params: dict[str, jax.Array], ids: jax.Array, cfg: HGRNBitConfig) -> jax.Array:
    """Negative log-likelihood (nats) of ``ids[:, 1:]`` given the prefix, shape (batch, time-1)."""
    logits, _ = forward(params, ids[:, :-1], cfg)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1)[..., 0]
