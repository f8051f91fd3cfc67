"""``mmfree demo``: the main job in one command."""

from __future__ import annotations

import argparse

from ..spec import UNITS, BitLinearUnitSpec
from .errors import OK, UsageError
from .options import add_sim_option, add_unit_options, check_output_dir, simulators

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mmfree demo``."""
    d = sub.add_parser("demo", help="the main job: generate the units, run the tiny model "
                                    "with its BitLinears on the RTL, project the real models",
                       description="Generate every unit's Verilog; run the tiny MatMul-free "
                                   "LM with every BitLinear on the RTL on Icarus and "
                                   "Verilator (tokens and cycles checked against the golden "
                                   "model and the cycle model, as 'mmfree cosim'); print the "
                                   "370M/1.3B/2.7B projections on the hardware presets.")
    d.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    d.add_argument("--d", type=int, default=128, help="tiny model hidden size (default 128)")
    d.add_argument("--layers", type=int, default=2, help="tiny model blocks (default 2)")
    d.add_argument("--seed", type=int, default=1, help="tiny model weight seed (default 1)")
    d.add_argument("--prompt", default="Hi", help="prompt text (default 'Hi')")
    d.add_argument("--tokens", type=int, default=4, help="tokens to generate (default 4)")
    add_unit_options(d, BitLinearUnitSpec, only=("lanes",), title="BitLinear unit")
    add_sim_option(d)


def run(args: argparse.Namespace) -> int:
    from ..flow.generate import write_unit
    from ..model import report
    from ..sim.cosim import build_root as cosim_build_root
    from ..sim.model_cosim import size_unit
    from .run import random_model, run_tiny_model
    # every input is checked before anything is written or run
    model, source = random_model(args.d, args.layers, seed=args.seed, lanes=args.lanes)
    prompt = list(args.prompt.encode())
    if not prompt or max(prompt) >= model.config.vocab:
        raise UsageError(f"--prompt must be non-empty text of bytes below the model's "
                         f"vocabulary ({model.config.vocab}), got {args.prompt!r}")
    if args.tokens < 1:
        raise UsageError(f"--tokens must be at least 1, got {args.tokens}")
    try:
        unit = size_unit(model, lanes=args.lanes)
    except (TypeError, ValueError) as e:
        raise UsageError(f"invalid bitlinear-unit parameter: {e}") from None
    out = check_output_dir("-o/--output", args.output)
    print(f"== 1. Verilog for every unit (default parameters) -> {out}/")
    for name, cls in UNITS.items():
        try:
            paths = write_unit(cls(), out)
        except OSError as e:
            raise UsageError(f"-o/--output {out}: cannot write: {e.strerror}") from None
        print(f"   {name:20} {paths[0]}")
    print("\n== 2. The tiny MatMul-free LM, every BitLinear on the RTL (Icarus and Verilator)")
    status = run_tiny_model(model, source, f"random, seed {args.seed}", prompt, args.tokens,
                            simulators(args.sim), unit)
    print("\n== 3. Projection for the real models (batch 1, 128-token prompt, 128 generated; "
          "mmfree project --help)")
    print(report.preset_table())
    print("\n" + ("demo: all checks passed" if status == OK else "demo: FAILED (see above)"))
    print(f"""
Outputs: every unit's Verilog, NAME.md and NAME.json (ports, stream payload fields, latency)
in {out}/; simulator builds in {cosim_build_root()}/ (reused by the next run).
Next:
  mmfree cosim-unit ternary-core --lanes 32 --waves   co-simulate one unit, keep waves.fst
  mmfree cosim --tokens 16 --json run.json            the tiny LM on the RTL, longer
  mmfree project --hw ecp5-85k --model 370M           the cycle model on one preset
  mmfree synth ternary-core --target ecp5-85k         resources and Fmax on an FPGA
  mmfree doctor                                       check the simulators
  mmfree COMMAND --help                               every option, with its default""")
    return status
