"""Ternary core fed with 1.6-bit packed weights: TritUnpacker in front of TernaryCore."""

from __future__ import annotations

from amaranth import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.ternary_core import TernaryCoreSpec
from .ternary_core import TernaryCore
from .trit_unpacker import TritUnpacker, packed_layout

__all__ = ["PackedTernaryCore"]


class PackedTernaryCore(wiring.Component):
    """:class:`TernaryCore` that reads weights packed 5 trits per byte.

    Same computation and ``x``/``y`` ports as :class:`TernaryCore`; ``w`` carries
    :func:`mmfree.hdl.trit_unpacker.packed_layout` (``ceil(lanes/5)`` bytes plus ``last``)
    and ``error`` is the unpacker's sticky invalid-byte flag.

    Timing: the unpacker adds one register stage on the weight path, so :attr:`latency` = 4
    (with the default adder tree) and an M x K product takes ``M * ceil(K / lanes) + 4``
    cycles, counted inclusively from the first ``w`` transfer to the last ``y`` transfer
    (``x`` of a group transfers one cycle after its packed weights). Initiation interval: one
    lane group per cycle. Parameters: :class:`mmfree.spec.TernaryCoreSpec` with ``packed``.
    """

    def __init__(self, lanes: int = TernaryCoreSpec.lanes,
                 act_width: int = TernaryCoreSpec.act_width,
                 acc_width: int = TernaryCoreSpec.acc_width,
                 tree_levels_per_stage: int = TernaryCoreSpec.tree_levels_per_stage) -> None:
        self.spec = TernaryCoreSpec(lanes=lanes, act_width=act_width, acc_width=acc_width,
                                    packed=True,
                                    tree_levels_per_stage=tree_levels_per_stage).validate()
        self.lanes, self.act_width, self.acc_width = lanes, act_width, acc_width
        self.tree_levels_per_stage = tree_levels_per_stage
        self.latency = self.spec.latency
        super().__init__({
            "w": In(stream.Signature(packed_layout(lanes))),
            "x": In(stream.Signature(data.ArrayLayout(signed(act_width), lanes))),
            "y": Out(stream.Signature(signed(acc_width))),
            "error": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.unpacker = unpacker = TritUnpacker(self.lanes)
        m.submodules.core = core = TernaryCore(self.lanes, self.act_width, self.acc_width,
                                               self.tree_levels_per_stage)
        wiring.connect(m, wiring.flipped(self.w), unpacker.i)
        wiring.connect(m, unpacker.o, core.w)
        wiring.connect(m, wiring.flipped(self.x), core.x)
        wiring.connect(m, core.y, wiring.flipped(self.y))
        m.d.comb += self.error.eq(unpacker.error)
        return m
