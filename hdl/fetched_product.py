"""C ternary cores, each fed with its share of a matrix's rows over its own AXI4 port."""

from __future__ import annotations

from amaranth import Cat, Module, ResetSignal, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.fetched_product import FetchedProductSpec
from .axi import AxiReadSignature
from .ternary_core import TernaryCore
from .trit_unpacker import TritUnpacker
from .weight_fetcher import WeightFetcher

__all__ = ["FetchedProduct", "product_command_layout", "vector_layout"]


def vector_layout(act_width: int, lanes: int) -> data.StructLayout:
    """The activation vector's stream: one lane group of signed activations per beat and
    ``last`` on the vector's final group."""
    return data.StructLayout({"data": data.ArrayLayout(signed(act_width), lanes), "last": 1})


def product_command_layout(cores: int, addr_width: int, len_width: int) -> data.StructLayout:
    """A product command: each core's image base address (``addr[c]``), the rows per core
    and the lane groups per row (:func:`mmfree.hdl.weight_fetcher.command_layout`)."""
    return data.StructLayout({"addr": data.ArrayLayout(addr_width, cores), "rows": len_width,
                              "groups": len_width})


class FetchedProduct(wiring.Component):
    """``y = W x`` on ``cores`` ternary cores whose weights stream from external memory.

    The vector ``x`` (``G`` lane groups) is loaded once into an activation buffer; a command
    names, for each core ``c``, the image (:mod:`mmfree.golden.weight_image`) of its
    ``rows`` rows of ``W`` (the host splits ``W`` into ``cores`` blocks of ``R =
    ceil(M / cores)`` rows, padding the last with zero rows), which the core's
    :class:`~mmfree.hdl.weight_fetcher.WeightFetcher` reads over port ``axi<c>`` while the
    core multiplies; core ``c``'s row sums leave on ``y<c>`` in row order.

    Ports:

    * ``x``: in, :func:`vector_layout`. Taken while no vector is loaded; the vector stays
      until every core has finished the matrix (then the next one may load).
    * ``cmd``: in, :func:`product_command_layout`: registered (taken when every fetcher has
      taken the previous one), then taken by each fetcher; a command may be taken while
      the previous matrix or the vector is still in progress, so the next matrix's reads
      start early (prefetch).
    * ``axi0`` .. ``axi<C-1>``: :class:`~mmfree.hdl.axi.AxiReadSignature` managers, one per
      core and memory channel.
    * ``y0`` .. ``y<C-1>``: out, signed ``acc_width``-bit row sums (wrapping).
    * ``busy``: out; ``error``: out, sticky: a fetcher's error (AXI response, empty
      command) or an invalid packed byte.

    Timing (:class:`mmfree.spec.FetchedProductSpec`): with the vector loaded and the
    results taken, a product takes :meth:`~mmfree.spec.FetchedProductSpec.cycles` from the
    command's transfer to the last row sum's: the command register, the fetcher's delivery
    of a core's ``R * G`` groups (one per cycle at most) and the core's latency.
    Synchronous reset abandons everything (the memories must be reset with it).
    """

    def __init__(self, *, cores: int = FetchedProductSpec.cores,
                 lanes: int = FetchedProductSpec.lanes,
                 packed: bool = FetchedProductSpec.packed,
                 max_dim: int = FetchedProductSpec.max_dim,
                 act_width: int = FetchedProductSpec.act_width,
                 acc_width: int = FetchedProductSpec.acc_width,
                 tree_levels_per_stage: int = FetchedProductSpec.tree_levels_per_stage,
                 data_width: int = FetchedProductSpec.data_width,
                 addr_width: int = FetchedProductSpec.addr_width,
                 max_burst: int = FetchedProductSpec.max_burst,
                 outstanding: int = FetchedProductSpec.outstanding,
                 fifo_depth: int = FetchedProductSpec.fifo_depth,
                 len_width: int = FetchedProductSpec.len_width) -> None:
        self.spec = spec = FetchedProductSpec(
            cores=cores, lanes=lanes, packed=packed, max_dim=max_dim, act_width=act_width,
            acc_width=acc_width, tree_levels_per_stage=tree_levels_per_stage,
            data_width=data_width, addr_width=addr_width, max_burst=max_burst,
            outstanding=outstanding, fifo_depth=fifo_depth, len_width=len_width).validate()
        members = {
            "x": In(stream.Signature(vector_layout(act_width, lanes))),
            "cmd": In(stream.Signature(product_command_layout(cores, addr_width, len_width))),
        }
        for c in range(cores):
            members[f"axi{c}"] = Out(AxiReadSignature(addr_width=addr_width,
                                                      data_width=data_width))
        for c in range(cores):
            members[f"y{c}"] = Out(stream.Signature(signed(acc_width)))
        members["busy"] = Out(1)
        members["error"] = Out(1)
        self.latency = spec.latency
        super().__init__(members)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self.spec
        cores = spec.cores
        rst = ResetSignal()
        groups = spec.max_groups
        m.submodules.acts = acts = memory.Memory(
            shape=data.ArrayLayout(signed(spec.act_width), spec.lanes), depth=groups, init=[])
        wr = acts.write_port()

        # the vector into the buffer
        loaded = Signal()
        windex = Signal(range(groups))
        m.d.comb += [self.x.ready.eq(~loaded & ~rst), wr.addr.eq(windex),
                     wr.data.eq(self.x.payload.data),
                     wr.en.eq(self.x.valid & self.x.ready)]
        with m.If(self.x.valid & self.x.ready):
            m.d.sync += windex.eq(windex + 1)
            with m.If(self.x.payload.last):
                m.d.sync += [windex.eq(0), loaded.eq(1)]

        fetchers = [WeightFetcher(**spec.fetcher().kwargs()) for _ in range(cores)]
        # the command is registered, then each fetcher takes it on its own (no path from
        # one fetcher's ready to another's command)
        cmd_r = Signal.like(self.cmd.payload)
        pend = [Signal(name=f"cmd_pending{c}") for c in range(cores)]
        m.d.comb += self.cmd.ready.eq(~Cat(*pend).any() & ~rst)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [cmd_r.eq(self.cmd.payload), *(p.eq(1) for p in pend)]
        done = [Signal(name=f"done{c}") for c in range(cores)]
        errors = []
        for c, f in enumerate(fetchers):
            m.submodules[f"fetcher{c}"] = f
            m.submodules[f"core{c}"] = core = TernaryCore(**spec.core().kwargs())
            wiring.connect(m, f.axi, wiring.flipped(getattr(self, f"axi{c}")))
            wiring.connect(m, core.y, wiring.flipped(getattr(self, f"y{c}")))
            m.d.comb += [f.cmd.valid.eq(pend[c]),
                         f.cmd.payload.addr.eq(cmd_r.addr[c]),
                         f.cmd.payload.rows.eq(cmd_r.rows),
                         f.cmd.payload.groups.eq(cmd_r.groups)]
            with m.If(f.cmd.valid & f.cmd.ready):
                m.d.sync += pend[c].eq(0)
            errors.append(f.error)
            # the fetcher's groups pass while the vector is loaded and this matrix not done
            # (packed: its final group not yet in the unpacker, ``pending``)
            pending = Signal(name=f"pending{c}")
            open_ = loaded & ~done[c] & ~pending
            if spec.packed:
                m.submodules[f"unpacker{c}"] = up = TritUnpacker(spec.lanes)
                m.d.comb += [up.i.valid.eq(f.o.valid & open_),
                             up.i.payload.packed.eq(f.o.payload.packed),
                             up.i.payload.last.eq(f.o.payload.last),
                             f.o.ready.eq(up.i.ready & open_)]
                w_valid, w_codes, w_last = up.o.valid, up.o.payload.codes, up.o.payload.last
                errors.append(up.error)
            else:
                w_valid = f.o.valid & open_
                w_codes, w_last = f.o.payload.codes, f.o.payload.last
            take = core.w.ready & core.x.ready
            if spec.packed:
                m.d.comb += up.o.ready.eq(take)
            else:
                m.d.comb += f.o.ready.eq(take & open_)
            rd = acts.read_port(domain="comb")
            gi = Signal(range(groups), name=f"group{c}")
            m.d.comb += [core.w.valid.eq(w_valid), core.w.payload.codes.eq(w_codes),
                         core.w.payload.last.eq(w_last), core.x.valid.eq(w_valid),
                         rd.addr.eq(gi), core.x.payload.eq(rd.data)]
            with m.If(w_valid & take):
                m.d.sync += gi.eq(gi + 1)
                with m.If(w_last):
                    m.d.sync += gi.eq(0)
            final_in = f.o.valid & f.o.ready & f.o.payload.final
            if spec.packed:  # done once that group has left the unpacker for the core
                with m.If(final_in):
                    m.d.sync += pending.eq(1)
                with m.If(pending & up.o.valid & up.o.ready):
                    m.d.sync += [pending.eq(0), done[c].eq(1)]
            else:
                with m.If(final_in):
                    m.d.sync += done[c].eq(1)
        all_done = Cat(*done).all()
        with m.If(all_done):
            m.d.sync += [loaded.eq(0), *(d.eq(0) for d in done)]
        m.d.comb += [self.error.eq(Cat(*errors).any()),
                     self.busy.eq(loaded | Cat(*(f.busy for f in fetchers)).any())]
        return m
