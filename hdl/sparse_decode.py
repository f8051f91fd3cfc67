"""2:4 sparse decode unit: expands compressed A tiles, or gathers B rows for the sparse MAC."""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.sparse import VALID_CODES
from ..spec.tensor_core import DECODE_LATENCY, TILE, SparseDecodeSpec, SparseTensorCoreSpec
from .credit_queue import CreditQueue
from .tensor_core import TensorCore, mac_stages, tile_layout

__all__ = ["SparseDecode", "SparseTensorCore", "decode_logic", "select_layout"]


def select_layout(width: int, is_signed: bool, acc_width: int,
                  accumulate: bool) -> data.StructLayout:
    """Input payload of the select mode (and of :class:`SparseTensorCore`)."""
    op = signed(width) if is_signed else unsigned(width)
    fields = {"a": tile_layout(op), "meta": data.ArrayLayout(4, 2 * TILE),
              "b": data.ArrayLayout(op, 2 * TILE * TILE), "c": tile_layout(signed(acc_width))}
    if accumulate:
        fields.update(first=1, last=1)
    return data.StructLayout(fields)


def _decode_code(m: Module, code: object, name: str) -> tuple[Signal, Signal, Signal]:
    """Named signals ``(i0, i1, valid)`` of a 4-bit group code: the low index in bits 1:0,
    valid iff ``i0 < i1``."""
    i0, i1 = Signal(2, name=f"{name}_i0"), Signal(2, name=f"{name}_i1")
    valid = Signal(name=f"{name}_valid")
    m.d.comb += [i0.eq(code[0:2]), i1.eq(code[2:4]), valid.eq(i0 < i1)]
    return i0, i1, valid


