"""4x4x4 tensor-core MAC array: D = A * B + C on 4 x 4 tiles, one tile per cycle."""

from __future__ import annotations

from amaranth import Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.base import check_bool
from ..spec.tensor_core import TILE, TensorCoreSpec, operand_bits
from ._arith import adder_tree
from .credit_queue import CreditQueue

__all__ = ["TensorCore", "mac_stages", "tile_layout"]


def tile_layout(shape: object) -> data.ArrayLayout:
    """A 4 x 4 tile, row-major: element ``(r, c)`` is entry ``4*r + c``."""
    return data.ArrayLayout(shape, TILE * TILE)


class TensorCore(wiring.Component):
    """A 4 x 4 x 4 multiply-accumulate array: ``D = A @ B + C`` on 4 x 4 tiles.

    Each of the 16 outputs ``D[r, c] = sum_k A[r, k] * B[k, c] + C[r, c]`` takes four
    multipliers (64 in all, one per MAC) and an adder tree. Operands ``A`` and ``B`` are
    ``width``-bit, signed or unsigned (``is_signed``); ``C`` and ``D`` are signed
    ``acc_width``-bit. Products and sums are exact; ``D`` wraps modulo ``2**acc_width``
    (never saturates), bit-exact with :func:`mmfree.golden.tensor_core.mac_tile`.

    Two modes (``accumulate``):

    * plain: every input tile produces ``D = A @ B + C``;
    * accumulate-in-place: the payload also has ``first`` and ``last``. A ``first`` beat starts
      a new accumulation from its ``C``; later beats add ``A @ B`` to the internal accumulator
      (their ``C`` is ignored); a ``last`` beat (which may also be ``first``) emits the sum on
      ``d``. A K-loop therefore never round-trips ``C``: this is how
      :func:`mmfree.golden.tensor_core.gemm_schedule` drives a GEMM.

    Ports: ``i`` in (payload struct: ``a``, ``b`` tiles of operands, ``c`` tile of signed
    ``acc_width``, then ``first``, ``last`` in accumulate mode; fields packed from bit 0 in
    that order, tile element ``4*r + c`` lowest first), ``d`` out (tile of signed
    ``acc_width``), ``clk``, ``rst`` (synchronous, empties the pipeline and the accumulator;
    ``i.ready`` is low while it is asserted).

    Timing: three register stages (64 products; 16 four-input sums; accumulate), so a result
    is valid on ``d`` :attr:`latency` = 3 cycles after the beat that completes it transfers.
    Initiation interval 1: a new tile every cycle while ``i`` is valid and ``d`` is ready.
    Cycle count, inclusive from the first input transfer to the last output transfer with the
    streams keeping up: ``T + 3`` for ``T`` beats; for an M x K x N GEMM in accumulate mode
    ``ceil(M/4) * ceil(N/4) * ceil(K/4) + 3`` (:meth:`mmfree.spec.TensorCoreSpec.gemm_cycles`).

    ``dsp_pipeline=True`` registers every product twice: at the multiplier's output, then
    once more, so that on an FPGA the first register can sit inside the DSP block (its
    output register) and the route out of the block ends in the second one instead of
    running on into the adder tree. One more stage: :attr:`latency` = 4, ``T + 4`` cycles,
    ``ceil(M/4) * ceil(N/4) * ceil(K/4) + 4`` per GEMM. (``mmfree synth`` moves the
    registers into the ECP5 DSP blocks; see ``docs/fpga-flow.md``.)

    Flow control: the pipeline is free-running (no stage register has a clock enable from
    ``d.ready``); results enter an output FIFO (:class:`mmfree.hdl.credit_queue.CreditQueue`, 8
    entries) whose head drives ``d``. Each beat takes a credit when it transfers and gives
    it back when it leaves the pipeline (a beat that completes a tile: when the tile leaves
    on ``d``); ``i.ready`` is a credit flip-flop AND ``~rst``. Under back-pressure the tiles
    wait in the FIFO and ``i.ready`` falls once the credits are used up; tiles stay in
    order.

    Parameters, their limits and defaults: :class:`mmfree.spec.TensorCoreSpec` (validated
    before anything is built, errors naming the parameter; :attr:`spec` holds them).
    ``gathered`` (keyword only) is the sparse tensor core's gathered-B input.
    """

    def __init__(self, width: int = TensorCoreSpec.width,
                 is_signed: bool = TensorCoreSpec.is_signed,
                 acc_width: int = TensorCoreSpec.acc_width,
                 accumulate: bool = TensorCoreSpec.accumulate, *, gathered: bool = False,
                 dsp_pipeline: bool = TensorCoreSpec.dsp_pipeline) -> None:
        self.spec = TensorCoreSpec(width=width, is_signed=is_signed, acc_width=acc_width,
                                   accumulate=accumulate, dsp_pipeline=dsp_pipeline).validate()
        self.width, self.is_signed, self.acc_width = width, is_signed, acc_width
        self.accumulate = accumulate
        self.gathered = check_bool("gathered", gathered)
        self.dsp_pipeline = dsp_pipeline
        self.latency = self.spec.latency
        super().__init__({
            "i": In(stream.Signature(
                self.input_layout(width, is_signed, acc_width, accumulate, gathered))),
            "d": Out(stream.Signature(tile_layout(signed(acc_width)))),
        })

    @staticmethod
    def input_layout(width: int, is_signed: bool, acc_width: int, accumulate: bool,
                     gathered: bool = False) -> data.StructLayout:
        """Payload of the input stream.

        With ``gathered`` (used by the sparse tensor core), ``b`` holds a separate 4 x 4 B
        tile for every row of A: 64 entries, entry ``16*r + 4*k + c`` is ``B_r[k, c]``, and
        ``D[r, c] = sum_k A[r, k] * B_r[k, c] + C[r, c]``.
        """
        op = signed(width) if is_signed else unsigned(width)
        b = data.ArrayLayout(op, TILE ** 3) if gathered else tile_layout(op)
        fields = {"a": tile_layout(op), "b": b, "c": tile_layout(signed(acc_width))}
        if accumulate:
            fields.update(first=1, last=1)
        return data.StructLayout(fields)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.queue = queue = CreditQueue(tile_layout(signed(self.acc_width)),
                                                 CreditQueue.depth_for(self.latency))
        m.d.comb += self.i.ready.eq(queue.may_take & ~ResetSignal())  # none during reset
        fire = self.i.valid & self.i.ready
        m.d.comb += queue.take.eq(fire)
        mac_stages(m, fire, self.i.payload, queue, self.width, self.is_signed, self.acc_width,
                   self.accumulate, self.gathered, self.dsp_pipeline)
        wiring.connect(m, queue.o, wiring.flipped(self.d))
        return m


