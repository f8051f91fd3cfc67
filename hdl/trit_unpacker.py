"""Trit unpacker: 5-trits-per-byte packed weights to the 2-bit codes the ternary core reads."""

from __future__ import annotations

from amaranth import Cat, Module, ResetSignal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.ternary import MAX_VALID_BYTE, TRITS_PER_BYTE, trit_byte_table
from ..spec.base import check_int
from ..spec.ternary_core import MAX_LANES, UNPACK_LATENCY
from .ternary_core import weight_layout

__all__ = ["TritUnpacker", "packed_bytes", "packed_layout"]


def packed_bytes(lanes: int) -> int:
    """Packed bytes per lane group: ``ceil(lanes / 5)``."""
    return -(-lanes // TRITS_PER_BYTE)


def packed_layout(lanes: int) -> data.StructLayout:
    """Payload of the packed weight stream: ``ceil(lanes/5)`` bytes (byte 0 lowest) and ``last``."""
    return data.StructLayout({"packed": data.ArrayLayout(8, packed_bytes(lanes)), "last": 1})


class TritUnpacker(wiring.Component):
    """Decode one lane group of packed weights per cycle into 2-bit codes.

    Byte ``j`` of ``i.payload.packed`` holds the weights of lanes ``5j .. 5j+4`` in base 3
    (see :mod:`mmfree.golden.ternary`); each byte is decoded by a 256-entry ROM lookup (a
    constant table, no arithmetic). Trits past ``lanes`` in the final byte are not decoded
    (that byte uses a narrower table); the packer pads them with zero weights. A byte above
    242 is invalid: its five lanes get zero codes and the sticky ``error`` output goes high
    until reset.

    Ports: ``i`` in, :func:`packed_layout`; ``o`` out,
    :func:`mmfree.hdl.ternary_core.weight_layout` (``last`` passed through); ``error`` out.

    Timing: one register stage, :attr:`LATENCY` = 1 cycle; one group per cycle while ``o`` is
    ready (``i.ready = (~o.valid | o.ready) & ~rst``). Synchronous reset empties the stage and
    clears ``error``; nothing transfers while it is asserted.
    """

    LATENCY = UNPACK_LATENCY

    def __init__(self, lanes: int = 16) -> None:
        self.lanes = check_int("lanes", lanes, 1, MAX_LANES)
        super().__init__({
            "i": In(stream.Signature(packed_layout(lanes))),
            "o": Out(stream.Signature(weight_layout(lanes))),
            "error": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        n_bytes = packed_bytes(self.lanes)
        table = trit_byte_table()
        tail = self.lanes % TRITS_PER_BYTE
        if self.lanes >= TRITS_PER_BYTE:
            m.submodules.rom = rom = memory.Memory(
                shape=2 * TRITS_PER_BYTE, depth=256, init=table)
        if tail:
            # A partial last byte gets a narrower table: its unused trits are never decoded.
            mask = (1 << (2 * tail)) - 1
            m.submodules.rom_tail = rom_tail = memory.Memory(
                shape=2 * tail, depth=256, init=[e & mask for e in table])

        decoded = []
        invalid = []
        for j in range(n_bytes):
            port = (rom_tail if tail and j == n_bytes - 1 else rom).read_port(domain="comb")
            m.d.comb += port.addr.eq(self.i.payload.packed[j])
            decoded.append(port.data)
            invalid.append(self.i.payload.packed[j] > MAX_VALID_BYTE)
        codes = Cat(*decoded)

        fire = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq((~self.o.valid | self.o.ready) & ~ResetSignal())
        with m.If(self.i.ready):
            m.d.sync += self.o.valid.eq(self.i.valid)
        with m.If(fire):
            m.d.sync += [
                self.o.payload.codes.eq(codes),
                self.o.payload.last.eq(self.i.payload.last),
            ]
            with m.If(Cat(*invalid).any()):
                m.d.sync += self.error.eq(1)
        return m
