# amaranth: UnusedElaboratable=no
"""The trit unpacker in Amaranth's simulator: every byte value, sticky error flag."""

import numpy as np
from amaranth.sim import Simulator

from mmfree.golden.ternary import encode_codes
from mmfree.hdl import TritUnpacker
from mmfree.sim.kit import port_codecs


def test_unpacker_decodes_every_byte():
    dut = TritUnpacker(lanes=5)
    codec = port_codecs(dut)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for b in range(256):
            ctx.set(dut.i.payload.as_value(), codec["i"].encode({"packed": [b], "last": b & 1}))
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
            seen[b] = (ctx.get(dut.o.payload.as_value()), ctx.get(dut.error))
            if b == 242:
                assert ctx.get(dut.error) == 0
        ctx.set(dut.i.payload.as_value(), 0)  # a valid byte after the invalid ones
        await ctx.tick()
        seen["after"] = (0, ctx.get(dut.error))
        ctx.set(dut.i.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    from mmfree.golden.ternary import unpack_trits
    assert seen.pop("after")[1] == 1  # sticky: a valid byte does not clear it
    for b, (payload, _err) in seen.items():
        w, _ = unpack_trits(np.array([b]), 5)
        out = codec["o"].decode(payload)
        assert list(out["codes"]) == list(encode_codes(w)), b
        assert out["last"] == b & 1  # last passes through
    assert seen[243][1] == 1 and seen[255][1] == 1  # sticky once set
