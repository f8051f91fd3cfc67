"""Amaranth-simulator test of the AXI4 read arbiter: N managers with random request streams
against a behavioural subordinate that answers bursts after random latencies, with random
gaps and bursts of different IDs interleaved; every R beat checked at the right source, in
order, with its ID, data and ``rlast``; random back-pressure on every R and on AR; the AXI
rules on the shared port (a presented request held unchanged until it transfers); the
round-robin (a presenting source waits for at most N - 1 other grants); two resets in the
middle of the streams."""

import random

import pytest
from amaranth import ClockDomain, Module
from amaranth.sim import Simulator

from mmfree.hdl.axi_read_arbiter import AxiReadArbiter

DATA = 32
MASK = (1 << DATA) - 1


def beat_data(full_id: int, addr: int, beat: int) -> int:
    """What the subordinate returns for beat ``beat`` of a burst at ``addr`` with ARID
    ``full_id`` (so a beat routed to the wrong source or out of order is seen)."""
    return ((addr + 4 * beat) * 2654435761 + full_id * 40503 + beat) & MASK


def _run(ports: int, id_width: int, seed: int, requests: int, resets: tuple[int, ...]):
    rng = random.Random(seed)
    dut = AxiReadArbiter(ports=ports, addr_width=16, data_width=DATA, id_width=id_width)
    top = Module()
    top.domains.sync = cd = ClockDomain()
    top.submodules.dut = dut
    srcs = [getattr(dut, f"src{i}") for i in range(ports)]
    axi = dut.axi
    stats = {"beats": 0, "ar": 0, "ar_beats": 0, "bad": [], "max_wait": 0, "interleaved": 0,
             "held_ar": 0, "after_reset": 0}

    def bad(msg: str) -> None:
        if len(stats["bad"]) < 20:
            stats["bad"].append(msg)

    async def bench(ctx):
        # each source: requests to issue, the one presented, expected bursts per ARID
        todo = [[(rng.randrange(0, 1 << 16) & ~3, rng.randrange(0, 8),
                  rng.randrange(0, 1 << id_width)) for _ in range(requests)]
                for _ in range(ports)]
        presented: list = [None] * ports
        expect: list[dict[int, list[list[int]]]] = [{} for _ in range(ports)]
        forwarded: list[list[tuple]] = [[] for _ in range(ports)]  # taken, not yet out
        waits = [0] * ports  # grants to others while presenting
        sub: dict[int, list[list[int]]] = {}  # full ID -> [ready cycle, addr, beat, beats]
        r_held = None  # the full ID of the beat the subordinate presents, until it transfers
        prev_ar = None
        cycle = 0
        in_reset = 0
        resets_left = list(resets)
        prev_rst = False
        while cycle < 40000:
            if resets_left and cycle == resets_left[0]:
                resets_left.pop(0)
                in_reset = rng.randrange(1, 4)
            rst = in_reset > 0
            ctx.set(cd.rst, rst)
            if rst:  # everything in flight is abandoned (sources, memory)
                presented = [None] * ports
                expect = [{} for _ in range(ports)]
                forwarded = [[] for _ in range(ports)]
                sub, r_held, prev_ar = {}, None, None
                waits = [0] * ports
            # sources: AR and rready
            for i, s in enumerate(srcs):
                if not rst and presented[i] is None and todo[i] and rng.random() < 0.6:
                    presented[i] = todo[i].pop(0)
                req = presented[i]
                ctx.set(s.arvalid, req is not None)
                if req is not None:
                    ctx.set(s.araddr, req[0])
                    ctx.set(s.arlen, req[1])
                    ctx.set(s.arid, req[2])
                    ctx.set(s.arsize, 2)
                    ctx.set(s.arburst, 1)
                ctx.set(s.rready, rng.random() < 0.7)
            # subordinate: arready and R
            ctx.set(axi.arready, rng.random() < 0.7)
            if r_held is None and not rst and rng.random() < 0.75:
                ready_ids = [k for k, q in sub.items() if q and q[0][0] <= cycle]
                if ready_ids:
                    r_held = rng.choice(ready_ids)
            ctx.set(axi.rvalid, r_held is not None)
            if r_held is not None:
                _, addr, beat, beats = sub[r_held][0]
                ctx.set(axi.rid, r_held)
                ctx.set(axi.rdata, beat_data(r_held, addr, beat))
                ctx.set(axi.rlast, beat == beats - 1)
                ctx.set(axi.rresp, 0)

            # --- sample the cycle -----------------------------------------------------------
            ar_valid, ar_ready = ctx.get(axi.arvalid), ctx.get(axi.arready)
            ar_now = ((ctx.get(axi.araddr), ctx.get(axi.arlen), ctx.get(axi.arid))
                      if ar_valid else None)
            if rst:
                if any(ctx.get(s.arready) for s in srcs):
                    bad(f"cycle {cycle}: arready in reset")
            else:
                if prev_ar is not None:  # presented last cycle, not taken: held unchanged
                    stats["held_ar"] += 1
                    if ar_now != prev_ar:
                        bad(f"cycle {cycle}: AR request changed before it transferred: "
                            f"{prev_ar} -> {ar_now}")
                if prev_rst:  # the first cycle after a reset: the register is empty
                    stats["after_reset"] += 1
                    if ar_valid:
                        bad(f"cycle {cycle}: arvalid right after reset")
                granted = [i for i, s in enumerate(srcs) if ctx.get(s.arready)
                           and presented[i] is not None]
                if len([i for i, s in enumerate(srcs) if ctx.get(s.arready)]) > 1:
                    bad(f"cycle {cycle}: more than one source granted")
                for i in granted:
                    forwarded[i].append(presented[i])
                    for j in range(ports):
                        if j != i and presented[j] is not None:
                            waits[j] += 1
                            stats["max_wait"] = max(stats["max_wait"], waits[j])
                    waits[i] = 0
                    presented[i] = None
                if ar_valid and ar_ready:
                    src = ar_now[2] >> id_width
                    stats["ar"] += 1
                    stats["ar_beats"] += ar_now[1] + 1
                    if src >= ports or not forwarded[src]:
                        bad(f"cycle {cycle}: AR {ar_now} from no source's request")
                    else:
                        addr, length, arid = forwarded[src].pop(0)
                        if (ar_now[0], ar_now[1], ar_now[2] & ((1 << id_width) - 1)) != (
                                addr, length, arid):
                            bad(f"cycle {cycle}: AR {ar_now} is not source {src}'s next "
                                f"request {(addr, length, arid)}")
                        expect[src].setdefault(arid, []).append([addr, 0, length + 1])
                        sub.setdefault(ar_now[2], []).append(
                            [cycle + rng.randrange(1, 7), addr, 0, length + 1])
                prev_ar = ar_now if ar_valid and not ar_ready else None
                # R: the beat must be offered to exactly the source its ID names
                if r_held is not None:
                    src = r_held >> id_width
                    offered = [i for i, s in enumerate(srcs) if ctx.get(s.rvalid)]
                    if offered != [src]:
                        bad(f"cycle {cycle}: beat of ID {r_held} offered to {offered}")
                    elif ctx.get(axi.rready) != ctx.get(srcs[src].rready):
                        bad(f"cycle {cycle}: rready is not source {src}'s")
                    if ctx.get(axi.rready) and offered == [src]:
                        s = srcs[src]
                        rid, data, last = (ctx.get(s.rid), ctx.get(s.rdata), ctx.get(s.rlast))
                        q = expect[src].get(rid)
                        if not q:
                            bad(f"cycle {cycle}: source {src} got a beat of ID {rid} it "
                                "did not ask for")
                        else:
                            addr, beat, beats = q[0]
                            want = beat_data((src << id_width) | rid, addr, beat)
                            if data != want or last != (beat == beats - 1):
                                bad(f"cycle {cycle}: source {src} ID {rid} beat {beat}: "
                                    f"data {data:#x} last {last}, want {want:#x}")
                            q[0][1] += 1
                            if q[0][1] == beats:
                                q.pop(0)
                        stats["beats"] += 1
                        head = sub[r_held][0]
                        if 0 < head[2] < head[3] - 1:
                            others = [k for k, v in sub.items() if k != r_held and v]
                            stats["interleaved"] += bool(others)
                        head[2] += 1
                        if head[2] == head[3]:
                            sub[r_held].pop(0)
                        r_held = None
                elif any(ctx.get(s.rvalid) for s in srcs):
                    bad(f"cycle {cycle}: rvalid on a source with no beat on the port")
            prev_rst = rst
            await ctx.tick()
            cycle += 1
            in_reset = max(0, in_reset - 1)
            done = (not any(todo) and all(p is None for p in presented)
                    and not any(forwarded) and not any(q for q in sub.values())
                    and not ctx.get(axi.arvalid) and not resets_left)
            if done:
                left = sum(len(q) for e in expect for q in e.values())
                if left:
                    bad(f"{left} bursts never completed")
                break
        stats["cycles"] = cycle
        stats["error"] = ctx.get(dut.error)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return stats