def mac_stages(m: Module, valid: Value, payload: data.View, queue: CreditQueue, width: int,
               is_signed: bool, acc_width: int, accumulate: bool, gathered: bool,
               dsp_pipeline: bool = False) -> None:
    """The array's free-running stages (three; four with ``dsp_pipeline``), fed by ``payload`` (a
    :meth:`TensorCore.input_layout` view) in the cycles where ``valid`` is high, and ending in
    ``queue``: 64 products (registered; with ``dsp_pipeline`` registered twice, one more
    stage), 16 four-product sums (registered), then the accumulate step, whose result is put
    into ``queue`` when the beat completes a tile (a K-step that does not complete one drops
    its credit instead).

    The stage registers load every cycle, without enable or reset; a valid bit per stage
    (reset by ``rst``) says whether they hold a beat. Only the accumulator tile (accumulate
    mode) has an enable, the registered valid bit of the sum stage.
    """
    aw = acc_width
    # A signed product is 2*width bits; an unsigned one gets a zero sign bit on top.
    pw = operand_bits(width, is_signed)

    def reg(shape: object, name: str) -> Signal:
        return Signal(shape, name=name, reset_less=True)

    if dsp_pipeline:
        # Stage M: the multipliers' output registers (the products' first register).
        m_valid = Signal()
        m_c = reg(tile_layout(signed(aw)), "m_c")
        m.d.sync += [m_valid.eq(valid), m_c.eq(payload.c)]
        if accumulate:
            m_first, m_last = reg(1, "m_first"), reg(1, "m_last")
            m.d.sync += [m_first.eq(payload.first), m_last.eq(payload.last)]
    # Stage P: the 64 products, plus C and (accumulate mode) the flags.
    p_valid = Signal()
    prods = [[[reg(signed(pw), f"p_{r}{c}_{k}") for k in range(TILE)]
              for c in range(TILE)] for r in range(TILE)]
    p_c = reg(tile_layout(signed(aw)), "p_c")
    # Stage S: the 16 four-product sums, held at the accumulator's width.
    s_valid = Signal()
    s_sum = reg(tile_layout(signed(aw)), "s_sum")
    s_c = reg(tile_layout(signed(aw)), "s_c")
    if accumulate:
        p_first, p_last, s_first, s_last = (reg(1, n) for n in (
            "p_first", "p_last", "s_first", "s_last"))
        # Stage D: the accumulator tile; a completed tile goes into the output FIFO.
        acc = Signal(tile_layout(signed(aw)))

    if dsp_pipeline:
        m.d.sync += [p_valid.eq(m_valid), p_c.eq(m_c)]
        if accumulate:
            m.d.sync += [p_first.eq(m_first), p_last.eq(m_last)]
    else:
        m.d.sync += [p_valid.eq(valid), p_c.eq(payload.c)]
        if accumulate:
            m.d.sync += [p_first.eq(payload.first), p_last.eq(payload.last)]
    a, b = payload.a, payload.b
    for r in range(TILE):
        for c in range(TILE):
            for k in range(TILE):
                bk = b[TILE * TILE * r + TILE * k + c] if gathered else b[TILE * k + c]
                if dsp_pipeline:
                    product = reg(signed(pw), f"m_{r}{c}_{k}")
                    m.d.sync += [product.eq(a[TILE * r + k] * bk), prods[r][c][k].eq(product)]
                else:
                    m.d.sync += prods[r][c][k].eq(a[TILE * r + k] * bk)

    m.d.sync += [s_valid.eq(p_valid), s_c.eq(p_c)]
    if accumulate:
        m.d.sync += [s_first.eq(p_first), s_last.eq(p_last)]
    for r in range(TILE):
        for c in range(TILE):
            # one carry chain per adder (see adder_levels: keep)
            total = adder_tree(m, prods[r][c], aw, name=f"sum_{r}{c}", keep=True)
            m.d.sync += s_sum[TILE * r + c].eq(total)

    if accumulate:
        m.d.comb += [queue.put.eq(s_valid & s_last),
                     queue.drop.eq(s_valid & ~s_last)]  # a K-step that completes nothing
    else:
        m.d.comb += queue.put.eq(s_valid)
    for e in range(TILE * TILE):
        base = Mux(s_first, s_c[e], acc[e]) if accumulate else s_c[e]
        new = Signal(signed(aw), name=f"d_next_{e}")
        m.d.comb += [new.eq(base + s_sum[e]),  # truncation to acc_width = wrap
                     queue.data[e].eq(new)]
        if accumulate:
            with m.If(s_valid):
                m.d.sync += acc[e].eq(new)
