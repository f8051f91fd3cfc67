#!/usr/bin/env python3
"""The whole-token engine with its weights over AXI4: cycles per token, model vs RTL.

For each configuration (cores, lanes, weight format, port width, outstanding bursts, and
the emulated channels' latency and R bandwidth), co-simulates the engine
(:class:`mmfree.hdl.engine.Engine` with ``cores`` > 0: C ternary cores, each reading its
share of every matrix from its own cocotbext-axi memory) on one token of a random HGRN-Bit
checkpoint (d 64, 1 layer, MLP 128, vocabulary 64; ``sim/tb/engine.py``: logits and argmax
checked against the fixed-point model), and prints:

* regime: memory-bound when a port's sustained beats (``WeightFetcherSpec.beat_rate``)
  bring a core fewer than one lane group per cycle on the token's largest product, else
  compute-bound (with ``channels`` < ``cores``, a core's share: the channel's rate over the
  ``cores / channels`` cores on it);
* measured cycles per token (``start`` to ``done``) and the cycle model's
  (``mmfree.model.cycles.engine_token_cycles``: ``program_cycles`` with
  ``MultiCoreBitLinearSpec.cycles``), the error, and whether the model claims exactness;
* achieved / peak bandwidth: the R beats of one port per token (every BitLinear's share
  of each core on it, ``MultiCoreBitLinearSpec.image_bytes``) over the measured cycles,
  over the channel's limit ``n/d`` (the whole token: the element-wise work and the front
  ends included);
* the stream engine's cycles per token (one core, weights on the ``w`` stream) for scale.

Channels: latency in cycles and ``n/d`` R beats per cycle; emulation settings, not
measured memories (docs/memory-system.md). About 5 minutes on two busy cores (Icarus).

    .venv/bin/python bench/engine_system.py [--quick | --shared] [--sim verilator]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

from mmfree.golden.hgrn_bit import HGRNBitConfig
from mmfree.model.cycles import engine_token_cycles, fetched_product_regime
from mmfree.sim import cosim
from mmfree.spec import EngineSpec, MultiCoreBitLinearSpec
from mmfree.spec.engine import compile_token

CONFIG = HGRNBitConfig(vocab_size=64, hidden_size=64, num_hidden_layers=1,
                       intermediate_size=128)
# (label, engine parameters, lanes, latency, rate n/d)
CONFIGS = [
    ("1x16 codes, 64-bit", {"cores": 1}, 16, 8, (1, 1)),
    ("2x16 codes, 64-bit", {"cores": 2}, 16, 30, (1, 1)),
    ("4x16 codes, 64-bit", {"cores": 4}, 16, 30, (1, 1)),
    ("2x8 codes, 32-bit", {"cores": 2, "data_width": 32}, 8, 30, (1, 1)),
    ("2x16 packed, 64-bit", {"cores": 2, "packed": True}, 16, 30, (1, 1)),
    ("2x16 codes, 32-bit, ddr4", {"cores": 2, "data_width": 32}, 16, 30, (7, 10)),
    ("2x16 codes, 32-bit, hbm", {"cores": 2, "data_width": 32}, 16, 60, (9, 10)),
    ("4x16 codes, 32-bit, 1/2", {"cores": 4, "data_width": 32}, 16, 30, (1, 2)),
    ("2x16 codes, 64-bit, 1 outstanding", {"cores": 2, "outstanding": 1}, 16, 100, (1, 1)),
    ("2x16 packed, 32-bit, ddr4", {"cores": 2, "packed": True, "data_width": 32}, 16, 30,
     (7, 10)),
    ("2x16 codes, 32-bit, 2 x 4-beat", {"cores": 2, "data_width": 32, "outstanding": 2,
                                        "max_burst": 4}, 16, 60, (1, 1)),
    ("4x16 codes, 64-bit, hbm", {"cores": 4}, 16, 60, (9, 10)),
    # fewer channels than cores: C / K cores share each channel through the AR arbiter
    ("2x16 codes, 64-bit, 1 channel", {"cores": 2, "channels": 1}, 16, 30, (1, 1)),
    ("4x16 codes, 64-bit, 2 channels", {"cores": 4, "channels": 2}, 16, 30, (1, 1)),
    ("4x16 codes, 64-bit, 1 channel", {"cores": 4, "channels": 1}, 16, 30, (1, 1)),
    ("2x16 codes, 32-bit, ddr4, 1 channel", {"cores": 2, "data_width": 32, "channels": 1},
     16, 30, (7, 10)),
    ("4x16 packed, 32-bit, hbm, 2 channels", {"cores": 4, "packed": True, "data_width": 32,
                                              "channels": 2}, 16, 60, (9, 10)),
    ("2x16 codes, 64-bit, 1 outstanding, 1 channel", {"cores": 2, "outstanding": 1,
                                                      "channels": 1}, 16, 100, (1, 1)),
    ("4x16 codes, 32-bit, 2 x 4-beat, 2 channels", {"cores": 4, "data_width": 32,
                                                    "outstanding": 2, "max_burst": 4,
                                                    "channels": 2}, 16, 60, (1, 1)),
]


def port_beats(spec: EngineSpec) -> int:
    """R beats one port reads per token: the shares of every BitLinear of the model of the
    cores it serves (one, or ``cores / channels``)."""
    bl = spec.bitlinear()
    assert isinstance(bl, MultiCoreBitLinearSpec)
    return bl.sharing * sum(bl.image_bytes(m, k) * 8 // spec.data_width
                            for _, m, k in CONFIG.bitlinears())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the first 4 configurations only")
    ap.add_argument("--shared", action="store_true",
                    help="only the configurations with fewer channels than cores")
    ap.add_argument("--sim", choices=("icarus", "verilator"), default="icarus",
                    help="simulator (default icarus)")
    ap.add_argument("--seed", type=int, default=1, help="stimulus seed (default 1)")
    args = ap.parse_args()
    model = {"config": {k: v for k, v in CONFIG.to_dict().items() if k != "model_type"},
             "seed": 1, "tokens": 1, "sequences": 1}
    rows = []
    t0 = time.time()
    configs = CONFIGS[:4] if args.quick else CONFIGS
    if args.shared:
        configs = [c for c in configs if c[1].get("channels", c[1]["cores"]) < c[1]["cores"]]
    for i, (label, params, lanes, lat, (rn, rd)) in enumerate(configs):
        program = compile_token(CONFIG, lanes=lanes)
        spec = EngineSpec.for_program(program, **params)
        print(f"[{i + 1}/{len(configs)}] {label} ...", file=sys.stderr, flush=True)
        t1 = time.time()
        res = cosim.run_unit(spec, args.sim, seed=args.seed, testcase="test_tokens",
                             extra={"model": model, "mem_latency": lat,
                                    "mem_rate": [rn, rd]})
        rep = res.report
        if not rep.get("cycles") or rep.get("mismatches") or rep.get("tokens") != 1:
            print(f"mmfree: {label}: the co-simulation failed (logs in {res.run_dir})",
                  file=sys.stderr)
            return 1
        measured = rep["cycles"][0][1]
        pred = engine_token_cycles(CONFIG, lanes, mem_latency=lat, mem_rate=rn / rd,
                                   **params)
        stream = engine_token_cycles(CONFIG, lanes)["total"]
        bl = spec.bitlinear()
        assert isinstance(bl, MultiCoreBitLinearSpec)
        m, k = max(((m, k) for _, m, k in CONFIG.bitlinears()), key=lambda s: s[0] * s[1])
        bound, _ = fetched_product_regime(  # a core's share of its channel
            k, lanes=lanes, data_width=spec.data_width, mem_latency=lat,
            mem_rate=rn / rd / bl.sharing,
            outstanding=spec.outstanding, max_burst=spec.max_burst,
            fifo_depth=spec.fifo_depth, packed=spec.packed, rows=bl.rows_per_core(m))
        rows.append((label, lat, f"{rn}/{rd}", "memory" if bool(bound) else "compute",
                     measured, pred["total"], (pred["total"] - measured) / measured * 100,
                     "yes" if pred["exact"] else "no",
                     port_beats(spec) / measured / (rn / rd), stream, time.time() - t1))
        print(f"    measured {measured}, predicted {pred['total']} ({rows[-1][6]:+.2f} %)",
              file=sys.stderr, flush=True)
    print(f"Engine (d {CONFIG.hidden_size}, 1 layer, MLP {CONFIG.intermediate}, vocabulary "
          f"{CONFIG.vocab_size}) on {args.sim}, one token, vs "
          f"mmfree.model.cycles.engine_token_cycles ({platform.node()}, "
          f"{time.time() - t0:.0f} s)\n")
    print("| configuration | L | rate | regime | measured | predicted | error | exact claimed "
          "| achieved / peak bandwidth | stream engine | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, lat, rate, regime, meas, pred, err, exact, bw, stream, wall in rows:
        print(f"| {label} | {lat} | {rate} | {regime} | {meas} | {pred} | {err:+.2f} % | "
              f"{exact} | {bw:.2f} | {stream} | {wall:.0f} |")
    worst = max(abs(r[6]) for r in rows)
    wrong_exact = [r[0] for r in rows if r[7] == "yes" and r[4] != r[5]]
    print(f"\nlargest error {worst:.2f} %; exact where claimed: "
          f"{'yes' if not wrong_exact else 'NO: ' + ', '.join(wrong_exact)}")
    return 0 if worst <= 2.0 and not wrong_exact else 1


if __name__ == "__main__":
    sys.exit(main())
