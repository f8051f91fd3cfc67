"""System-level projection: cycles, memory traffic, time, energy and power per token.

One implementation serves a single projection (:func:`project`) and the design-space sweep
(:mod:`mmfree.model.sweep`): every formula is written with numpy operations, so hardware and
workload parameters may be scalars or arrays of design points. The equations are derived in
``docs/cycle-model.md`` from the units' RTL-measured timing (:mod:`mmfree.model.cycles`),
their measured switching activity and resources (:mod:`mmfree.model.activity`) and the
device and DRAM data of :mod:`mmfree.model.devices`.

With ``product_model = "fetched"`` (every preset) the ternary products are the fetched
product's cycles (:func:`mmfree.model.cycles.fetched_product_cycles`: each core streams its
rows over its own AXI4 port, validated against the RTL) and a MatMul-free model's
element-wise work is the whole-token engine's program
(:func:`mmfree.model.cycles.engine_elementwise_cycles`); :func:`validation` says which parts
of a projection are validated against the RTL and which remain analytical.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import activity, fit
from .config import HardwareConfig, ModelConfig, Workload
from .cycles import (
    engine_elementwise_cycles,
    fetched_product_cycles,
    fetched_product_regime,
    sparse_gemm_cycles,
    tensor_gemm_cycles,
    ternary_matvec_cycles,
)
from .fit import FP16_BYTES, INT8_BITS, KV_BYTES, SPARSE_BITS_PER_WEIGHT

__all__ = ["FP16_BYTES", "INT8_BITS", "KV_BYTES", "SPARSE_BITS_PER_WEIGHT", "Op", "Projection",
           "StepResult", "elementwise_per_layer", "engine_elementwise", "hw_arrays",
           "port_figures", "project", "run_step", "step_ops", "validation"]

#: the four parts of the power, summing to the total
POWER_PARTS = ("static", "logic", "on-chip memory", "DRAM")


@dataclass
class Op:
    """One operation of a step: a ternary matrix-vector product (``vectors`` x ``m`` x
    ``k``), a tensor-core GEMM (``m`` x ``k`` x ``n``) or element-wise work (``elems``)."""

    name: str
    unit: str  #: "ternary", "tensor", "sparse" or "elementwise"
    per_layer: bool
    m: object = 0
    k: object = 0
    n: object = 0
    elems: object = 0
    weights: float = 0.0  #: weights this op reads (0 for attention and element-wise)
    macs: object = 0  #: multiply-accumulate equivalents (a ternary add counts as one)
    weight_bits: float = 0.0
    cycles: object = 0
    lane_slots: object = 0  #: issued lane or MAC slots
    weight_reads: object = 0  #: weights read from on-chip memory if resident (padding excluded)
    #: the weights stream over the cores' AXI ports inside ``cycles`` (product model
    #: "fetched"): they are DRAM traffic, never resident, and their time is in the cycles
    fetched: bool = False
    memory_bound: object = False  #: a fetched product whose ports deliver < 1 group/cycle
    source: str = "analytical"  #: what the cycles come from (see :func:`validation`)
    #: cycles the unit's lanes work (the energy's busy cycles): ``cycles`` but for a
    #: fetched product, whose cycles waiting for the ports draw no lane activity
    active_cycles: object = None

    def __post_init__(self) -> None:
        if self.active_cycles is None:
            self.active_cycles = self.cycles


def _ceil_div(a: object, b: object) -> object:
    return -(-np.asarray(a) // np.asarray(b))


def elementwise_per_layer(model: ModelConfig, context: object = 0) -> dict[str, object]:
    """Element operations per layer per token (one element through one unit pass).

    MatMul-free LM, the released HGRN-Bit block (``shared/reference/hgrn-bit.md``): an
    RMSNorm with weight is 3 passes (sum of squares, scale, weight); each of the 6 BitLinear
    calls (i, f, g, o, gate_proj, down_proj) normalises and quantises its own input (5
    passes: the RMSNorm with its weight, absmax, scale and round) and rescales its output
    (1 pass); the forget gate is a sigmoid (its lower bound, in layers after the first, is
    counted by :func:`step_ops`); ``silu(i) * (1 - f)`` is 3 passes; the recurrence
    ``f * state + i`` 2; ``g_norm(g) * silu(state)`` 5 (an RMSNorm with weight, SiLU,
    product); the GLU's ``silu(gate) * up`` 2; two residual adds.
    Transformer++: 2 RMSNorms with weight, activation quantisation of the 4 projection inputs
    (absmax, scale and round), output rescale, rotary on q and k, softmax over the context
    (3 passes per head), SwiGLU, residual adds.
    """
    d, i = model.d, model.inter
    if model.kind == "mmfree":
        return {"attn_norm, mlp_norm (RMSNorm with weight)": 2 * 3 * d,
                "BitLinear norm+quant: i, f, g, o, gate_proj": 5 * 5 * d,
                "BitLinear norm+quant: down_proj": 5 * i,
                "BitLinear output rescale": 5 * d + 2 * i,
                "forget gate sigmoid": d, "silu(i) * (1 - f)": 3 * d,
                "recurrence f * state + i": 2 * d, "g_norm(g) * silu(state)": 5 * d,
                "GLU silu(gate) * up": 2 * i, "residual adds": 2 * d}
    kv = model.kv_dim
    return {"block norms (RMSNorm with weight)": 2 * 3 * d,
            "activation quantisation": 2 * (3 * d + i),
            "output rescale": 3 * d + 2 * kv + 2 * i, "rotary (q, k)": 2 * (d + kv),
            "softmax": 3 * model.heads * np.asarray(context), "SwiGLU": 2 * i,
            "residual adds": 2 * d}


def port_figures(hw: HardwareConfig, arrays: dict | None = None) -> dict[str, object]:
    """The AXI4 port of each core (product model "fetched"): the memory latency in cycles
    (``ceil(mem_latency_ns * clock)``, at least 2, the co-simulated memory's least) and
    the port's rate in beats per cycle, ``min(1, share / (port_bits / 8 * clock))`` with
    ``share = min(one channel, all channels / cores)`` bytes per second (a core has its
    own channel while there are enough, else the channels are shared evenly), each
    channel ``dram_gbps_per_channel * dram_efficiency``."""
    a = arrays or hw_arrays(hw)
    clock = np.asarray(a["clock_mhz"], dtype=float) * 1e6
    channel = np.asarray(a["dram_gbps"], dtype=float) * 1e9 * hw.dram_efficiency.value
    cores = np.maximum(np.asarray(a["ternary_cores"]), 1)
    share = np.minimum(channel, channel * np.asarray(a["dram_channels"]) / cores)
    port = hw.port_bits / 8 * clock
    latency = np.maximum(2, np.ceil(hw.mem_latency_ns.value * 1e-9 * clock - 1e-9))
    return {"latency_cycles": latency, "rate": np.minimum(1.0, share / port),
            "share_bytes_per_s": share, "port_bytes_per_s": port}


def _hgrn_config(model: ModelConfig):  # -> HGRNBitConfig
    from ..golden.hgrn_bit import HGRNBitConfig
    return HGRNBitConfig(vocab_size=model.vocab, hidden_size=model.d,
                         num_hidden_layers=model.layers, intermediate_size=model.inter,
                         tie_word_embeddings=model.tie_embeddings)


def engine_elementwise(model: ModelConfig, lanes: int) -> dict | None:
    """The element-wise cycles of one token of ``model`` on the whole-token engine of
    ``lanes`` lanes (:func:`mmfree.model.cycles.engine_elementwise_cycles`), or ``None``
    where the engine does not apply (a Transformer++, a tied lm_head, or ``lanes`` not
    dividing the MLP width: the engine's program needs it)."""
    if model.kind != "mmfree" or model.tie_embeddings or model.inter % lanes or not (
            1 <= lanes <= 64):
        return None
    return _engine_elementwise(model.vocab, model.d, model.layers, model.inter, lanes)


_ENGINE_CACHE: dict[tuple, dict] = {}


def _engine_elementwise(vocab: int, d: int, layers: int, inter: int, lanes: int) -> dict:
    key = (vocab, d, layers, inter, lanes)
    if key not in _ENGINE_CACHE:
        model = ModelConfig("engine", "mmfree", layers, d, inter, vocab)
        _ENGINE_CACHE[key] = engine_elementwise_cycles(_hgrn_config(model), lanes)
    return _ENGINE_CACHE[key]


def step_ops(model: ModelConfig, hw: HardwareConfig, vectors: object, context: object,
             sequences: object, lm_head_vectors: object, arrays: dict) -> list[Op]:
    """The operations of one step that processes ``vectors`` token positions (``sequences``
    sequences, each with ``context`` tokens of history), on the hardware described by
    ``arrays`` (numpy-able: cores, lanes, tensor_arrays, elementwise_per_cycle).

    MatMul-free LM: 6 BitLinear calls per layer (i, f, g, o, gate_proj, down_proj) and the
    lm_head, 6L + 1 per token, each a separate product that pays the core's latency."""
    cores, lanes = arrays["ternary_cores"], arrays["lanes"]
    tarrays = arrays["tensor_arrays"]
    ew_rate = arrays["elementwise_per_cycle"]
    packed = hw.weight_bits < 2
    fetched = hw.product_model == "fetched"
    if fetched:
        if np.size(cores) != 1 or np.size(lanes) != 1:
            raise ValueError("product_model 'fetched' takes one design point (one cores and "
                             "lanes value); sweeps use 'analytical'")
        port = port_figures(hw, arrays)
    d, i = model.d, model.inter
    ops: list[Op] = []

    def ternary(name: str, m: int, k: int, n_vec: object, per_layer: bool = True) -> None:
        rows = np.asarray(n_vec) * _ceil_div(m, cores)  # rows split over the cores
        extra: dict = {}
        if fetched:
            # every vector's product streams the weights over the cores' ports (the RTL
            # takes one vector per command): FetchedProductSpec.cycles per vector
            kw = dict(lanes=int(lanes), data_width=hw.port_bits,
                      mem_latency=port["latency_cycles"], mem_rate=port["rate"],
                      outstanding=hw.outstanding, max_burst=hw.max_burst,
                      fifo_depth=hw.fifo_depth, packed=packed)
            try:
                cyc = np.asarray(n_vec) * fetched_product_cycles(
                    m, k, cores=int(cores), tree_levels_per_stage=hw.tree_levels_per_stage,
                    **kw)
            except ValueError as e:
                raise ValueError(
                    f"hardware {hw.name} (product_model 'fetched'): {e} [hardware keys: "
                    f"lanes {int(lanes)}, ternary_cores {int(cores)}, port_bits "
                    f"{hw.port_bits}, weight_bits {hw.weight_bits:g}, outstanding, max_burst, "
                    "fifo_depth; or product_model = \"analytical\"]") from None
            bound, _ = fetched_product_regime(k, rows=_ceil_div(m, cores), **kw)
            extra = dict(fetched=True, memory_bound=bound, source="fetched product",
                         active_cycles=ternary_matvec_cycles(rows, k, lanes, packed,
                                                             hw.tree_levels_per_stage))
        else:
            cyc = ternary_matvec_cycles(rows, k, lanes, packed, hw.tree_levels_per_stage)
        ops.append(Op(name, "ternary", per_layer, m=m, k=k, weights=m * k,
                      macs=np.asarray(n_vec) * m * k, weight_bits=hw.weight_bits, cycles=cyc,
                      lane_slots=rows * _ceil_div(k, lanes) * lanes * cores,
                      weight_reads=np.asarray(n_vec) * m * k, **extra))  # once per vector

    def tensor(name: str, m: object, k: int, n: int, sparse: bool, weights: float,
               per_layer: bool = True, bits: float | None = None) -> None:
        nn = _ceil_div(n, tarrays)  # output columns split over the arrays
        fn = sparse_gemm_cycles if sparse else tensor_gemm_cycles
        cyc = fn(m, k, nn, hw.dsp_pipeline)
        if bits is None:
            bits = SPARSE_BITS_PER_WEIGHT if sparse else INT8_BITS
        ops.append(Op(name, "sparse" if sparse else "tensor", per_layer, m=m, k=k, n=n,
                      weights=weights, macs=np.asarray(m) * k * n, weight_bits=bits,
                      cycles=cyc, lane_slots=(cyc * 64 * np.asarray(tarrays)),
                      weight_reads=_ceil_div(m, 4) * weights))  # once per 4-row tile of A

    def elementwise(name: str, elems: object, per_layer: bool = True) -> None:
        ops.append(Op(name, "elementwise", per_layer, elems=elems,
                      cycles=_ceil_div(elems, ew_rate)))

    if model.kind == "mmfree":
        calls = (("MLGRU i_proj", d, d), ("MLGRU f_proj", d, d), ("MLGRU g_proj", d, d),
                 ("MLGRU o_proj", d, d), ("GLU gate_proj (gate+up)", 2 * i, d),
                 ("GLU down_proj", d, i))
    else:
        kv = model.kv_dim
        calls = (("attention q,k,v", d + 2 * kv, d), ("attention o", d, d),
                 ("MLP gate+up", 2 * i, d), ("MLP down", d, i))
    for name, m, k in calls:
        if model.ternary:
            ternary(name, m, k, vectors)
        else:
            tensor(name, vectors, k, m, hw.tensor_sparse, weights=m * k)
    if model.kind == "transformer":
        # attention of each sequence over its own context, per KV head: q K^T and p V with the
        # query heads of one group (and the queries of one sequence) as the GEMM's rows
        group = model.heads // max(1, model.kv_dim // model.head_dim)
        rows = _ceil_div(vectors, sequences) * group
        kv_heads = model.kv_dim // model.head_dim
        qk = tensor_gemm_cycles(rows, model.head_dim, context, hw.dsp_pipeline)
        pv = tensor_gemm_cycles(rows, context, model.head_dim, hw.dsp_pipeline)
        cyc = _ceil_div((qk + pv) * kv_heads * np.asarray(sequences), np.maximum(tarrays, 1))
        ops.append(Op("attention scores+values", "tensor", True, cycles=cyc,
                      macs=2 * np.asarray(vectors) * np.asarray(context) * d,
                      lane_slots=cyc * 64 * np.maximum(tarrays, 1)))
    ew = sum(elementwise_per_layer(model, context).values())
    engine = engine_elementwise(model, int(np.asarray(ew_rate))) if fetched else None
    if engine is not None:
        # the whole-token engine's program (every instruction but the ternary products,
        # which are the fetched products above): its measured per-instruction cycles; the
        # element counts stay the analytical ones, for the energy
        lower = np.asarray(vectors) * 2 * d * (model.layers - 1)
        ops.append(Op("element-wise (engine program)",
                      "elementwise", True, elems=np.asarray(vectors) * ew,
                      cycles=np.asarray(vectors) * engine["per_layer"], source="engine"))
        ops.append(Op("model end (engine program)", "elementwise", False,
                      elems=lower + np.asarray(lm_head_vectors) * (8 * d + 2 * model.vocab),
                      cycles=np.asarray(lm_head_vectors) * engine["end"], source="engine"))
    else:
        elementwise("element-wise", np.asarray(vectors) * ew)
    if engine is None and model.kind == "mmfree" and model.layers > 1:
        # lb + (1 - lb) * f after layer 0
        elementwise("forget-gate lower bound", np.asarray(vectors) * 2 * d * (model.layers - 1),
                    per_layer=False)
    # model end: final norm + quant, lm_head on the last positions only, rescale, argmax
    if model.tie_embeddings:  # the fp16 embedding matrix, on the tensor arrays
        tensor("lm_head (tied, fp16)", lm_head_vectors, d, model.vocab, False,
               weights=model.vocab * d, per_layer=False, bits=8 * FP16_BYTES)
    elif model.ternary:
        ternary("lm_head", model.vocab, d, lm_head_vectors, per_layer=False)
    else:
        tensor("lm_head", lm_head_vectors, d, model.vocab, False, weights=model.vocab * d,
               per_layer=False)
    if engine is None:
        elementwise("final norm, quant, rescale, argmax",
                    np.asarray(lm_head_vectors) * (8 * d + 2 * model.vocab), per_layer=False)
    return ops


@dataclass
class StepResult:
    """One step (prefill or decode) on the hardware; arrays when sweeping."""

    ops: list[Op]
    compute_cycles: object
    compute_s: object
    dram_bytes: object
    dram_s: object
    onchip_bits: object
    onchip_s: object
    time_s: object
    binding: object  #: "compute", "DRAM" or "on-chip"
    energy_j: dict = field(default_factory=dict)  #: the four :data:`POWER_PARTS`
    energy_detail_j: dict = field(default_factory=dict)  #: what the parts are made of
    ops_count: object = 0  #: 2 x MAC-equivalent operations of the step (roofline)


def run_step(model: ModelConfig, hw: HardwareConfig, arrays: dict, vectors: object,
             context: object, sequences: object, lm_head_vectors: object) -> StepResult:
    """Cycles, traffic, time and energy of one step (see the module docstring)."""
    clock = np.asarray(arrays["clock_mhz"]) * 1e6
    ops = step_ops(model, hw, vectors, context, sequences, lm_head_vectors, arrays)
    layers = model.layers
    mult = [layers if op.per_layer else 1 for op in ops]
    busy = {u: sum(np.asarray(op.cycles) * k for op, k in zip(ops, mult, strict=True)
                   if op.unit in units)
            for u, units in (("ternary", ("ternary",)), ("tensor", ("tensor", "sparse")),
                             ("elementwise", ("elementwise",)))}
    matrix = busy["ternary"] + busy["tensor"]
    if hw.elementwise_overlap:  # the element-wise unit works beside the matrix units
        compute_cycles = np.maximum(matrix, busy["elementwise"])
    else:
        compute_cycles = matrix + busy["elementwise"]
    compute_s = compute_cycles / clock

    # weights the placement decides on (resident in SRAM or streamed once per step); the
    # fetched products' weights stream over the ports inside their cycles, per vector
    weight_bytes = sum(op.weights * op.weight_bits / 8 * k
                       for op, k in zip(ops, mult, strict=True) if not op.fetched)
    fetched_bytes = sum(np.asarray(op.weight_reads) * op.weight_bits / 8 * k
                        for op, k in zip(ops, mult, strict=True) if op.fetched)
    state_bytes = 0.0
    if model.kind == "mmfree":  # MLGRU state per sequence and layer, read and written
        state_bytes = 2 * np.asarray(sequences) * layers * model.d * FP16_BYTES
    kv_bytes = 0.0
    if model.kind == "transformer":  # KV cache: read the context, write the new entries
        kv_bytes = (np.asarray(sequences) * layers * 2 * model.kv_dim * KV_BYTES
                    * (np.asarray(context) + _ceil_div(vectors, sequences)))
    embed_bytes = np.asarray(vectors) * model.d * FP16_BYTES
    other_bytes = state_bytes + kv_bytes + embed_bytes
    dram_bw = (np.asarray(arrays["dram_channels"]) * np.asarray(arrays["dram_gbps"]) * 1e9
               * hw.dram_efficiency.value)
    # Weights the units read, per step: resident ones come from on-chip SRAM (re-read for
    # every vector, or every 4-row tile on a tensor array), the others stream from DRAM once
    # per step. Padding slots (partial lane groups, columns or rows split over several
    # units) read no weights, so more hardware never adds on-chip traffic.
    lane_bits = sum(np.asarray(op.weight_reads) * op.weight_bits * k
                    for op, k in zip(ops, mult, strict=True) if op.weights and not op.fetched)
    sram_bw = np.asarray(arrays["sram_bits_per_cycle"]) * clock
    sram = np.asarray(arrays["sram_mib"]) * 2**20
    f_max = np.minimum(1.0, sram / np.maximum(weight_bytes, 1))

    def times(f: object) -> tuple[object, object, object]:
        dram = (weight_bytes * (1 - f) + other_bytes) / dram_bw
        onchip = lane_bits * f / sram_bw
        path = np.maximum(compute_s, onchip)
        return dram, onchip, (np.maximum(path, dram) if hw.overlap else path + dram)

    # The resident fraction is chosen to minimise the step time. The time is convex and
    # piecewise linear in the fraction, so its minimum lies at an end (none, all that fits)
    # or at a kink: SRAM time = DRAM time, SRAM time = compute time, DRAM time = compute time.
    tiny = 1e-30
    w_s, lane_s = weight_bytes / dram_bw, lane_bits / sram_bw
    kinks = (((weight_bytes + other_bytes) / dram_bw) / (lane_s + w_s + tiny),
             compute_s / (lane_s + tiny),
             1 - (compute_s - other_bytes / dram_bw) / (w_s + tiny))
    # Equal times (e.g. compute-bound) are broken by the memory energy of the placement.
    def memory_j(f: object) -> object:
        return ((weight_bytes * (1 - f) + other_bytes) * 8 * np.asarray(
            arrays["dram_pj_per_bit"]) + lane_bits * f * hw.sram_pj.value) * 1e-12

    best_f = np.zeros_like(np.asarray(f_max, dtype=float))
    best_t, best_e = times(best_f)[2], memory_j(best_f)
    for cand in (f_max, *(np.clip(k, 0, f_max) for k in kinks)):
        t, e = times(cand)[2], memory_j(cand)
        better = (t < best_t * (1 - 1e-12)) | ((t <= best_t * (1 + 1e-12)) & (e < best_e))
        best_f = np.where(better, cand, best_f)
        best_t, best_e = np.where(better, t, best_t), np.where(better, e, best_e)
    dram_s, onchip_s, time_s = times(best_f)
    dram_bytes = weight_bytes * (1 - best_f) + other_bytes + fetched_bytes
    onchip_bits = lane_bits * best_f
    on_path = np.maximum(compute_s, onchip_s)
    # fetched products whose ports bring less than a lane group per cycle make the
    # compute time memory time: "DRAM" binds when they are most of the compute cycles
    ported = sum(np.asarray(op.cycles) * k for op, k in zip(ops, mult, strict=True)
                 if op.fetched and np.all(op.memory_bound))
    ports_bind = np.asarray(ported) * 2 > compute_cycles
    binding = np.where((dram_s >= on_path) | (ports_bind & (onchip_s <= compute_s)), "DRAM",
                       np.where(onchip_s > compute_s, "on-chip", "compute"))

    fam = hw.dev.fam
    active = sum(np.asarray(op.active_cycles) * k for op, k in zip(ops, mult, strict=True)
                 if op.unit == "ternary")
    detail = {
        "ternary cores": active * activity.ternary_cycle_j(
            arrays["lanes"], arrays["ternary_cores"], fam.e_toggle_pj.value),
        "tensor arrays": busy["tensor"] * activity.tensor_cycle_j(
            np.asarray(arrays["tensor_arrays"]), fam.e_toggle_pj.value, fam.e_dsp_pj.value),
        "element-wise": sum(np.asarray(op.elems) * k for op, k in zip(ops, mult, strict=True)
                            if op.unit == "elementwise") * hw.e_elementwise_pj.value * 1e-12,
        "device static": np.asarray(arrays["device_static_w"]) * time_s,
        "DRAM background": np.asarray(arrays["dram_background_w"]) * time_s,
        "board": np.asarray(arrays["board_w"]) * time_s,
    }
    e = {"static": detail["device static"] + detail["DRAM background"] + detail["board"],
         "logic": detail["ternary cores"] + detail["tensor arrays"] + detail["element-wise"],
         "on-chip memory": onchip_bits * hw.sram_pj.value * 1e-12,
         "DRAM": dram_bytes * 8 * np.asarray(arrays["dram_pj_per_bit"]) * 1e-12}
    ops_count = 2 * sum(np.asarray(op.macs, dtype=float) * k  # float: no int64 overflow
                        for op, k in zip(ops, mult, strict=True))
    return StepResult(ops, compute_cycles, compute_s, dram_bytes, dram_s, onchip_bits,
                      onchip_s, time_s, binding, e, detail, ops_count)


def hw_arrays(hw: HardwareConfig, **over: object) -> dict:
    """The numeric hardware parameters as a dict (overridable by arrays for sweeps)."""
    base = {"clock_mhz": hw.clock_mhz.value, "ternary_cores": hw.ternary_cores,
            "lanes": hw.lanes, "tensor_arrays": hw.tensor_arrays, "sram_mib": hw.sram_mib,
            "sram_bits_per_cycle": hw.sram_bits_per_cycle, "dram_channels": hw.dram_channels,
            "dram_gbps": hw.dram_gbps_per_channel.value,
            "dram_pj_per_bit": hw.dram_pj.value,
            "elementwise_per_cycle": int(hw.elementwise_per_cycle.value),
            "device_static_w": hw.static.value, "dram_background_w": hw.dram_background_w.value,
            "board_w": hw.board_w.value}
    base.update(over)
    return base


@dataclass
class Projection:
    """What ``mmfree project`` reports."""

    model: ModelConfig
    hw: HardwareConfig
    workload: Workload
    decode: StepResult  #: one decode step at the mean context of the generation
    prefill: StepResult
    context: int
    warnings: list[str]
    fit: list = field(default_factory=list)  #: :class:`mmfree.model.fit.FitRow` per resource

    @property
    def fits(self) -> bool:
        return all(r.ok for r in self.fit)

    @property
    def tokens_per_s(self) -> float:
        return float(self.workload.batch / self.decode.time_s)

    @property
    def tpot_s(self) -> float:
        return float(self.decode.time_s)

    @property
    def ttft_s(self) -> float:
        return float(self.prefill.time_s)

    @property
    def energy_per_token_j(self) -> dict[str, float]:
        return {k: float(v) / self.workload.batch for k, v in self.decode.energy_j.items()}

    @property
    def power_w(self) -> dict[str, float]:
        """Average decode power by part: static, logic, on-chip memory, DRAM."""
        return {k: float(v) / float(self.decode.time_s) for k, v in self.decode.energy_j.items()}

    @property
    def power_detail_w(self) -> dict[str, float]:
        return {k: float(v) / float(self.decode.time_s)
                for k, v in self.decode.energy_detail_j.items()}

    @property
    def chip_power_w(self) -> float:
        """The FPGA alone: device static, logic and on-chip memory (no DRAM, no board)."""
        d = self.power_detail_w
        return (d["device static"] + self.power_w["logic"] + self.power_w["on-chip memory"])

    def peak_ops_per_s(self) -> float:
        """Compute roof of the units this model runs on (2 ops per MAC-equivalent): ternary
        lanes for ternary projections, tensor arrays for int8 projections, attention and a
        tied lm_head (a 2:4 sparse array counts its logical rate)."""
        clock = self.hw.clock_mhz.value * 1e6
        ternary = 2 * self.hw.ternary_cores * self.hw.lanes * clock
        tensor = 2 * 64 * self.hw.tensor_arrays * clock * (2 if self.hw.tensor_sparse else 1)
        use = fit.uses(self.model)
        return (ternary if use["ternary"] else 0) + (tensor if use["tensor"] else 0)


def project(model: ModelConfig, hw: HardwareConfig, workload: Workload) -> Projection:
    """Project decode and prefill of ``workload`` for ``model`` on ``hw``; the fit check's
    failures come back as warnings."""
    use = fit.uses(model)
    if use["ternary"] and hw.ternary_cores < 1:
        raise ValueError(f"{hw.name} has no ternary cores for {model.name}")
    if use["tensor"] and hw.tensor_arrays < 1:
        what = "the tied fp16 lm_head" if model.ternary else model.name
        raise ValueError(f"{hw.name} has no tensor-core arrays for {what}")
    a = hw_arrays(hw)
    b = workload.batch
    context = workload.prompt + workload.generate // 2
    decode = run_step(model, hw, a, vectors=b, context=context, sequences=b, lm_head_vectors=b)
    prefill = run_step(model, hw, a, vectors=b * max(workload.prompt, 1), context=
                       workload.prompt, sequences=b, lm_head_vectors=b)
    rows = fit.check(model, hw, workload)
    warnings = [f"does not fit {hw.dev.part}: {r.text()}" for r in rows if not r.ok]
    return Projection(model, hw, workload, decode, prefill, context, warnings, rows)


#: how far each part of a projection is checked against the RTL
VALIDATED, UNIT, ANALYTICAL = "validated against RTL", "unit measured on RTL", "analytical"


def validation(p: Projection) -> list[dict[str, str]]:
    """Which parts of the projection ``p`` are validated against the RTL and which remain
    analytical: rows ``{part, status, basis}`` with ``status`` one of :data:`VALIDATED`
    (the part's cycles are a formula that co-simulation of the RTL measures), :data:`UNIT`
    (the unit's cycles are measured, the system around it is not built) and
    :data:`ANALYTICAL`."""
    ops = p.decode.ops
    kinds = {op.source for op in ops}
    rows: list[dict[str, str]] = []

    def row(part: str, status: str, basis: str) -> None:
        rows.append({"part": part, "status": status, "basis": basis})

    if "fetched product" in kinds:
        f = port_figures(p.hw)
        row("ternary products (cycles, with the weights' fetch)", VALIDATED,
            "mmfree.model.cycles.fetched_product_cycles (FetchedProductSpec.cycles): the "
            "multi-core AXI product RTL within 1.3 % over 14 configurations (bench/"
            "axi_system.py, docs/memory-system.md); here "
            f"{p.hw.ternary_cores} x {p.hw.lanes} lanes, {p.hw.port_bits}-bit ports, "
            f"latency {float(f['latency_cycles']):.0f} cycles, "
            f"{float(f['rate']):.3g} beats/cycle, {p.hw.outstanding} x {p.hw.max_burst}-beat "
            "bursts in flight")
        row("port bandwidth and latency of a preset", ANALYTICAL,
            "each port's rate is its share of the channels' bandwidth x dram_efficiency "
            "(channels shared evenly when cores outnumber them); mem_latency_ns is "
            f"{p.hw.mem_latency_ns.source}")
    elif any(op.unit == "ternary" for op in ops):
        row("ternary products", UNIT, "TernaryCoreSpec.cycles (measured on the RTL, "
            "tests/model/test_cycles.py); the DRAM and on-chip roofline around it is "
            "analytical (product_model 'analytical')")
    if "engine" in kinds:
        row("element-wise work (norms, gates, recurrence, GLU, BitLinear front ends, "
            "argmax)", VALIDATED,
            "mmfree.model.cycles.engine_elementwise_cycles: the whole-token engine's "
            "per-instruction cycles (EngineCycles), measured exactly by its co-simulation "
            f"(docs/engine.md), {_instructions(p)} instructions a token at "
            f"{int(p.hw.elementwise_per_cycle.value)} lanes")
        row("the engine with fetched products (one design)", ANALYTICAL,
            "the two validated parts added, not the built engine's whole-token formula "
            "(EngineSpec with cores: bench/engine_system.py, within 0.38 % of its RTL on "
            "12 small configurations); the vector's load into the product's buffer is "
            "taken as the front end's output groups")
    elif any(op.unit == "elementwise" for op in ops):
        row("element-wise work", ANALYTICAL,
            "element operations / elementwise_per_cycle (docs/cycle-model.md section 2)")
    if any(op.unit in ("tensor", "sparse") for op in ops):
        row("tensor-core GEMMs and attention", UNIT,
            "TensorCoreSpec / SparseTensorCoreSpec gemm_cycles measured on the RTL; the "
            "arrays' system (weights, KV cache) is analytical")
    row("other DRAM traffic (state, embeddings, KV cache) and the resident-weight "
        "placement", ANALYTICAL, "bytes / (channels x GB/s x efficiency), overlapped")
    row("clock", ANALYTICAL, f"{p.hw.clock_mhz.source}: {p.hw.clock_mhz.note}")
    row("power and energy (static, logic, on-chip memory, DRAM)", ANALYTICAL,
        "cited, derived and assumed coefficients (summary.coefficients); logic from "
        "measured activity")
    row("fit (resources, DRAM capacity)", ANALYTICAL,
        "the resources of a measured build of the whole design" if p.hw.measured_luts
        else "measured per-unit synthesis counts scaled by lanes and arrays")
    return rows


def _instructions(p: Projection) -> int:
    e = engine_elementwise(p.model, int(p.hw.elementwise_per_cycle.value))
    return e["instructions"] if e else 0
