"""``mmfree demo``: the main job in one command."""

from __future__ import annotations

import argparse

from ..spec import UNITS
from .errors import BAD_INPUT, CHECK_FAILED, OK, UsageError
from .options import add_sim_option, check_output_dir, simulators

#: the engine's lanes in the demo (as ``mmfree run --backend rtl``)
LANES = 16

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mmfree demo``."""
    d = sub.add_parser("demo", help="the main job: generate the units, run the shipped "
                                    "HGRN-Bit whole tokens on the engine's RTL, project the "
                                    "real models",
                       description="Generate every unit's Verilog; run the shipped HGRN-Bit "
                                   "checkpoint (the released architecture, d 128) token by "
                                   "token on the whole-token engine's RTL on Icarus and "
                                   "Verilator (logits bit-identical to the integer backend, "
                                   "cycles per token equal to the engine's formula, as "
                                   "'mmfree run --backend rtl'); print the 370M/1.3B/2.7B "
                                   "projections on the hardware presets.")
    d.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    d.add_argument("--ids", default="1",
                   help="prompt token ids, comma-separated (default 1: the engine takes "
                        "about 2 minutes per token on Icarus, 20 s on Verilator, so the "
                        "demo runs two steps)")
    d.add_argument("--tokens", type=int, default=2, help="tokens to generate (default 2)")
    d.add_argument("--lanes", type=int, default=LANES, metavar="N",
                   help="the engine's lanes, 1..64, dividing the model's MLP width 256 "
                        f"(default {LANES})")
    add_sim_option(d)


def run(args: argparse.Namespace) -> int:
    from .. import lm
    from ..checkpoint import CheckpointError, open_checkpoint
    from ..flow.generate import write_unit
    from ..model import report
    from ..sim.cosim import build_root as cosim_build_root
    from ..sim.lm_cosim import size_engine
    from ..tiny_checkpoint import default_path
    # every input is checked before anything is written or run
    if args.tokens < 1:
        raise UsageError(f"--tokens must be at least 1, got {args.tokens}")
    try:
        ckpt = open_checkpoint(default_path())
        model = ckpt.load_model()
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    vocab = model.config.vocab_size
    try:
        prompt = [int(v) for v in args.ids.split(",")]
    except ValueError:
        raise UsageError(f"--ids must be comma-separated token ids, got {args.ids!r}") from None
    if not prompt or not all(0 <= t < vocab for t in prompt):
        raise UsageError(f"--ids: token ids must be in 0..{vocab - 1}, got {args.ids!r}")
    try:
        size_engine(model.config, lanes=args.lanes)
    except (TypeError, ValueError) as e:
        raise UsageError(f"--lanes: {e}") from None
    out = check_output_dir("-o/--output", args.output)
    print(f"== 1. Verilog for every unit (default parameters) -> {out}/")
    for name, cls in UNITS.items():
        try:
            paths = write_unit(cls(), out)
        except OSError as e:
            raise UsageError(f"-o/--output {out}: cannot write: {e.strerror}") from None
        print(f"   {name:20} {paths[0]}")
    print("\n== 2. The shipped HGRN-Bit, whole tokens on the engine's RTL (mmfree run "
          "--backend rtl)")
    status = OK
    for sim in simulators(args.sim):
        print(f"-- {sim}")
        try:
            _, code = lm.run_engine_checked(model, default_path(), prompt, args.tokens, sim,
                                            args.lanes, lm.Sampler(), None, {})
        except lm.InputError as e:
            print(f"{sim}: not run: {e}")
            code = BAD_INPUT
        except lm.RtlFailed:
            code = CHECK_FAILED
        status = max(status, code)
    print("\n== 3. Projection for the real models (batch 1, 128-token prompt, 128 generated; "
          "mmfree project --help)")
    print(report.preset_table())
    print("\n" + ("demo: all checks passed" if status == OK else "demo: FAILED (see above)"))
    print(f"""
Outputs: every unit's Verilog, NAME.md and NAME.json (ports, stream payload fields, latency)
in {out}/; simulator builds in {cosim_build_root()}/ (reused by the next run).
Next:
  mmfree cosim-unit ternary-core --lanes 32 --waves   co-simulate one unit, keep waves.fst
  mmfree run --backend rtl --ids 1,72 --tokens 16     the tiny LM on the engine, longer
  mmfree run --backend rtl --rtl-unit bitlinear --ids 1,72   the BitLinear co-processor
  mmfree project --hw ecp5-85k --model 370M           the cycle model on one preset
  mmfree synth ternary-core --target ecp5-85k         resources and Fmax on an FPGA
  mmfree doctor                                       check the simulators
  mmfree COMMAND --help                               every option, with its default""")
    return status