class SparseDecode(wiring.Component):
    """Decode 2:4-compressed A tiles (values plus 4-bit group codes, see
    :mod:`mmfree.golden.sparse`).

    ``mode="expand"``: input ``values`` (4 rows x 2 kept values, entry ``2r + s``) and
    ``meta`` (one group code per row, entry ``r``); output the dense 4 x 4 tile (entry
    ``4r + k``) with each row's two values placed at indices ``i0 < i1`` of its code.

    ``mode="select"`` (the front of :class:`SparseTensorCore`): a *logical* 4 x 8 A tile
    arrives as ``a`` (4 rows x 4 kept values, entry ``4r + s``; slots 0, 1 belong to group 0
    of the row, slots 2, 3 to group 1), ``meta`` (4 rows x 2 group codes, entry ``2r + g``:
    exactly one 32-bit metadata word) and ``b``, the logical 8 x 4 B tile (entry ``4k + c``).
    For every kept value the unit selects the matching row of B: it outputs
    :meth:`TensorCore.input_layout` with ``gathered=True``, where ``B_r[s, :]`` is
    ``B[4 * (s // 2) + i_s, :]``; ``c`` (and ``first``/``last`` with ``accumulate``) pass
    through. The 4 x 4 x 4 array behind it then computes the 4 x 8 x 4 product with its 64
    multipliers.

    Invalid group codes (equal indices, decreasing pairs) decode as an all-zero group: in
    expand mode the row's four entries are 0; in select mode the group's two values are 0
    (its B selections follow the raw index bits and are multiplied by 0). The sticky ``error``
    output rises with the first invalid code that transfers and stays high until reset.

    Timing: one register stage, :attr:`LATENCY` = 1; one tile per cycle while ``o`` is ready
    (``i.ready = (~o.valid | o.ready) & ~rst``). Synchronous reset empties the stage and
    clears ``error``.

    Parameters, their limits and defaults: :class:`mmfree.spec.SparseDecodeSpec`
    (:attr:`spec`).
    """

    LATENCY = DECODE_LATENCY

    def __init__(self, width: int = SparseDecodeSpec.width,
                 is_signed: bool = SparseDecodeSpec.is_signed,
                 mode: str = SparseDecodeSpec.mode, acc_width: int = SparseDecodeSpec.acc_width,
                 accumulate: bool = SparseDecodeSpec.accumulate) -> None:
        self.spec = SparseDecodeSpec(width=width, is_signed=is_signed, mode=mode,
                                     acc_width=acc_width, accumulate=accumulate).validate()
        self.width, self.is_signed, self.acc_width = width, is_signed, acc_width
        self.mode, self.accumulate = mode, accumulate
        self.latency = self.spec.latency
        op = signed(width) if is_signed else unsigned(width)
        if mode == "expand":
            i_layout = data.StructLayout({"values": data.ArrayLayout(op, 2 * TILE),
                                          "meta": data.ArrayLayout(4, TILE)})
            o_layout = tile_layout(op)
        else:
            i_layout = select_layout(width, is_signed, acc_width, accumulate)
            o_layout = TensorCore.input_layout(width, is_signed, acc_width, accumulate,
                                               gathered=True)
        super().__init__({
            "i": In(stream.Signature(i_layout)),
            "o": Out(stream.Signature(o_layout)),
            "error": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        assign, invalid = decode_logic(m, self.i.payload, self.o.payload, self.mode, self.width,
                                       self.is_signed, self.accumulate)
        fire = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq((~self.o.valid | self.o.ready) & ~ResetSignal())
        with m.If(self.i.ready):
            m.d.sync += self.o.valid.eq(self.i.valid)
        with m.If(fire):
            m.d.sync += assign
            with m.If(invalid):
                m.d.sync += self.error.eq(1)
        return m


def decode_logic(m: Module, p: data.View, out: data.View, mode: str, width: int,
                 is_signed: bool, accumulate: bool,
                 valid_rows_only: bool = False) -> tuple[list, Value]:
    """The combinational decode of one input payload ``p`` (see :class:`SparseDecode` for the
    two modes): returns the assignments of every field of ``out`` (the output layout of
    ``mode``) and a signal that is high when any group code of ``p`` is invalid.

    ``valid_rows_only`` (select mode, for :class:`SparseTensorCore`, where the gathered B
    rows only ever meet their A values): a valid code has ``i0`` in 0..2 and ``i1`` in
    1..3, so each kept value's B row is chosen among the three rows its index can name
    (a five-input function, one LUT level with the slice's wide-function multiplexer on
    ECP5, where a choice among four needs two); for an invalid code the rows chosen are
    unspecified, and its A values are 0."""
    invalid = []
    pairs = []  # (output field element, value)
    if mode == "expand":
        op = signed(width) if is_signed else unsigned(width)
        for r in range(TILE):
            _, _, valid = _decode_code(m, p.meta[r], f"row{r}")
            invalid.append(~valid)
            row = Signal(data.ArrayLayout(op, TILE), name=f"dense_row{r}")
            # one case per valid code; an invalid code gives a zero row
            with m.Switch(p.meta[r]):
                for code in VALID_CODES:
                    with m.Case(code):
                        m.d.comb += [row[code & 3].eq(p.values[2 * r]),
                                     row[code >> 2].eq(p.values[2 * r + 1])]
                with m.Default():
                    m.d.comb += row.eq(0)
            pairs += [(out[TILE * r + k], row[k]) for k in range(TILE)]
    else:
        for r in range(TILE):
            for g in range(2):
                i0, i1, valid = _decode_code(m, p.meta[2 * r + g], f"row{r}_group{g}")
                invalid.append(~valid)
                for s, idx in ((2 * g, i0), (2 * g + 1, i1)):
                    pairs.append((out.a[TILE * r + s], Mux(valid, p.a[TILE * r + s], 0)))
                    for c in range(TILE):
                        rows = [p.b[TILE * (TILE * g + j) + c] for j in range(TILE)]
                        if not valid_rows_only:
                            row = Array(rows)[idx]
                        elif s % 2 == 0:  # i0: 0, 1 or 2
                            row = Mux(idx[1], rows[2], Mux(idx[0], rows[1], rows[0]))
                        else:  # i1: 1, 2 or 3
                            row = Mux(idx[1], Mux(idx[0], rows[3], rows[2]), rows[1])
                        pairs.append((out.b[TILE * TILE * r + TILE * s + c], row))
        pairs.append((out.c, p.c))
        if accumulate:
            pairs += [(out.first, p.first), (out.last, p.last)]
    return [field.eq(value) for field, value in pairs], Cat(*invalid).any()


class SparseTensorCore(wiring.Component):
    """The tensor core in 2:4 sparse mode: a logical 4 x 8 x 4 product per cycle.

    The select-mode decode of :class:`SparseDecode` in front of the stages of a
    :class:`TensorCore` with gathered B (:func:`mmfree.hdl.tensor_core.mac_stages`), as one
    free-running pipeline: each beat carries a compressed logical 4 x 8 A tile (16 kept
    values and one 32-bit metadata word), the logical 8 x 4 B tile and C; the result is
    ``D = decompress(A) @ B + C`` (wrapping at ``acc_width``), bit-exact with
    :func:`mmfree.golden.sparse.sparse_mac_tile`, using the same 64 multipliers as the dense
    array: twice the MACs per cycle. With ``accumulate`` the ``first``/``last`` protocol of
    :class:`TensorCore` runs GEMMs (:func:`mmfree.golden.sparse.sparse_gemm_schedule`).

    Ports: ``i`` (:class:`SparseDecode` select-mode payload), ``d`` (D tile), ``error``
    (sticky invalid-metadata flag), ``clk``, ``rst``.

    Timing: :attr:`latency` = 4 (decode stage + the array's 3); initiation interval 1.
    ``T + 4`` cycles for T back-to-back beats; an M x K x N GEMM takes
    ``ceil(M/4) * ceil(N/4) * ceil(K/8) + 4`` cycles
    (:meth:`mmfree.spec.SparseTensorCoreSpec.gemm_cycles`), against
    ``ceil(M/4) * ceil(N/4) * ceil(K/4) + 3`` dense.

    ``dsp_pipeline`` as in :class:`TensorCore`: every product registered twice, one more
    stage (:attr:`latency` 5, ``... + 5`` cycles).

    Flow control as in :class:`TensorCore`: the stages (decode included) load every cycle,
    results wait in an output FIFO (:class:`mmfree.hdl.credit_queue.CreditQueue`, 8
    entries), and ``i.ready`` is a credit flip-flop AND ``~rst``. Reset empties everything and
    clears ``error``; nothing transfers while it is asserted.

    Parameters, their limits and defaults: :class:`mmfree.spec.SparseTensorCoreSpec`
    (:attr:`spec`).
    """

    def __init__(self, width: int = SparseTensorCoreSpec.width,
                 is_signed: bool = SparseTensorCoreSpec.is_signed,
                 acc_width: int = SparseTensorCoreSpec.acc_width,
                 accumulate: bool = SparseTensorCoreSpec.accumulate, *,
                 dsp_pipeline: bool = SparseTensorCoreSpec.dsp_pipeline) -> None:
        self.spec = SparseTensorCoreSpec(width=width, is_signed=is_signed, acc_width=acc_width,
                                         accumulate=accumulate,
                                         dsp_pipeline=dsp_pipeline).validate()
        self.width, self.is_signed, self.acc_width = width, is_signed, acc_width
        self.accumulate = accumulate
        self.dsp_pipeline = dsp_pipeline
        self.latency = self.spec.latency
        super().__init__({
            "i": In(stream.Signature(select_layout(width, is_signed, acc_width, accumulate))),
            "d": Out(stream.Signature(tile_layout(signed(acc_width)))),
            "error": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.queue = queue = CreditQueue(tile_layout(signed(self.acc_width)),
                                                 CreditQueue.depth_for(self.latency))
        m.d.comb += self.i.ready.eq(queue.may_take & ~ResetSignal())  # none during reset
        fire = self.i.valid & self.i.ready
        m.d.comb += queue.take.eq(fire)
        # Stage G: the decoded A values and the gathered B rows, registered before the
        # multipliers (free-running like the array's stages).
        g_valid = Signal()
        gathered = Signal(TensorCore.input_layout(self.width, self.is_signed, self.acc_width,
                                                  self.accumulate, gathered=True),
                          name="gathered", reset_less=True)
        assign, invalid = decode_logic(m, self.i.payload, gathered, "select", self.width,
                                       self.is_signed, self.accumulate, valid_rows_only=True)
        m.d.sync += [g_valid.eq(fire), *assign]
        with m.If(fire & invalid):
            m.d.sync += self.error.eq(1)
        mac_stages(m, g_valid, gathered, queue, self.width, self.is_signed, self.acc_width,
                   self.accumulate, True, self.dsp_pipeline)
        wiring.connect(m, queue.o, wiring.flipped(self.d))
        return m
