"""Pattern generator of the board self-test: pseudo-random ternary weights and activations."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import Out

from ...golden.selftest import DEFAULT_SEED, LFSR_TAPS, LFSR_WIDTH, beat_bits, check_seed
from ...spec import check_int
from ..ternary_core import weight_layout

__all__ = ["PatternGenerator", "beat_layout", "leap_masks"]


def beat_layout(lanes: int, act_width: int) -> data.StructLayout:
    """One beat for the ternary core: its weight payload ``w`` (codes and ``last``) and its
    activations ``x``, exactly the payloads of :class:`~mmfree.hdl.TernaryCore`'s inputs."""
    return data.StructLayout({"w": weight_layout(lanes),
                              "x": data.ArrayLayout(signed(act_width), lanes)})


def leap_masks(steps: int) -> tuple[list[int], list[int]]:
    """The LFSR advanced ``steps`` steps at once, symbolically: every produced bit and every
    next-state bit as a bit mask over the current state's bits (their XOR)."""
    state = [1 << i for i in range(LFSR_WIDTH)]
    outs = []
    for _ in range(steps):
        new = state[LFSR_TAPS[0]] ^ state[LFSR_TAPS[1]]
        state = [new, *state[:-1]]
        outs.append(new)
    return outs, state


class PatternGenerator(wiring.Component):
    """An endless stream of pseudo-random beats for a ternary core, from a 31-bit LFSR.

    Each beat is the next ``lanes * (2 + act_width)`` bits of the LFSR of
    :mod:`mmfree.golden.selftest` (bit-exact with :func:`~mmfree.golden.selftest.pattern`):
    a 2-bit weight code per lane (all four codes occur), then a signed activation per lane.
    ``w.last`` is set on every ``groups``-th beat, so a row is ``groups`` beats of ``lanes``
    terms.

    Port: ``beat`` (out, :func:`beat_layout`). Timing: ``beat.valid`` is always high; a beat
    is held until it transfers, and one beat can transfer every
    cycle (the LFSR leaps all of a beat's bits in one cycle: each bit is an XOR of state bits).
    ``rst`` restarts the sequence at ``seed``.
    """

    def __init__(self, lanes: int = 8, act_width: int = 8, groups: int = 4,
                 seed: int = DEFAULT_SEED) -> None:
        self.lanes = check_int("lanes", lanes, 1, 64)
        self.act_width = check_int("act_width", act_width, 2, 16)
        self.groups = check_int("groups", groups, 1, 1 << 16)
        self.seed = check_seed(seed)
        super().__init__({"beat": Out(stream.Signature(beat_layout(lanes, act_width)))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        n, aw = self.lanes, self.act_width
        state = Signal(LFSR_WIDTH, init=self.seed)
        outs, nxt = leap_masks(beat_bits(n, aw))

        def xor_of(mask: int) -> object:
            taps = [state[i] for i in range(LFSR_WIDTH) if mask >> i & 1]
            return Cat(*taps).xor() if taps else Const(0, 1)

        bits = Signal(len(outs))
        m.d.comb += [bits[i].eq(xor_of(mask)) for i, mask in enumerate(outs)]
        group = Signal(range(self.groups))
        payload = self.beat.payload
        m.d.comb += [
            self.beat.valid.eq(1),
            payload.w.codes.as_value().eq(bits[:2 * n]),
            payload.x.as_value().eq(bits[2 * n:]),
            payload.w.last.eq(group == self.groups - 1),
        ]
        with m.If(self.beat.valid & self.beat.ready):
            m.d.sync += state.eq(Cat(*(xor_of(mask) for mask in nxt)))
            m.d.sync += group.eq(Mux(group == self.groups - 1, 0, group + 1))
        return m
