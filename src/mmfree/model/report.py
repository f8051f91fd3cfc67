"""Tables, JSON, CSV and figures for projections, comparisons and sweeps."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .config import PRESETS, HardwareConfig, ModelConfig, Q, Workload, builtin_model
from .system import Projection, port_figures, project, validation


def _f(v: object) -> float:
    return float(np.asarray(v))


def coefficients(p: Projection) -> dict[str, dict[str, object]]:
    """Every coefficient behind a projection, keyed by its configuration name, as
    ``{value, unit, source, note}``: the hardware's, its device's and family's, and the
    measured activity and resources of the units."""
    from . import activity
    out = p.hw.coefficients()
    out.update(activity.coefficients())
    return dict(sorted(out.items()))


def summary(p: Projection) -> dict[str, object]:
    """The headline numbers of a projection."""
    d = p.decode
    intensity = _f(d.ops_count) / max(_f(d.dram_bytes), 1e-9)
    bw = p.hw.dram_bytes_per_s
    power = p.power_w
    return {
        "model": p.model.name, "hardware": p.hw.name, "device": p.hw.dev.part,
        "dram_tech": p.hw.dram_tech, "batch": p.workload.batch,
        "prompt": p.workload.prompt, "generate": p.workload.generate,
        "decode_tokens_per_s": p.tokens_per_s, "tpot_ms": p.tpot_s * 1e3,
        "ttft_ms": p.ttft_s * 1e3,
        "generation_s": p.ttft_s + max(p.workload.generate - 1, 0) * p.tpot_s,
        "binding": str(d.binding),
        "decode_cycles_compute": _f(d.compute_cycles),
        "dram_bytes_per_step": _f(d.dram_bytes), "onchip_bits_per_step": _f(d.onchip_bits),
        "arithmetic_intensity_ops_per_byte": intensity,
        "attained_gops": _f(d.ops_count) / _f(d.time_s) / 1e9,
        "peak_compute_gops": p.peak_ops_per_s() / 1e9,
        "memory_roof_gops": intensity * bw / 1e9,
        "energy_per_token_mj": {k: v * 1e3 for k, v in p.energy_per_token_j.items()},
        "power_w": power, "total_power_w": sum(power.values()),
        "power_detail_w": p.power_detail_w, "chip_power_w": p.chip_power_w,
        "fits": p.fits,
        "fit": [{"resource": r.resource, "need": r.need, "available": r.available,
                 "unit": r.unit, "ok": r.ok} for r in p.fit],
        "coefficients": coefficients(p),
        "context_for_decode": p.context, "warnings": p.warnings,
        "product_model": p.hw.product_model,
        "port": _port(p),
        "validation": validation(p),
    }


def _port(p: Projection) -> dict[str, object] | None:
    """The cores' AXI ports of a "fetched" projection (``None`` otherwise)."""
    if p.hw.product_model != "fetched":
        return None
    f = port_figures(p.hw)
    ops = [op for op in p.decode.ops if op.fetched]
    busy = sum(_f(op.cycles) * (p.model.layers if op.per_layer else 1) for op in ops)
    memory = sum(_f(op.cycles) * (p.model.layers if op.per_layer else 1) for op in ops
                 if bool(np.all(op.memory_bound)))
    return {"cores": p.hw.ternary_cores, "data_width": p.hw.port_bits,
            "mem_latency_cycles": _f(f["latency_cycles"]), "beats_per_cycle": _f(f["rate"]),
            "share_gbps": _f(f["share_bytes_per_s"]) / 1e9,
            "port_gbps": _f(f["port_bytes_per_s"]) / 1e9,
            "outstanding": p.hw.outstanding, "max_burst": p.hw.max_burst,
            "fifo_depth": p.hw.fifo_depth,
            "memory_bound_share": memory / busy if busy else 0.0}


def hardware_used(p: Projection) -> dict[str, dict[str, object]]:
    """Every hardware value the projection used, with its tag: ``source`` is measured, cited
    or assumed for a coefficient with provenance; ``preset NAME`` for a plain value equal to
    the preset's; ``configured`` for one set by a configuration file (a TOML override)."""
    base = PRESETS.get(p.hw.name)
    out: dict[str, dict[str, object]] = {}
    for f in fields(p.hw):
        if f.name == "name":
            continue
        v = getattr(p.hw, f.name)
        if isinstance(v, Q):
            out[f.name] = {"value": v.value, "source": v.source, "note": v.note}
        elif v is not None:
            same = base is not None and getattr(base, f.name) == v
            out[f.name] = {"value": v, "source": f"preset {base.name}" if same else "configured",
                           "note": ""}
    return out


