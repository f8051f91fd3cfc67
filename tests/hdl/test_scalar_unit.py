"""The scalar unit against the contract's sc_rmsnorm_scale and sc_rescale (Amaranth
simulator): random and corner operands, and the cycle count of every operation."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from mmfree.golden import hgrn_fixed as fx
from mmfree.hdl.scalar_unit import ScalarUnit
from mmfree.spec.engine import scalar_cycles


def _cases(rng: np.random.Generator, cfg: fx.FixedConfig, sumsq_width: int,
           scale_width: int) -> list[tuple]:
    """(rescale, operands, expected (g, shift)) for random and corner operands."""
    out = []
    top_n, top_d = (1 << sumsq_width) - 1, (1 << scale_width) - 1
    norms = [(0, 0), (0, 1), (1, 0), (top_n, 0), (1 << (sumsq_width - 1), 0), (3, 5)]
    norms += [(int(rng.integers(0, 1 << 62)) >> int(rng.integers(62 - sumsq_width, 62)),
               int(rng.integers(0, 1 << 16))) for _ in range(20)]
    for n, eps in norms:
        k = int(rng.integers(1, 65537))
        sk = fx.sqrt_mantissa(k, cfg.scale_bits)
        frac = int(rng.choice([cfg.act_frac, cfg.res_frac]))
        want = fx.sc_rmsnorm_scale(n, eps, sk, 0, frac, cfg)
        out.append((0, {"sumsq": n, "eps": eps, "k_m": sk[0], "k_e": sk[1], "out_frac": frac},
                    want))
    scales = [0, 1, top_d, 1 << (scale_width - 1)]
    scales += [int(rng.integers(0, top_d + 1)) >> int(rng.integers(0, scale_width))
               for _ in range(20)]
    for d in scales:
        e = int(rng.integers(-60, 60))
        const = (int(rng.integers(1 << (cfg.scale_bits - 1), 1 << cfg.scale_bits)),
                 int(rng.integers(-20, 80)))
        frac = int(rng.choice([cfg.act_frac, cfg.res_frac]))
        want = fx.sc_rescale(d, e, const, frac, cfg)
        out.append((1, {"d": d, "e": e, "c_m": const[0], "c_e": const[1], "out_frac": frac},
                    want))
    return out


@pytest.mark.parametrize("rsqrt_bits, scale_bits", [(17, 17), (9, 12)])
def test_scalar_unit_is_the_contract(rsqrt_bits, scale_bits, seed):
    cfg = fx.FixedConfig(rsqrt_bits=rsqrt_bits, scale_bits=scale_bits)
    sumsq_width, scale_width = 52, 2 * cfg.bitlinear.mant_bits - 1
    dut = ScalarUnit(sumsq_width=sumsq_width, scale_width=scale_width,
                     rsqrt_bits=rsqrt_bits, scale_bits=scale_bits,
                     bitlinear_s=cfg.bitlinear.rsqrt_frac)
    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    cases = _cases(rng, cfg, sumsq_width, scale_width)
    seen = []

    async def bench(ctx):
        for rescale, ops, want in cases:
            for k, v in ops.items():
                ctx.set(getattr(dut, k), v)
            ctx.set(dut.rescale, rescale)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles = 0
            while ctx.get(dut.busy):
                await ctx.tick()
                cycles += 1
            seen.append((rescale, ops, (ctx.get(dut.g), ctx.get(dut.shift)), tuple(want),
                         cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(seen) == len(cases)
    for rescale, ops, got, want, cycles in seen:
        assert got == want, (rescale, ops)
        assert cycles == scalar_cycles(bool(rescale), rsqrt_bits) == dut.cycles(bool(rescale))
