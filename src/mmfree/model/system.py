"""System-level projection: cycles, memory traffic, time, energy and power per token.

One implementation serves a single projection (:func:`project`) and the design-space sweep
(:mod:`mmfree.model.sweep`): every formula is written with numpy operations, so hardware and
workload parameters may be scalars or arrays of design points. The equations are derived in
``docs/cycle-model.md`` from the units' RTL-measured timing (:mod:`mmfree.model.cycles`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import HardwareConfig, ModelConfig, Workload
from .cycles import sparse_gemm_cycles, tensor_gemm_cycles, ternary_matvec_cycles

__all__ = ["FP16_BYTES", "INT8_BITS", "KV_BYTES", "SPARSE_BITS_PER_WEIGHT", "Op", "Projection",
           "StepResult", "elementwise_per_layer", "hw_arrays", "project", "run_step", "step_ops"]

FP16_BYTES = 2  #: embeddings and recurrent state are kept in fp16 (assumed)
KV_BYTES = 1  #: Transformer++ KV cache entries in int8 (assumed)
INT8_BITS = 8
SPARSE_BITS_PER_WEIGHT = 5.0  #: 2:4 int8: half the values (4 bits) + 2-bit index per kept


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
    lane_slots: object = 0  #: issued lane or MAC slots (energy)
    weight_reads: object = 0  #: weights read from on-chip memory if resident (padding excluded)


def _ceil_div(a: object, b: object) -> object:
    return -(-np.asarray(a) // np.asarray(b))


def elementwise_per_layer(model: ModelConfig, context: object = 0) -> dict[str, object]:
    """Element operations per layer per token (one element through one unit pass).

    MatMul-free block: RMSNorms (reduce + scale: 2 passes) and activation quantisation
    (absmax + scale/round: 2 passes) on the inputs of the 6 BitLinear modules, rescaling of
    their outputs, the MLGRU gates and state update, GLU, residual adds.
    Transformer++: 2 RMSNorms, rotary, softmax over the context (3 passes per head), SwiGLU,
    residual adds.
    """
    d, i = model.d, model.inter
    if model.kind == "mmfree":
        return {"block norms": 2 * 2 * d, "bitlinear norm+quant (MLGRU)": 4 * 4 * d,
                "bitlinear norm+quant (GLU)": 4 * d + 4 * i, "output rescale": 5 * d + 2 * i,
                "MLGRU gates and state": 7 * d, "GLU SiLU and product": 2 * i,
                "residual adds": 2 * d}
    heads = max(1, d // model.head_dim)
    return {"block norms": 2 * 2 * d, "rotary": 2 * d,
            "softmax": 3 * heads * np.asarray(context), "SwiGLU": 2 * i,
            "residual adds": 2 * d}


def step_ops(model: ModelConfig, hw: HardwareConfig, vectors: object, context: object,
             sequences: object, lm_head_vectors: object, arrays: dict) -> list[Op]:
    """The operations of one step that processes ``vectors`` token positions (``sequences``
    sequences, each with ``context`` tokens of history), on the hardware described by
    ``arrays`` (numpy-able: cores, lanes, tensor_arrays, elementwise_per_cycle)."""
    cores, lanes = arrays["ternary_cores"], arrays["lanes"]
    tarrays = arrays["tensor_arrays"]
    packed = hw.weight_bits < 2
    d, i = model.d, model.inter
    ops: list[Op] = []

    def ternary(name: str, m: int, k: int, n_vec: object, per_layer: bool = True) -> None:
        rows = np.asarray(n_vec) * _ceil_div(m, cores)  # rows split over the cores
        cyc = ternary_matvec_cycles(rows, k, lanes, packed, hw.tree_levels_per_stage)
        ops.append(Op(name, "ternary", per_layer, m=m, k=k, weights=m * k,
                      macs=np.asarray(n_vec) * m * k, weight_bits=hw.weight_bits, cycles=cyc,
                      lane_slots=rows * _ceil_div(k, lanes) * lanes * cores,
                      weight_reads=np.asarray(n_vec) * m * k))  # once per vector

    def tensor(name: str, m: object, k: int, n: int, sparse: bool, weights: float,
               per_layer: bool = True, split: object = None) -> None:
        split = tarrays if split is None else split
        nn = _ceil_div(n, split)  # output columns split over the arrays
        fn = sparse_gemm_cycles if sparse else tensor_gemm_cycles
        cyc = fn(m, k, nn, hw.dsp_pipeline)
        ops.append(Op(name, "sparse" if sparse else "tensor", per_layer, m=m, k=k, n=n,
                      weights=weights, macs=np.asarray(m) * k * n,
                      weight_bits=(SPARSE_BITS_PER_WEIGHT if sparse else INT8_BITS),
                      cycles=cyc, lane_slots=(cyc * 64 * np.asarray(split)),
                      weight_reads=_ceil_div(m, 4) * weights))  # once per 4-row tile of A

    if model.kind == "mmfree" or model.ternary_linear:
        names = (("MLGRU i,f,g,o", 4 * d, d), ("GLU gate+up", 2 * i, d), ("GLU down", d, i)) \
            if model.kind == "mmfree" else \
            (("attention q,k,v,o", 4 * d, d), ("MLP gate+up", 2 * i, d), ("MLP down", d, i))
        for name, m, k in names:
            ternary(name, m, k, vectors)
    else:
        sparse = hw.tensor_sparse
        for name, n, k in (("attention q,k,v,o", 4 * d, d), ("MLP gate+up", 2 * i, d),
                           ("MLP down", d, i)):
            tensor(name, vectors, k, n, sparse, weights=n * k)
    if model.kind == "transformer":
        # attention of each sequence over its own context: q K^T and p V, one GEMM each per
        # sequence (the queries of a decode step are one row: a quarter of a tile's rows)
        per_seq_rows = _ceil_div(vectors, sequences)
        qk = tensor_gemm_cycles(per_seq_rows, d, context, hw.dsp_pipeline) * np.asarray(
            sequences)
        pv = tensor_gemm_cycles(per_seq_rows, context, d, hw.dsp_pipeline) * np.asarray(
            sequences)
        cyc = _ceil_div(qk + pv, np.maximum(tarrays, 1))
        ops.append(Op("attention scores+values", "tensor", True, cycles=cyc,
                      macs=2 * np.asarray(vectors) * np.asarray(context) * d,
                      lane_slots=cyc * 64 * np.maximum(tarrays, 1)))
    ew = sum(elementwise_per_layer(model, context).values())
    ops.append(Op("element-wise", "elementwise", True, elems=np.asarray(vectors) * ew,
                  cycles=_ceil_div(np.asarray(vectors) * ew, arrays["elementwise_per_cycle"])))
    # model end: final norm + quant, ternary (or int8) lm_head on the last positions only
    if model.kind == "mmfree" or model.ternary_linear:
        ternary("lm_head", model.vocab, d, lm_head_vectors, per_layer=False)
    else:
        tensor("lm_head", lm_head_vectors, d, model.vocab, False, weights=model.vocab * d,
               per_layer=False)
    tail = np.asarray(lm_head_vectors) * (4 * d + model.vocab)
    ops.append(Op("final norm, quant, rescale", "elementwise", False, elems=tail,
                  cycles=_ceil_div(tail, arrays["elementwise_per_cycle"])))
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
    energy_j: dict = field(default_factory=dict)
    ops_count: object = 0  #: 2 x MAC-equivalent operations of the step (roofline)


def run_step(model: ModelConfig, hw: HardwareConfig, arrays: dict, vectors: object,
             context: object, sequences: object, lm_head_vectors: object) -> StepResult:
    """Cycles, traffic, time and energy of one step (see the module docstring)."""
    clock = np.asarray(arrays["clock_mhz"]) * 1e6
    ops = step_ops(model, hw, vectors, context, sequences, lm_head_vectors, arrays)
    layers = model.layers
    mult = [layers if op.per_layer else 1 for op in ops]
    compute_cycles = sum(np.asarray(op.cycles) * k for op, k in zip(ops, mult, strict=True))
    compute_s = compute_cycles / clock

    weight_bytes = sum(op.weights * op.weight_bits / 8 * k
                       for op, k in zip(ops, mult, strict=True))
    state_bytes = 0.0
    if model.kind == "mmfree":  # MLGRU state per sequence and layer, read and written
        state_bytes = 2 * np.asarray(sequences) * layers * model.d * FP16_BYTES
    kv_bytes = 0.0
    if model.kind == "transformer":  # KV cache: read the context, write the new entries
        kv_bytes = (np.asarray(sequences) * layers * 2 * model.d * KV_BYTES
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
                    for op, k in zip(ops, mult, strict=True) if op.weights)
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
        return ((weight_bytes * (1 - f) + other_bytes) * 8 * hw.dram_pj_per_bit.value
                + lane_bits * f * hw.e_sram_pj_per_bit.value) * 1e-12

    best_f = np.zeros_like(np.asarray(f_max, dtype=float))
    best_t, best_e = times(best_f)[2], memory_j(best_f)
    for cand in (f_max, *(np.clip(k, 0, f_max) for k in kinks)):
        t, e = times(cand)[2], memory_j(cand)
        better = (t < best_t * (1 - 1e-12)) | ((t <= best_t * (1 + 1e-12)) & (e < best_e))
        best_f = np.where(better, cand, best_f)
        best_t, best_e = np.where(better, t, best_t), np.where(better, e, best_e)
    dram_s, onchip_s, time_s = times(best_f)
    dram_bytes = weight_bytes * (1 - best_f) + other_bytes
    onchip_bits = lane_bits * best_f
    on_path = np.maximum(compute_s, onchip_s)
    binding = np.where(dram_s >= on_path, "DRAM", np.where(onchip_s > compute_s, "on-chip",
                                                          "compute"))

    e = {"compute": 0.0}
    for op, k in zip(ops, mult, strict=True):
        slots = np.asarray(op.lane_slots) * k
        if op.unit == "ternary":
            e["compute"] = e["compute"] + slots * hw.e_add_pj.value * 1e-12
        elif op.unit in ("tensor", "sparse"):
            e["compute"] = e["compute"] + slots * hw.e_mac_pj.value * 1e-12
        else:
            e["compute"] = e["compute"] + np.asarray(op.elems) * k * hw.e_elementwise_pj.value \
                * 1e-12
    e["on-chip memory"] = onchip_bits * hw.e_sram_pj_per_bit.value * 1e-12
    e["DRAM"] = dram_bytes * 8 * hw.dram_pj_per_bit.value * 1e-12
    e["static"] = np.asarray(arrays["static_w"]) * time_s
    ops_count = 2 * sum(np.asarray(op.macs, dtype=float) * k  # float: no int64 overflow
                        for op, k in zip(ops, mult, strict=True))
    return StepResult(ops, compute_cycles, compute_s, dram_bytes, dram_s, onchip_bits,
                      onchip_s, time_s, binding, e, ops_count)


def hw_arrays(hw: HardwareConfig, **over: object) -> dict:
    """The numeric hardware parameters as a dict (overridable by arrays for sweeps)."""
    base = {"clock_mhz": hw.clock_mhz.value, "ternary_cores": hw.ternary_cores,
            "lanes": hw.lanes, "tensor_arrays": hw.tensor_arrays, "sram_mib": hw.sram_mib,
            "sram_bits_per_cycle": hw.sram_bits_per_cycle, "dram_channels": hw.dram_channels,
            "dram_gbps": hw.dram_gbps_per_channel.value,
            "elementwise_per_cycle": hw.elementwise_per_cycle, "static_w": hw.static_w.value}
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
        return {k: float(v) / float(self.decode.time_s) for k, v in self.decode.energy_j.items()}

    def peak_ops_per_s(self) -> float:
        """Compute roof of the units this model runs on (2 ops per MAC-equivalent): ternary
        lanes for ternary projections, tensor arrays for int8 projections and attention
        (a 2:4 sparse array counts its logical rate)."""
        clock = self.hw.clock_mhz.value * 1e6
        ternary = 2 * self.hw.ternary_cores * self.hw.lanes * clock
        tensor = 2 * 64 * self.hw.tensor_arrays * clock * (2 if self.hw.tensor_sparse else 1)
        if self.model.kind == "mmfree":
            return ternary
        return tensor + (ternary if self.model.ternary_linear else 0)


def project(model: ModelConfig, hw: HardwareConfig, workload: Workload) -> Projection:
    """Project decode and prefill of ``workload`` for ``model`` on ``hw``."""
    warnings = []
    if model.kind == "mmfree" or model.ternary_linear:
        if hw.ternary_cores < 1:
            raise ValueError(f"{hw.name} has no ternary cores for {model.name}")
    elif hw.tensor_arrays < 1:
        raise ValueError(f"{hw.name} has no tensor-core arrays for {model.name}")
    a = hw_arrays(hw)
    b = workload.batch
    context = workload.prompt + workload.generate // 2
    decode = run_step(model, hw, a, vectors=b, context=context, sequences=b, lm_head_vectors=b)
    prefill = run_step(model, hw, a, vectors=b * max(workload.prompt, 1), context=
                       workload.prompt, sequences=b, lm_head_vectors=b)
    bits = hw.weight_bits if (model.kind == "mmfree" or model.ternary_linear) else (
        SPARSE_BITS_PER_WEIGHT if hw.tensor_sparse else INT8_BITS)
    need = model.linear_weights * bits / 8 + model.vocab * model.d * FP16_BYTES
    if need > hw.dram_capacity_gib * 2**30:
        warnings.append(f"the model needs {need / 2**30:.2f} GiB of weights; the board has "
                        f"{hw.dram_capacity_gib} GiB of DRAM")
    return Projection(model, hw, workload, decode, prefill, context, warnings)