def breakdown(p: Projection) -> list[dict[str, object]]:
    """Per-operation cycles of one decode step (per layer and in total)."""
    total = _f(p.decode.compute_cycles)
    rows = []
    for op in p.decode.ops:
        k = p.model.layers if op.per_layer else 1
        cyc = _f(op.cycles)
        rows.append({"operation": op.name, "unit": op.unit,
                     "cycles_per_layer": cyc if op.per_layer else None,
                     "cycles_total": cyc * k, "share": cyc * k / total if total else 0.0})
    return rows


def provenance(p: Projection) -> dict[str, str]:
    """Every tagged number behind a projection, name -> tag."""
    out = {k: f"{v['source']}: {v['note']}" for k, v in coefficients(p).items()}
    out["unit cycles"] = ("measured: RTL co-simulation (tests/model/test_cycles.py), "
                          "TernaryCore M*ceil(K/N)+3(+1 packed), TensorCore "
                          "ceil(M/4)ceil(N/4)ceil(K/4)+3, sparse ceil(K/8), +4")
    out["storage formats"] = "assumed: fp16 embeddings and recurrent state, int8 KV cache"
    return out


def text(p: Projection) -> str:
    """The human-readable report of ``mmfree project``."""
    s = summary(p)
    lines = [f"{p.model.name} on {p.hw.name} ({p.hw.dev.part}, {p.hw.dram_tech}): batch "
             f"{p.workload.batch}, prompt {p.workload.prompt}, generate {p.workload.generate} "
             f"(decode at context {p.context})", ""]
    rows = [("decode throughput", f"{s['decode_tokens_per_s']:.2f} tokens/s"),
            ("TPOT", f"{s['tpot_ms']:.3f} ms"), ("TTFT", f"{s['ttft_ms']:.3f} ms"),
            ("whole generation", f"{s['generation_s']:.3f} s"),
            ("binding resource", s["binding"]),
            ("DRAM traffic / step", f"{s['dram_bytes_per_step'] / 1e6:.2f} MB"),
            ("on-chip reads / step", f"{s['onchip_bits_per_step'] / 8e6:.2f} MB"),
            ("roofline", f"{s['arithmetic_intensity_ops_per_byte']:.1f} ops/B, attained "
                         f"{s['attained_gops']:.1f} GOPS of {s['peak_compute_gops']:.1f} peak "
                         f"(memory roof {s['memory_roof_gops']:.1f})"),
            ("energy / token", f"{sum(s['energy_per_token_mj'].values()):.3f} mJ"),
            ("average power", f"{s['total_power_w']:.2f} W (the FPGA alone: "
                              f"{s['chip_power_w']:.2f} W)")]
    width = max(len(a) for a, _ in rows)
    lines += [f"  {a:<{width}}  {b}" for a, b in rows]
    detail = s["power_detail_w"]
    parts = {"static": ("device static", "DRAM background", "board"),
             "logic": ("ternary cores", "tensor arrays", "element-wise")}
    lines += ["", "  power breakdown:"]
    for k, v in s["power_w"].items():
        lines.append(f"    {k:<16} {v:8.3f} W  ({s['energy_per_token_mj'][k]:.4f} mJ/token)")
        lines += [f"      {part:<16} {detail[part]:8.3f} W" for part in parts.get(k, ())
                  if detail[part]]
    lines += ["", f"  {'operation':<34} {'unit':<12} {'cycles/layer':>14} {'total':>14} "
                  f"{'share':>6}"]
    for r in breakdown(p):
        per = f"{r['cycles_per_layer']:,.0f}" if r["cycles_per_layer"] is not None else "-"
        lines.append(f"  {r['operation']:<34} {r['unit']:<12} {per:>14} "
                     f"{r['cycles_total']:>14,.0f} {r['share']:>6.1%}")
    plain = {k: h for k, h in hardware_used(p).items() if k not in s["coefficients"]}
    width = max(len(k) for k in plain)
    lines += ["", f"  hardware used ({p.hw.name}; tagged coefficients below):"] + [
        f"    {k:<{width}}  {_value(h['value'])}  ({h['source']})" for k, h in plain.items()]
    port = s["port"]
    if port is not None:
        lines += ["", f"  AXI ports (product model fetched): {port['cores']} x "
                      f"{port['data_width']} bits, memory latency "
                      f"{port['mem_latency_cycles']:.0f} cycles, "
                      f"{port['beats_per_cycle']:.3g} beats/cycle (channel share "
                      f"{port['share_gbps']:.3g} GB/s, port {port['port_gbps']:.3g} GB/s), "
                      f"{port['outstanding']} x "
                      f"{port['max_burst']}-beat bursts in flight, "
                      f"{port['memory_bound_share']:.0%} of the product cycles memory-bound"]
    lines += ["", "  validated against RTL / analytical:"] + [
        f"    {r['status']:<22}  {r['part']}: {r['basis']}" for r in s["validation"]]
    lines += ["", "  fit check:"] + [f"    {'ok  ' if r.ok else 'FAIL'} {r.text()}"
                                     for r in p.fit]
    lines += ["", "  coefficients:"] + [
        f"    {k} = {v['value']:.4g} {v['unit']} ({v['source']}: {v['note']})"
        for k, v in s["coefficients"].items()]
    lines += [f"  WARNING: {w}" for w in p.warnings]
    return "\n".join(lines)


