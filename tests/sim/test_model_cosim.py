"""The tiny MatMul-free LM with every BitLinear on the RTL, on both simulators: tokens and
logits identical to the golden integer pipeline, cycles per token equal to the cycle model."""


import pytest

from mmfree.golden.tiny_model import TinyConfig, TinyModel
from mmfree.sim.model_cosim import run_model
from mmfree.spec import BitLinearUnitSpec

from ..conftest import require_simulator

SIMS = ["icarus", "verilator"]
# two model sizes on one unit build (32 lanes, max K 256): 1 layer d=64 and 2 layers d=96
SIZES = [(64, 1), (96, 2)]
UNIT = BitLinearUnitSpec(lanes=32, max_dim=256)


@pytest.mark.cosim
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("d,layers", SIZES, ids=lambda v: str(v))
def test_tiny_model_on_rtl(sim, d, layers, seed):
    require_simulator(sim)
    cfg = TinyConfig(d=d, layers=layers)
    for weight_seed in (seed, seed + 1, seed + 2):
        model = TinyModel.random(cfg, weight_seed)
        spec = {"d": d, "layers": layers, "vocab": cfg.vocab, "inter": cfg.inter,
                "seed": weight_seed}
        print(f"{sim} d={d} layers={layers} weight seed {weight_seed} (MMFREE_SEED={seed})")
        run = run_model(model, spec, [72], 2, sim, UNIT, seed=seed)
        assert run.tokens == run.golden and len(run.tokens) == 2
        assert run.logits_equal and run.mismatches == 0
        assert run.step_cycles == [run.predicted_cycles] * 2, run.step_cycles
        assert run.ok
