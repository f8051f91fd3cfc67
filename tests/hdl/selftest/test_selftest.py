# amaranth: UnusedElaboratable=no
"""The board self-test in Amaranth's simulator: pattern generator bit-exact with its golden
model, pass after N results, fail on an injected error or a stuck unit, the board top's LEDs
and UART status line."""

import itertools
import random

import pytest
from amaranth.sim import Simulator

from mmfree.flow.boards import BOARDS
from mmfree.golden.selftest import expected_results, pattern
from mmfree.hdl.selftest.board_top import SelfTestBoard, status_line
from mmfree.hdl.selftest.checker import SelfTestChecker
from mmfree.hdl.selftest.pattern import PatternGenerator
from mmfree.hdl.selftest.selftest import SelfTest
from mmfree.hdl.selftest.uart_tx import UartTx, uart_divisor


def _run(dut, bench, deadline: float = 1e-2) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run_until(deadline) if deadline else sim.run()


@pytest.mark.parametrize("lanes,act,groups", [(4, 8, 3), (1, 2, 1), (16, 8, 4)])
def test_pattern_generator_is_bit_exact(lanes, act, groups, seed):
    rng = random.Random(seed)
    gen = PatternGenerator(lanes, act, groups, seed=(seed % ((1 << 31) - 1)) + 1)
    n = 40
    ref = pattern(lanes, act, groups, n, seed=gen.seed)
    got = []

    async def bench(ctx):
        while len(got) < n:
            ready = rng.random() < 0.6
            ctx.set(gen.beat.ready, ready)
            p = ctx.get(gen.beat.payload)
            assert ctx.get(gen.beat.valid)
            if ready:
                got.append(([int(c) for c in p.w.codes], [int(v) for v in p.x], int(p.w.last)))
            await ctx.tick()

    _run(gen, bench, 0)
    for i, (codes, x, last) in enumerate(got):
        assert codes == ref.codes[i].tolist(), i
        assert x == ref.x[i].tolist(), i
        assert last == ref.last[i], i


def test_selftest_passes_then_fails_on_injection():
    lanes, groups, n = 4, 3, 40
    dut = SelfTest(lanes=lanes, groups=groups, pass_after=n)
    seen = {}

    async def bench(ctx):
        cycles = 0
        while not ctx.get(dut.passed) and cycles < n * groups * (lanes + 1) + 200:
            await ctx.tick()
            cycles += 1
        seen["cycles"] = cycles
        seen["results"] = ctx.get(dut.results)
        assert not ctx.get(dut.failed)
        ctx.set(dut.inject, 1)
        await ctx.tick().repeat(groups * (lanes + 1) * 3)
        ctx.set(dut.inject, 0)
        seen["after"] = (ctx.get(dut.passed), ctx.get(dut.failed), ctx.get(dut.mismatch),
                         ctx.get(dut.timed_out), ctx.get(dut.first_got),
                         ctx.get(dut.first_expected))

    _run(dut, bench, 0)
    assert seen["results"] == n
    # the checker's pace: one row per groups * (lanes + 1) cycles, plus the pipeline fill
    assert seen["cycles"] <= n * groups * (lanes + 1) + 20, seen
    passed, failed, mismatch, timed_out, got, want = seen["after"]
    assert (passed, failed, mismatch, timed_out) == (0, 1, 1, 0)
    assert got == want ^ 1
    assert want in expected_results(lanes, 8, 32, groups, 2 * n).tolist()


def test_checker_times_out_without_results():
    chk = SelfTestChecker(lanes=2, pass_after=1, timeout=50)

    async def bench(ctx):
        ctx.set(chk.beat.valid, 1)  # beats arrive, results never do
        await ctx.tick().repeat(49)
        assert not ctx.get(chk.timed_out)
        await ctx.tick().repeat(3)
        assert ctx.get(chk.timed_out) and ctx.get(chk.failed) and not ctx.get(chk.passed)

    _run(chk, bench, 0)


def test_uart_tx_frames_bytes():
    div = 5
    dut = UartTx(div)
    data = [0x55, 0x00, 0xFF, 0xA3]
    line = []

    async def bench(ctx):
        for byte in data:
            ctx.set(dut.data.valid, 1)
            ctx.set(dut.data.payload, byte)
            await ctx.tick().until(dut.data.ready)
        ctx.set(dut.data.valid, 0)
        await ctx.tick().repeat(12 * div)

    async def monitor(ctx):
        async for _ in ctx.tick():
            line.append(ctx.get(dut.tx))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_testbench(monitor, background=True)
    sim.run_until(len(data) * 12 * div * 1e-6 + 1e-4)
    assert decode_uart(line, div) == bytes(data)
    assert uart_divisor(12_000_000, 115200) == 104
    with pytest.raises(ValueError):
        uart_divisor(1_000_000, 115200)


def decode_uart(samples: list[int], div: int) -> bytes:
    """8N1 bytes from per-cycle samples of a TX line (checks the stop bits)."""
    out, i = bytearray(), 0
    while i < len(samples):
        if samples[i] == 0:
            mid = i + div // 2
            if mid + 9 * div >= len(samples):
                break
            bits = [samples[mid + k * div] for k in range(1, 9)]
            assert samples[mid] == 0 and samples[mid + 9 * div] == 1, "framing error"
            out.append(sum(b << k for k, b in enumerate(bits)))
            i = mid + 9 * div
        else:
            i += 1
    return bytes(out)


@pytest.mark.parametrize("inject", [False, True])
def test_board_top_leds_and_status_line(inject):
    board = BOARDS["icebreaker"]
    div, half = 4, 1200  # the first line (at 1200 cycles) comes after the pass (~760)
    dut = SelfTestBoard(board, inject_error=inject, pass_after=20, heartbeat_cycles=half,
                        divisor=div)
    samples, leds = [], []

    async def bench(ctx):
        ctx.set(dut.btn_n, 1)  # released (active low)
        for _ in range(8 * half):
            await ctx.tick()
            samples.append(ctx.get(dut.tx))
            leds.append((ctx.get(dut.led1), ctx.get(dut.led_g_n), ctx.get(dut.led_r_n)))

    async def clock(ctx):  # the board's oscillator drives the clock pin
        while True:
            ctx.set(dut.clk12, 1)
            await ctx.delay(0.5e-6)
            ctx.set(dut.clk12, 0)
            await ctx.delay(0.5e-6)

    sim = Simulator(dut)
    sim.add_process(clock)
    sim.add_testbench(bench)
    sim.run()
    lines = decode_uart(samples, div).split(b"\r\n")
    heartbeat = [h for h, _, _ in leds]
    assert 6 <= sum(a != b for a, b in itertools.pairwise(heartbeat)) <= 8
    final = leds[-1]
    if inject:
        assert lines[0].startswith(b"FAIL") and final[1:] == (1, 0)  # red on (active low)
    else:
        assert lines[0].startswith(b"PASS ") and final[1:] == (0, 1)  # green on
        count = int(lines[0][5:], 16)
        assert count >= 20
        assert status_line("pass", count) == lines[0] + b"\r\n"
    assert len(lines) >= 3 and all(len(ln) == 13 for ln in lines[:3])


@pytest.mark.parametrize("kwargs", [{"lanes": 65}, {"pass_after": 0}, {"seed": 0},
                                    {"groups": 0}, {"fifo_depth": 0}, {"acc_width": 8}])
def test_selftest_rejects_bad_parameters(kwargs):
    with pytest.raises((ValueError, TypeError)):
        SelfTest(**kwargs)