def _value(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v).lower() if isinstance(v, bool) \
        else str(v)


def to_json(p: Projection) -> str:
    return json.dumps({"summary": summary(p), "hardware": hardware_used(p),
                       "breakdown": breakdown(p), "provenance": provenance(p)}, indent=2,
                      default=float)


def to_csv(p: Projection) -> str:
    """The report as rows ``section, key, value, source`` (source: the hardware values'
    tags, as in :func:`hardware_used`; empty elsewhere)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["section", "key", "value", "source"])
    for k, h in hardware_used(p).items():
        w.writerow(["hardware", k, h["value"], h["source"] + (f": {h['note']}" if h["note"]
                                                               else "")])
    for k, v in summary(p).items():
        if k in ("coefficients", "fit"):
            continue
        if isinstance(v, dict):
            for kk, vv in v.items():
                w.writerow(["summary", f"{k}.{kk}", vv])
        elif not isinstance(v, list):
            w.writerow(["summary", k, v])
    for r in p.fit:
        w.writerow(["fit", r.resource, f"{r.need:.6g} of {r.available:.6g} {r.unit}"])
    for r in validation(p):
        w.writerow(["validation", r["part"], r["status"], r["basis"]])
    for r in breakdown(p):
        w.writerow(["cycles", r["operation"], r["cycles_total"]])
    for k, v in coefficients(p).items():
        w.writerow(["coefficient", k, f"{v['value']:.6g} {v['unit']}"])
    for k, v in provenance(p).items():
        w.writerow(["provenance", k, v])
    return buf.getvalue()


def plot(p: Projection, out_dir: Path, fmt: str = "png") -> list[Path]:
    """A roofline figure and a breakdown figure (cycles and power)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    s = summary(p)
    peak, bw = s["peak_compute_gops"], p.hw.dram_bytes_per_s / 1e9
    x = np.logspace(-2, 4, 200)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(x, np.minimum(peak, x * bw), label="roofline")
    ax.plot([s["arithmetic_intensity_ops_per_byte"]], [s["attained_gops"]], "o",
            label=f"{p.model.name}, batch {p.workload.batch}")
    ax.set_xlabel("arithmetic intensity (ops / DRAM byte)")
    ax.set_ylabel("GOPS")
    ax.set_title(f"{p.model.name} on {p.hw.name}")
    ax.legend()
    roof = out_dir / f"roofline.{fmt}"
    fig.savefig(roof, bbox_inches="tight")
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    rows = breakdown(p)
    a1.barh([r["operation"] for r in rows], [r["cycles_total"] for r in rows])
    a1.set_xlabel("cycles per decode step")
    a2.bar(list(s["power_w"]), list(s["power_w"].values()))
    a2.set_ylabel("W")
    fig.suptitle(f"{p.model.name} on {p.hw.name}: {s['decode_tokens_per_s']:.1f} tokens/s")
    bd = out_dir / f"breakdown.{fmt}"
    fig.savefig(bd, bbox_inches="tight")
    plt.close(fig)
    return [roof, bd]


# --- comparison ----------------------------------------------------------------------------

