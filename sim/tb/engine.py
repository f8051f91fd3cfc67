"""cocotb testbench: the whole-token engine running HGRN-Bit tokens.

Configuration from ``$MMFREE_TB_CONFIG`` (JSON): the engine's parameters
(:class:`mmfree.spec.engine.EngineSpec`) and ``model``: ``config`` (a ``config.json``
dict), ``seed`` (of :meth:`HGRNBitModel.random`), ``tokens`` per sequence and
``sequences`` (default :data:`DEFAULT_MODEL`), or for ``test_model`` a ``checkpoint``
with the prompt and sampling. The host side is :mod:`mmfree.spec.program`: the program
compiled from the config, the VMEM image and the bound constants are loaded once; per
token the embedding row goes into ``x``, ``start``, the weights stream on ``w`` in
program order, ``done`` gives the argmax and the logits are read back. Every logit and
argmax is compared with
:func:`mmfree.golden.hgrn_fixed.fixed_token_step` (through the reference interpreter, which
equals it), every unstalled token's cycles with :func:`mmfree.spec.engine.program_cycles`.

With ``cores`` > 0 the weights do not stream: each AXI port ``axi<k>`` has its own
cocotbext-axi memory (:class:`mmfree.sim.kit.axi_memory.AxiReadMemory`, a channel) with
the configuration's ``mem_latency`` (cycles, default 8) and R bandwidth limit ``mem_rate``
(``[n, d]``: at most ``n`` beats in every ``d`` cycles, default ``[1, 1]``), holding the
share (:func:`mmfree.golden.weight_image.interleave_rows`) of every matrix of each core it
serves (one per port, or ``cores / channels`` through the engine's AR arbiter, each core in
its slot of the channel's addresses) at the address of the host's memory map
(:meth:`EngineSpec.matrix_addresses`), written once; the
predicted cycles take that latency and rate; where they are an estimate
(:meth:`EngineSpec.cycles_exact`: a channel limits the fetch) a token's cycles must be
within :data:`~mmfree.spec.multicore_bitlinear.CYCLE_TOLERANCE` of them, else equal.
``test_weight_stalls`` then pauses the R channels at random instead of the weight stream.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge

from mmfree.golden import hgrn_fixed as fx
from mmfree.golden.hgrn_bit import HGRNBitConfig, HGRNBitModel
from mmfree.golden.ternary import encode_codes
from mmfree.golden.weight_image import interleave_rows, weight_image
from mmfree.sim.kit import Bench, Report, config, random_pauses
from mmfree.sim.kit.axi_memory import AxiReadMemory
from mmfree.spec.engine import EngineSpec, compile_token, program_cycles
from mmfree.spec.multicore_bitlinear import CYCLE_TOLERANCE
from mmfree.spec.program import Interpreter, weight_order

REPORT = Report(tokens=0)
SPEC: EngineSpec = REPORT.spec(EngineSpec)
N, W = SPEC.lanes, SPEC.width
#: without a ``model`` in the configuration (``mmfree cosim-unit engine``): a small random
#: checkpoint, two tokens in each of two sequences
DEFAULT_MODEL = {"config": {"vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 1,
                            "intermediate_size": 32}, "seed": 1, "tokens": 2, "sequences": 2}
MODEL = config().get("model") or DEFAULT_MODEL
MEM_LATENCY = int(config().get("mem_latency", 8))
MEM_RATE = tuple(config().get("mem_rate", [1, 1]))


class Host:
    """The host: the model, its program and image, and the engine's drivers."""

    def __init__(self, dut, name: str, w_stall: float = 0.0,
                 model: HGRNBitModel | None = None) -> None:
        self.tb = Bench(dut, REPORT, SPEC)
        _, self.rng = self.tb.rngs(name)
        if model is None:
            cfg = HGRNBitConfig.from_dict({"model_type": "hgrn_bit", **MODEL["config"]})
            model = HGRNBitModel.random(cfg, MODEL["seed"])
        self.fm = fx.FixedModel(model)
        self.program = compile_token(model.config, self.fm.cfg, N)
        self.ref = Interpreter(self.program, self.fm)
        self.words = SPEC.encode(self.program, self.ref.image)
        self.load, self.prog, self.rd, self.start = (
            self.tb.source(p) for p in ("load", "prog", "rd", "start"))
        self.rd_data, self.done = self.tb.sink("rd_data"), self.tb.sink("done")
        if SPEC.cores:
            self.w = None
            self.beats = []
            self.mems = self.memories(w_stall)
        else:
            self.w = self.tb.source("w", w_stall)
            self.beats = [b for _, codes in weight_order(self.program, self.fm)
                          for b in self.matrix_beats(codes)]
        self.exact = SPEC.cycles_exact(self.program, MEM_LATENCY, MEM_RATE[0] / MEM_RATE[1])
        self.want_cycles = program_cycles(self.program, SPEC.vector(), SPEC.bitlinear(),
                                          MEM_LATENCY, MEM_RATE[0] / MEM_RATE[1])

    def memories(self, stall: float) -> list[AxiReadMemory]:
        """One memory per AXI port (channel), holding the share of every matrix of each
        core it serves at the host's memory map (core ``c`` on channel ``c mod K``, in its
        slot: :meth:`MultiCoreBitLinearSpec.core_address`); R paused at random with
        probability ``stall``, else limited to ``MEM_RATE``."""
        bl = SPEC.bitlinear()
        addrs = SPEC.matrix_addresses(self.program)
        shares = [interleave_rows(codes, SPEC.cores)
                  for _, codes in weight_order(self.program, self.fm)]
        images = [[weight_image(blk, N, SPEC.packed) for blk in share] for share in shares]
        # the address space (a sparse memory: only the written 4 KiB pages are stored)
        size = (max(4096, addrs[-1] + max(len(img) for img in images[-1]) + 64)
                if bl.sharing == 1 else 1 << SPEC.addr_width)
        mems = []
        for k in range(bl.ports):
            kw = ({"pauses": random_pauses(self.tb.rng, stall)} if stall
                  else {"rate": MEM_RATE})
            mems.append(AxiReadMemory(self.tb.dut, f"axi{k}", size=size, latency=MEM_LATENCY,
                                      **kw))
        for c in range(SPEC.cores):
            for addr, img in zip(addrs, images, strict=True):
                mems[bl.channel_of(c)].write(bl.core_address(c, addr), img[c])
        return mems

    @staticmethod
    def matrix_beats(codes: np.ndarray) -> list[dict]:
        rows, k = codes.shape
        g = -(-k // N)
        enc = np.zeros((rows, g * N), dtype=np.int64)
        enc[:, :k] = encode_codes(codes)
        return [{"codes": enc[r, i * N:(i + 1) * N], "last": int(i == g - 1),
                 "final": int(i == g - 1 and r == rows - 1)}
                for r in range(rows) for i in range(g)]

    def write_region(self, elements: np.ndarray, addr: int) -> None:
        """Host writes of ``elements`` from element address ``addr`` (word-aligned)."""
        g = -(-len(elements) // N)
        padded = np.zeros(g * N, dtype=np.int64)
        padded[:len(elements)] = elements
        self.load.send([{"addr": addr // N + j, "data": padded[j * N:(j + 1) * N]}
                        for j in range(g)])

    async def boot(self) -> None:
        """Load the program and the VMEM image (once per checkpoint)."""
        self.prog.send([{"addr": i, "data": ins} for i, ins in enumerate(self.words)])
        self.write_region(self.ref.image.vmem, 0)
        while not (self.load.idle and self.prog.idle):
            await RisingEdge(self.tb.dut.clk)
        await ClockCycles(self.tb.dut.clk, 2)

    def new_sequence(self) -> None:
        """Zero every layer's state, on the engine and in the reference."""
        for n in range(self.program.config.num_hidden_layers):
            addr, d = self.program.memory.regions[f"state.{n}"]
            self.write_region(np.zeros(d, dtype=np.int64), addr)
        self.ref.reset()

    async def token(self, token: int) -> tuple[np.ndarray, int, int]:
        """One token on the engine: (logits, argmax, cycles from start to done)."""
        addr, _ = self.program.memory.regions["x"]
        self.write_region(fx.embed_fixed(self.fm, token), addr)
        while not self.load.idle:
            await RisingEdge(self.tb.dut.clk)
        first_start = len(self.start.sent_cycles)
        self.start.send([0])
        if self.w is not None:
            self.w.send(self.beats)
        beat = await self.done.recv()
        cycles = self.done.cycles[-1] - self.start.sent_cycles[first_start]
        l_addr, v = self.program.memory.regions["logits"]
        g = -(-v // N)
        self.rd_data.clear()
        self.rd.send([l_addr // N + j for j in range(g)])
        words = [await self.rd_data.recv() for _ in range(g)]
        logits = np.concatenate(words)[:v]
        return logits, int(beat["group"]) * N + int(beat["lane"]), cycles

    def check(self, label: str, token: int, logits: np.ndarray, argmax: int,
              cycles: int | None) -> int:
        want = self.ref.step(token)
        REPORT["tokens"] += 1
        bad = REPORT.compare(self.tb.log, label, [logits, argmax], [want.logits, want.argmax])
        if cycles is not None:
            want = self.want_cycles["total"]
            if self.exact or abs(cycles - want) > CYCLE_TOLERANCE * want:
                bad += REPORT.check_cycles(self.tb.log, label, cycles, want, record=[label])
            else:  # an estimate, within the tolerance: counted and recorded, not failed
                REPORT["cycle_checks"] += 1
                REPORT.setdefault("cycles", []).append([label, cycles, want])
        return bad


async def run_sequences(host: Host, stalled: bool) -> int:
    bad = 0
    for seq in range(MODEL.get("sequences", 1)):
        if seq:
            await host.tb.reset(int(host.rng.integers(1, 4)))
            host.done.clear()
        host.new_sequence()
        tokens = host.rng.integers(0, host.program.config.vocab_size, MODEL.get("tokens", 2))
        for token in tokens:
            t0 = time.monotonic()
            logits, argmax, cycles = await host.token(int(token))
            REPORT.setdefault("wall_s", []).append(time.monotonic() - t0)
            bad += host.check(f"seq {seq} token {token}", int(token), logits, argmax,
                              None if stalled else cycles)
        bad += await host.tb.flag("error", 0, f"sequence {seq} (well-formed weight rows)")
        await RisingEdge(host.tb.dut.clk)
    return bad


@cocotb.test(skip="config" not in MODEL)
async def test_tokens(dut):
    """Whole tokens of a random checkpoint, two sequences with a reset between them: the
    logits and argmax bit-identical, every token's cycles = the program's formula."""
    host = Host(dut, "tokens")
    await host.tb.start()
    await host.boot()
    bad = await run_sequences(host, stalled=False)
    REPORT["predicted_cycles"] = host.want_cycles["total"]
    REPORT.write()
    assert bad == 0


@cocotb.test(skip="config" not in MODEL)
async def test_weight_stalls(dut):
    """Random stalls on the weight stream, a reset between sequences: results unchanged."""
    host = Host(dut, "weight_stalls", w_stall=0.4)
    await host.tb.start()
    await host.boot()
    bad = await run_sequences(host, stalled=True)
    bad += host.tb.reset_violations()
    REPORT.write()
    assert bad == 0


@cocotb.test(skip="config" not in MODEL or not MODEL.get("reset_mid_token"))
async def test_reset_mid_token(dut):
    """A reset in the middle of a token (at a random cycle of the program, the seed and the
    cycle logged and reported), in the second token of a sequence so that a layer's state
    may be half updated. The contract (:class:`mmfree.hdl.engine.Engine`): the run stops,
    every unit empties, VMEM and the program memory keep their contents, the BitLinear
    unit's error is clear; the host reloads nothing but the recurrent states, which it
    zeroes for a new sequence. The tokens that follow must be bit-identical to the
    fixed-point model with cycles = :func:`program_cycles`, without reloading the program
    or the image. Run ``rounds`` times (default 1)."""
    host = Host(dut, "reset_mid_token")
    await host.tb.start()
    await host.boot()
    total = host.want_cycles["total"]
    bad = 0
    for rnd in range(int(MODEL.get("rounds", 1))):
        host.new_sequence()
        first, cut = (int(t) for t in host.rng.integers(0, host.program.config.vocab_size, 2))
        logits, argmax, cycles = await host.token(first)
        bad += host.check(f"round {rnd} before the reset", first, logits, argmax, cycles)
        # the interrupted token: start it, let the program run a random number of cycles
        # (at least one, and short of the done transfer), then reset for 1 to 3 cycles
        at = int(host.rng.integers(1, max(2, total - 2)))
        host.tb.log.info("round %d: reset %d cycles into a token of %d", rnd, at, total)
        REPORT.setdefault("reset_at", []).append(at)
        addr, _ = host.program.memory.regions["x"]
        host.write_region(fx.embed_fixed(host.fm, cut), addr)
        while not host.load.idle:
            await RisingEdge(host.tb.dut.clk)
        dones = len(host.done)
        host.start.send([0])
        host.w.send(host.beats)
        while not host.start.idle:  # the start transfer
            await RisingEdge(host.tb.dut.clk)
        await ClockCycles(host.tb.dut.clk, at)
        if len(host.done) != dones:
            host.tb.log.error("round %d: done before the reset (%d cycles)", rnd, at)
            bad += 1
        await host.tb.reset(int(host.rng.integers(1, 4)), offer=[host.start, host.w])
        host.done.clear()
        REPORT["resets"] = REPORT.get("resets", 0) + 1
        bad += await host.tb.flag("error", 0, f"round {rnd}: the reset mid-token")
        # the host's part of the contract: a new sequence (states zeroed), nothing else
        host.new_sequence()
        for token in host.rng.integers(0, host.program.config.vocab_size, 2):
            logits, argmax, cycles = await host.token(int(token))
            bad += host.check(f"round {rnd} after the reset, token {token}", int(token),
                              logits, argmax, cycles)
        bad += await host.tb.flag("error", 0, f"round {rnd}: the tokens after the reset")
    bad += host.tb.reset_violations()
    REPORT["predicted_cycles"] = total
    REPORT.write()
    assert bad == 0


@cocotb.test(skip="checkpoint" not in MODEL)
async def test_model(dut):
    """``mmfree run --backend rtl``: a checkpoint's prompt and generation on the engine
    (:class:`mmfree.lm.Decoder` for the prompt, sampling and stopping). Every step's logits
    (the engine's ``res`` integers, as exact floats), the tokens and the cycles go to the
    report; every step is also compared with the reference interpreter."""
    from mmfree.checkpoint import open_checkpoint
    from mmfree.sim.tb.model_host import ModelRun

    host = Host(dut, "model", model=open_checkpoint(MODEL["checkpoint"]).load_model())
    await host.tb.start()
    await host.boot()
    host.new_sequence()
    run = ModelRun(MODEL, REPORT)
    bad = 0
    while not run.dec.done:
        t0 = time.perf_counter()
        token = run.dec.next_token()
        logits, argmax, cycles = await host.token(token)
        bad += host.check(f"step {len(run.steps)}", token, logits, argmax, None)
        run.observe(host.fm.logits_float(logits), t0, cycles=cycles, argmax=argmax)
    run.finish(predicted_cycles=host.want_cycles["total"])
    REPORT.write()
    assert bad == 0
