"""Amaranth-simulator test of the multi-core BitLinear unit with a small AXI4 read memory
per port written here: every row sum, D and E bit-exact and in row order, with random
back-pressure on ``y``; with ``y`` always ready, each product's cycles equal
:meth:`MultiCoreBitLinearSpec.cycles` (the formula the engine's cycle model uses)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from mmfree.golden.quantiser import NormBitLinear
from mmfree.golden.weight_image import interleave_rows, weight_image
from mmfree.hdl.multicore_bitlinear import MultiCoreBitLinear
from mmfree.spec.multicore_bitlinear import CYCLE_TOLERANCE, matrix_addresses

LATENCY = 5  # AR transfer to the burst's first R transfer, cycles


class Memory:
    """One channel: takes every AR request, answers each burst in order (with its ARID),
    its first beat ``LATENCY`` cycles after the request, then one beat per cycle while
    ``rready``. ``images``: slot -> bytes, the slot in the address bits from ``shift``."""

    def __init__(self, port, images: dict[int, bytes], beat_bytes: int, shift: int) -> None:
        self.port, self.images, self.nb, self.shift = port, images, beat_bytes, shift
        self.queue: list[list[int]] = []  # [ready cycle, address, beats left, id]

    def drive(self, ctx, now: int) -> None:
        head = self.queue[0] if self.queue and self.queue[0][0] <= now else None
        ctx.set(self.port.rvalid, head is not None)
        if head is not None:
            img = self.images[head[1] >> self.shift]
            a = head[1] & ((1 << self.shift) - 1)
            ctx.set(self.port.rdata, int.from_bytes(img[a:a + self.nb].ljust(
                self.nb, b"\0"), "little"))
            ctx.set(self.port.rlast, head[2] == 1)
            ctx.set(self.port.rid, head[3])

    def sample(self, ctx, now: int) -> None:
        head = self.queue[0] if self.queue and self.queue[0][0] <= now else None
        if head is not None and ctx.get(self.port.rready):
            head[1] += self.nb
            head[2] -= 1
            if not head[2]:
                self.queue.pop(0)
        if ctx.get(self.port.arvalid):
            self.queue.append([now + LATENCY, ctx.get(self.port.araddr),
                               ctx.get(self.port.arlen) + 1, ctx.get(self.port.arid)])


@pytest.mark.parametrize("cores,lanes,packed,width,channels", [
    (3, 4, False, 32, 0), (2, 5, True, 32, 0), (4, 4, False, 32, 2)])
def test_rows_in_order_exact_and_cycles(cores, lanes, packed, width, channels, seed):
    """``channels`` 2 of 4 cores: two cores per channel through the AR arbiter, each in its
    slot of the channel's addresses; cycles then an estimate (within CYCLE_TOLERANCE)."""
    dut = MultiCoreBitLinear(cores=cores, lanes=lanes, max_dim=40, packed=packed,
                             data_width=width, max_burst=4, channels=channels)
    spec = dut.spec
    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    shapes = [(7, 4 * lanes), (cores, 3 * lanes + 1), (2 * cores + 1, 40)]
    mats = [rng.integers(-1, 2, (m, k)) for m, k in shapes]
    mats[1][:] = -1  # extremes: all -1 weights
    addrs = matrix_addresses(shapes, spec)
    images: list[dict[int, bytes]] = [{} for _ in range(spec.ports)]
    for c in range(cores):
        img = bytearray(addrs[-1] + 4096)
        for w, a in zip(mats, addrs, strict=True):
            share = weight_image(interleave_rows(w, cores)[c], lanes, packed)
            img[a:a + len(share)] = share
        images[spec.channel_of(c)][spec.slot_of(c)] = bytes(img)
    arith = NormBitLinear(spec.fmt, spec.acc_width)
    results = []

    async def bench(ctx):
        mems = [Memory(getattr(dut, f"axi{c}"), images[c], width // 8, spec.slot_shift)
                for c in range(spec.ports)]
        for c in range(spec.ports):
            ctx.set(getattr(dut, f"axi{c}").arready, 1)
        ctx.set(dut.scale.ready, 1)
        now = 0
        for stalled in (True, False):
            for (m, k), w, a in zip(shapes, mats, addrs, strict=True):
                vec = rng.integers(-32768, 32768, k)
                norm = rng.integers(-32768, 32768, k)
                if w.min() == -1 and w.max() == -1:
                    vec[:] = -32768
                g = -(-k // lanes)
                mv = np.zeros(g * lanes, dtype=np.int64)
                nv = np.zeros(g * lanes, dtype=np.int64)
                mv[:k], nv[:k] = vec, norm
                xi, sent_cmd, ys, scale, first, last = 0, False, [], None, None, None
                while len(ys) < m:
                    for mem in mems:
                        mem.drive(ctx, now)
                    ctx.set(dut.x.valid, xi < g)
                    if xi < g:
                        ctx.set(dut.x.payload, {
                            "data": [int(v) for v in mv[xi * lanes:(xi + 1) * lanes]],
                            "weight": [int(v) for v in nv[xi * lanes:(xi + 1) * lanes]],
                            "last": xi == g - 1})
                    ctx.set(dut.cmd.valid, not sent_cmd)
                    ctx.set(dut.cmd.payload, {"addr": a, "rows": m,
                                              "rows_pc": -(-m // cores), "groups": g})
                    y_ready = not stalled or rng.random() < 0.5
                    ctx.set(dut.y.ready, y_ready)
                    x_go = xi < g and ctx.get(dut.x.ready)
                    c_go = not sent_cmd and ctx.get(dut.cmd.ready)
                    y_go = ctx.get(dut.y.valid) and y_ready
                    y_val = ctx.get(dut.y.payload)
                    if ctx.get(dut.scale.valid):
                        scale = ctx.get(dut.scale.payload)
                    for mem in mems:
                        mem.sample(ctx, now)
                    await ctx.tick()
                    if x_go:
                        first = now if first is None else first
                        xi += 1
                    sent_cmd |= c_go
                    if y_go:
                        ys.append(int(y_val))
                        last = now
                    now += 1
                ctx.set(dut.x.valid, 0)
                ctx.set(dut.cmd.valid, 0)
                for _ in range(30):  # the padding rows drain, the memories go idle
                    for mem in mems:
                        mem.drive(ctx, now)
                    for mem in mems:
                        mem.sample(ctx, now)
                    await ctx.tick()
                    now += 1
                results.append((stalled, m, k, w, vec, norm, ys, scale, last - first + 1,
                                ctx.get(dut.error)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(results) == 2 * len(shapes)
    for stalled, m, k, w, vec, norm, ys, scale, cycles, error in results:
        acc, d, e = arith.device(vec, norm, w.astype(np.int8))
        assert ys == [int(v) for v in acc], (stalled, m, k)
        assert (int(scale.scale), int(scale.exp)) == (d, e)
        assert not error
        if not stalled:
            want = spec.cycles(m, k, LATENCY, 1.0)
            print(f"{m} x {k}: {cycles} cycles, predicted {want}")
            if spec.sharing == 1:
                assert cycles == want, (m, k)
            else:
                assert abs(cycles - want) <= CYCLE_TOLERANCE * want, (m, k, cycles, want)