@dataclass
class Comparison:
    """Tokens/s of the three contenders over batch sizes and context lengths."""

    hw: HardwareConfig
    size: str
    batches: list[int]
    contexts: list[int]
    table: dict[str, np.ndarray]  #: contender -> [batch, context] tokens/s
    fits: dict[str, np.ndarray] = field(default_factory=dict)  #: contender -> [batch, context]
    warnings: list[str] = field(default_factory=list)

    def winner(self) -> np.ndarray:
        names = list(self.table)
        stack = np.stack([self.table[n] for n in names])
        return np.array(names, dtype=object)[np.argmax(stack, axis=0)]

    def crossovers(self) -> list[str]:
        """Where the fastest contender changes, along batch and along context."""
        win = self.winner()
        out = []
        for ci, c in enumerate(self.contexts):
            for bi in range(1, len(self.batches)):
                if win[bi, ci] != win[bi - 1, ci]:
                    out.append(f"context {c}: {win[bi - 1, ci]} wins up to batch "
                               f"{self.batches[bi - 1]}, {win[bi, ci]} from batch "
                               f"{self.batches[bi]}")
        for bi, b in enumerate(self.batches):
            for ci in range(1, len(self.contexts)):
                if win[bi, ci] != win[bi, ci - 1]:
                    out.append(f"batch {b}: {win[bi, ci - 1]} wins up to context "
                               f"{self.contexts[ci - 1]}, {win[bi, ci]} from context "
                               f"{self.contexts[ci]}")
        return out

    def text(self) -> str:
        lines = [f"{self.size} models on {self.hw.name} (equal budget: one MAC slot per "
                 f"ternary lane, {self.hw.ternary_cores * self.hw.lanes} lanes vs "
                 f"{self.hw.tensor_arrays} tensor arrays x 64), decode tokens/s", ""]
        head = f"  {'batch':>6} {'context':>8} " + " ".join(f"{n:>22}" for n in self.table)
        lines += [head + f" {'fastest':>22}"]
        win = self.winner()
        for bi, b in enumerate(self.batches):
            for ci, c in enumerate(self.contexts):
                vals = " ".join(
                    f"{self.table[n][bi, ci]:>21.2f}"
                    + (" " if n not in self.fits or self.fits[n][bi, ci] else "*")
                    for n in self.table)
                lines.append(f"  {b:>6} {c:>8} {vals} {win[bi, ci]:>22}")
        cross = self.crossovers()
        lines += ["", "  crossovers:"] + ([f"    {c}" for c in cross] or
                                          ["    none: one contender wins everywhere"])
        if self.warnings:
            lines += ["", "  * does not fit the board (the fit check):"]
            lines += [f"  WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


def compare(hw: HardwareConfig, size: str = "1.3B", batches: list[int] | None = None,
            contexts: list[int] | None = None) -> Comparison:
    """MatMul-free LM on ternary cores vs Transformer++ on dense and 2:4 sparse tensor
    cores, all on ``hw`` (its tensor arrays must be set)."""
    from dataclasses import replace
    batches = batches or [1, 4, 16, 64]
    contexts = contexts or [256, 1024, 4096, 16384]
    contenders = {
        "MatMul-free/ternary": (builtin_model(size), hw),
        "Transformer++/dense": (builtin_model(f"transformer-{size}"),
                                replace(hw, tensor_sparse=False)),
        "Transformer++/2:4": (builtin_model(f"transformer-{size}"),
                              replace(hw, tensor_sparse=True)),
    }
    table = {n: np.zeros((len(batches), len(contexts))) for n in contenders}
    fits = {n: np.ones((len(batches), len(contexts)), dtype=bool) for n in contenders}
    warnings: list[str] = []
    for n, (model, h) in contenders.items():
        failed: dict[str, str] = {}  # resource -> first failing point
        for bi, b in enumerate(batches):
            for ci, c in enumerate(contexts):
                # decode at context c: a prompt of c tokens and one generated token
                p = project(model, h, Workload(b, c, 1))
                table[n][bi, ci] = p.tokens_per_s
                fits[n][bi, ci] = p.fits
                for r in p.fit:
                    if not r.ok:
                        key = r.resource.split(" (")[0]
                        failed.setdefault(key, f"{r.text()} (first at batch {b}, context {c})")
        warnings += [f"{n}: {t}" for t in failed.values()]
    return Comparison(hw, size, batches, contexts, table, fits, warnings)


def preset_table(sizes: tuple[str, ...] = ("370M", "1.3B", "2.7B"),
                 workload: Workload | None = None) -> str:
    """The 370M / 1.3B / 2.7B projections on every preset (batch 1 by default)."""
    workload = workload or Workload(1, 128, 128)
    lines = [f"  {'preset':<10} {'model':<6} {'tokens/s':>10} {'TPOT ms':>9} {'TTFT ms':>9} "
             f"{'binding':>8} {'W':>7} {'mJ/token':>9}"]
    for name, hw in PRESETS.items():
        for size in sizes:
            p = project(builtin_model(size), hw, workload)
            s = summary(p)
            lines.append(f"  {name:<10} {size:<6} {s['decode_tokens_per_s']:>10.2f} "
                         f"{s['tpot_ms']:>9.2f} {s['ttft_ms']:>9.1f} {s['binding']:>8} "
                         f"{s['total_power_w']:>7.2f} "
                         f"{sum(s['energy_per_token_mj'].values()):>9.2f}"
                         + ("" if p.fits else "  (does not fit: " + ", ".join(
                             r.resource.split(" (")[0] for r in p.fit if not r.ok) + ")"))
    return "\n".join(lines)


def model_names() -> list[str]:
    from .config import builtin_names
    return builtin_names()


__all__ = ["ModelConfig", "compare", "model_names", "plot", "preset_table", "summary", "text",
           "to_csv", "to_json"]