@pytest.mark.parametrize("ports, id_width", [(2, 1), (3, 2), (4, 1)])
def test_arbiter_routes_every_beat(ports, id_width, seed):
    print(f"seed {seed}")
    requests = 60
    st = _run(ports, id_width, seed, requests, resets=(30, 80))
    print(st)
    assert not st["bad"], st["bad"]
    assert st["cycles"] < 40000, "the streams did not finish"
    assert not st["error"]
    # the resets dropped some requests; the rest all went through
    assert st["ar"] >= ports * requests // 2 and st["beats"] >= st["ar_beats"] // 2
    assert st["held_ar"] > 0 and st["interleaved"] > 0 and st["after_reset"] == 2
    assert st["max_wait"] <= ports - 1  # round-robin: at most N - 1 grants to others


def test_unknown_id_is_dropped_and_flagged():
    """With 3 sources, RID upper bits 3 name none: the beat is taken (``rready`` high, so
    the channel cannot hang), offered to no source, and ``error`` is set until reset."""
    dut = AxiReadArbiter(ports=3, addr_width=16, data_width=DATA, id_width=1)
    top = Module()
    top.domains.sync = cd = ClockDomain()
    top.submodules.dut = dut
    seen = {}

    async def bench(ctx):
        for i in range(3):
            ctx.set(getattr(dut, f"src{i}").rready, 0)
        ctx.set(dut.axi.rvalid, 1)
        ctx.set(dut.axi.rid, 0b110)
        seen["ready"] = ctx.get(dut.axi.rready)
        seen["offered"] = [ctx.get(getattr(dut, f"src{i}").rvalid) for i in range(3)]
        seen["before"] = ctx.get(dut.error)
        await ctx.tick()
        ctx.set(dut.axi.rvalid, 0)
        seen["after"] = ctx.get(dut.error)
        await ctx.tick()
        seen["held"] = ctx.get(dut.error)
        ctx.set(cd.rst, 1)
        await ctx.tick()
        ctx.set(cd.rst, 0)
        seen["reset"] = ctx.get(dut.error)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == {"ready": 1, "offered": [0, 0, 0], "before": 0, "after": 1, "held": 1,
                    "reset": 0}
