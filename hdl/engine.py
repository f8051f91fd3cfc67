"""The whole-token engine: sequencer, VMEM, program memory, BitLinear, vector and scalar
units."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal, Value, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.engine import KINDS, EngineSpec
from .axi import AxiReadSignature
from .bitlinear_unit import BitLinearUnit, matrix_weight_layout
from .multicore_bitlinear import MultiCoreBitLinear
from .scalar_unit import EXP_BITS, ScalarUnit
from .vector_unit import VectorUnit

__all__ = ["Engine", "instr_layout", "load_layout", "prog_layout"]


def instr_layout(spec: EngineSpec) -> data.StructLayout:
    """The instruction word (:meth:`mmfree.spec.engine.EngineSpec.instr_fields`)."""
    return data.StructLayout({name: (signed(bits) if sgn else unsigned(bits))
                              for name, bits, sgn in spec.instr_fields()})


def load_layout(spec: EngineSpec) -> data.StructLayout:
    """A host write into VMEM: the word address ``addr`` and the word ``data`` (``lanes``
    signed ``width``-bit elements, lane 0 lowest)."""
    return data.StructLayout({"addr": unsigned(spec.addr_bits),
                              "data": data.ArrayLayout(signed(spec.width), spec.lanes)})


def prog_layout(spec: EngineSpec) -> data.StructLayout:
    """A host write into the program memory: ``addr`` and the instruction ``data``."""
    return data.StructLayout({"addr": unsigned(spec.prog_bits), "data": instr_layout(spec)})


class Engine(wiring.Component):
    """The whole-token engine (docs/engine.md): a sequencer runs the per-token program over
    VMEM (words of ``lanes`` signed ``width``-bit elements), the BitLinear unit
    (:class:`~mmfree.hdl.bitlinear_unit.BitLinearUnit`), the vector unit
    (:class:`~mmfree.hdl.vector_unit.VectorUnit`) and the scalar unit
    (:class:`~mmfree.hdl.scalar_unit.ScalarUnit`), one instruction at a time.

    Ports (valid/ready streams):

    * ``load`` in, :func:`load_layout`, and ``prog`` in, :func:`prog_layout`: host writes
      into VMEM and into the program memory (taken while the engine is idle).
    * ``rd`` in (a VMEM word address) and ``rd_data`` out (the word): host reads while
      idle.
    * ``start`` in: one beat runs the program from the instruction it gives (0: the whole
      program) to its ``END``.
    * ``done`` out: one beat per program run, the argmax as ``group`` and ``lane`` (index
      ``group * lanes + lane``).
    * ``w`` in: the ternary weights, in program order
      (:func:`~mmfree.hdl.bitlinear_unit.matrix_weight_layout`), straight to the BitLinear
      unit.
    * ``error`` out: the BitLinear unit's sticky error (a weight row of the wrong length),
      until reset.

    With ``cores`` > 0 the BitLinear unit is a
    :class:`~mmfree.hdl.multicore_bitlinear.MultiCoreBitLinear` and there is no ``w``:
    ports ``axi0`` .. ``axi<K-1>`` (:class:`~mmfree.hdl.axi.AxiReadSignature` managers,
    one per memory channel: ``K = cores``, or ``K = channels`` with ``cores / channels``
    cores sharing each port through an AR arbiter, core ``c`` on ``axi<c mod K>``) read
    each ``BITLINEAR``'s matrix from the address in its instruction (``waddr``, the host's
    memory map: :meth:`mmfree.spec.engine.EngineSpec.matrix_addresses`), and ``error``
    also reports the AXI side's errors.

    Timing: per instruction :class:`mmfree.spec.engine.EngineCycles` (the sequencer waits
    for each instruction's last result before fetching the next); a token takes
    :func:`mmfree.spec.engine.program_cycles` from the ``start`` transfer to the ``done``
    transfer with the weight stream keeping up. Synchronous reset stops a run and empties
    every unit; VMEM and the program memory keep their contents (the host zeroes the
    recurrent states for a new sequence).
    """

    def __init__(self, lanes: int = EngineSpec.lanes, width: int = EngineSpec.width,
                 vmem_words: int = EngineSpec.vmem_words,
                 prog_depth: int = EngineSpec.prog_depth, max_dim: int = EngineSpec.max_dim,
                 max_k: int = EngineSpec.max_k, cores: int = EngineSpec.cores,
                 packed: bool = EngineSpec.packed, data_width: int = EngineSpec.data_width,
                 addr_width: int = EngineSpec.addr_width,
                 max_burst: int = EngineSpec.max_burst,
                 outstanding: int = EngineSpec.outstanding,
                 fifo_depth: int = EngineSpec.fifo_depth,
                 channels: int = EngineSpec.channels) -> None:
        self.spec = spec = EngineSpec(lanes=lanes, width=width, vmem_words=vmem_words,
                                      prog_depth=prog_depth, max_dim=max_dim,
                                      max_k=max_k, cores=cores, packed=packed,
                                      data_width=data_width, addr_width=addr_width,
                                      max_burst=max_burst, outstanding=outstanding,
                                      fifo_depth=fifo_depth, channels=channels).validate()
        vec = spec.vector()
        ids = spec.bitlinear().port_id_width if cores else 1  # type: ignore[attr-defined]
        weights = ({"w": In(stream.Signature(matrix_weight_layout(lanes)))} if not cores else
                   {f"axi{c}": Out(AxiReadSignature(addr_width=addr_width,
                                                    data_width=data_width, id_width=ids))
                    for c in range(spec.ports)})
        super().__init__({
            "load": In(stream.Signature(load_layout(spec))),
            "prog": In(stream.Signature(prog_layout(spec))),
            "rd": In(stream.Signature(unsigned(spec.addr_bits))),
            "rd_data": Out(stream.Signature(data.ArrayLayout(signed(width), lanes))),
            "start": In(stream.Signature(unsigned(spec.prog_bits))),
            "done": Out(stream.Signature(data.StructLayout({
                "group": unsigned(vec.group_bits),
                "lane": unsigned(max(1, (lanes - 1).bit_length()))}))),
            **weights,
            "error": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec, n, w = self.spec, self.spec.lanes, self.spec.width
        vspec, bspec, fixed = spec.vector(), spec.bitlinear(), spec.fixed()
        m.submodules.vec = vec = VectorUnit(**vspec.kwargs())
        if spec.cores:
            m.submodules.bl = bl = MultiCoreBitLinear(**bspec.kwargs())
            for c in range(spec.ports):
                wiring.connect(m, getattr(bl, f"axi{c}"),
                               wiring.flipped(getattr(self, f"axi{c}")))
        else:
            m.submodules.bl = bl = BitLinearUnit(**bspec.kwargs())
            wiring.connect(m, wiring.flipped(self.w), bl.w)
        m.submodules.sc = sc = ScalarUnit(
            sumsq_width=vspec.sumsq_width, scale_width=bspec.fmt.scale_width,
            rsqrt_bits=fixed.rsqrt_bits, scale_bits=fixed.scale_bits,
            bitlinear_s=bspec.fmt.rsqrt_frac)
        word = data.ArrayLayout(signed(w), n)
        # VMEM: block RAM. ``no_rw_check``: no cycle reads a word that is being written, so
        # no read-during-write logic is needed (the host's reads and writes exclude each
        # other; an instruction's writes trail its reads and never reach a word it has still
        # to read: :meth:`mmfree.spec.engine.EngineSpec.encode` rejects a program that
        # would)
        # Four copies, one per operand port, written together (the copies Yosys would make
        # for four read ports, made here so its memory mapper has one port pair per copy).
        vmems = []
        for k in range(4):
            vm = memory.Memory(shape=word, depth=spec.vmem_words, init=[],
                               attrs={"no_rw_check": 1})
            m.submodules[f"vmem{k}"] = vm
            vmems.append(vm)
        ilay = instr_layout(spec)
        # ``no_rw_check``: the host writes the program only while the engine is idle, never in
        # the cycle before a ``start`` (``start.ready`` waits on ``~prog.valid``), so no read
        # that matters meets a write to its address. Without it Yosys guards the read port
        # with a bypass multiplexer after the block RAM, and ``ins`` cannot be the block's
        # output register: the sequencer then starts 5.8 ns after the edge.
        m.submodules.prog = prog = memory.Memory(shape=ilay, depth=spec.prog_depth, init=[],
                                                 attrs={"no_rw_check": 1})
        m.d.comb += self.error.eq(bl.error)
        rst = ResetSignal()

        # --- states (one-hot) -------------------------------------------------------------
        names = ("idle", "fetch", "fetch2", "issue", "vec", "bl", "sc", "done")
        st = {k: Signal(name=f"st_{k}", init=k == "idle") for k in names}

        def goto(frm: str, to: str) -> list:
            return [st[frm].eq(0), st[to].eq(1)]

        # --- host port: loads and reads while idle ---------------------------------------
        wps = [vm.write_port() for vm in vmems]
        wp = wps[0]
        for other in wps[1:]:
            m.d.comb += [other.addr.eq(wp.addr), other.data.eq(wp.data), other.en.eq(wp.en)]
        pw = prog.write_port()
        lp, pp = self.load.payload, self.prog.payload
        m.d.comb += [self.load.ready.eq(st["idle"] & ~rst),
                     self.prog.ready.eq(st["idle"] & ~rst)]
        host_wr = Signal()
        m.d.comb += host_wr.eq(self.load.valid & self.load.ready)
        m.d.comb += [pw.addr.eq(pp.addr), pw.data.eq(pp.data),
                     pw.en.eq(self.prog.valid & self.prog.ready)]
        # host reads: one at a time through operand port 0 (block RAM and its output
        # register: the word is in rd_data three cycles after the rd transfer)
        rd_valid, hv1, hv2 = Signal(), Signal(), Signal()
        rd_word = Signal(word)
        wr_addr = Signal.like(wp.addr, reset_less=True)
        wr_data = Signal.like(wp.data, reset_less=True)
        wr_en = Signal()  # a write registered for the block RAMs (see the write port)
        m.d.comb += [self.rd.ready.eq(st["idle"] & ~rst & ~self.load.valid & ~wr_en & ~hv1
                                      & ~hv2 & ~rd_valid),
                     self.rd_data.valid.eq(rd_valid), self.rd_data.payload.eq(rd_word)]
        m.d.sync += [hv1.eq(self.rd.valid & self.rd.ready), hv2.eq(hv1)]
        with m.If(self.rd_data.ready):
            m.d.sync += rd_valid.eq(0)
        with m.If(rst):
            m.d.sync += [rd_valid.eq(0), hv1.eq(0), hv2.eq(0)]

        # --- fetch and decode --------------------------------------------------------------
        # The program memory is block RAM with a registered read; the instruction word is
        # registered once more after it (a plain flip-flop: the block RAM's output register
        # on ECP5), so the whole sequencer runs from a flip-flop rather than from a block
        # RAM's slow clock-to-output. ``pc`` holds still while an instruction runs, so
        # ``ins`` is the instruction at ``pc`` from two cycles after ``pc`` changes.
        pc = Signal(range(spec.prog_depth))
        ins = Signal(ilay, reset_less=True)
        pr = prog.read_port(transparent_for=())
        m.d.comb += pr.addr.eq(pc)
        m.d.sync += ins.eq(pr.data)
        m.d.comb += self.start.ready.eq(st["idle"] & ~rst & ~self.load.valid
                                        & ~self.prog.valid)
        with m.If(self.start.valid & self.start.ready):
            m.d.sync += [pc.eq(self.start.payload), *goto("idle", "fetch")]
        with m.If(st["fetch"]):  # the block RAM reads pc
            m.d.sync += goto("fetch", "fetch2")
        with m.If(st["fetch2"]):  # its word enters ``ins``
            m.d.sync += goto("fetch2", "issue")
        kind = {k: Signal(name=f"k_{k}") for k in KINDS}
        for k, code in KINDS.items():
            m.d.comb += kind[k].eq(Cat(*(ins.kind[i] if (code >> i) & 1 else ~ins.kind[i]
                                         for i in range(3))).all())

        # --- registers: N, (g, sh), (D, E), the argmax ------------------------------------
        sumsq = Signal(vspec.sumsq_width)
        g = Signal(fixed.scale_bits)
        sh = Signal(signed(EXP_BITS))
        d_reg = Signal(bspec.fmt.scale_width)
        e_reg = Signal.like(bl.scale.payload.exp)
        am_group = Signal.like(self.done.payload.group)
        am_lane = Signal.like(self.done.payload.lane)

        # --- operand streaming: counters shared by the vector and BitLinear paths ---------
        ra, rb, rc, rd_, wa = (Signal(spec.addr_bits, name=nm)
                               for nm in ("ra", "rb", "rc", "rdd", "wa"))
        in_left = Signal(vspec.group_bits + 1)  # operand groups still to send
        out_left = Signal(max(vspec.group_bits, spec.max_dim.bit_length()) + 1)  # results
        got_s = Signal()  # the reduction's / the BitLinear's scale result arrived
        cmd_pending = Signal()
        bl_cmd_pending = Signal()  # with cores: the BitLinear's matrix command
        # --- operand reads: four block RAM ports, their output registers, a FIFO --------
        # A read is issued while operand groups remain to be read and the FIFO has room for
        # it beside the reads in flight; its words enter the FIFO two cycles later and can
        # be taken the cycle after (EngineCycles.OPERAND: the first operand group of an
        # instruction three cycles after its unit's state begins).
        rd_left = Signal.like(in_left)  # operand groups still to be read
        # each count's "not zero" as a flip-flop, updated with it (the count = 1 compare
        # sits beside the decrement's enable, not after it): the sequencer's decisions
        # start from flip-flops
        in_nz, out_nz, rd_nz = Signal(), Signal(), Signal()
        # ``in_one`` and ``out_one`` are flip-flops too, updated from ``in_left == 2`` and
        # ``out_left == 2``: ``in_one`` is the BitLinear group's ``last`` and its lane masks,
        # which reach the quantiser's state register (``ends``) in the cycle of the
        # transfer; ``out_one`` is in the row packer's ``full``, which reaches the write
        # address's enable
        in_one, out_one, rd_one = Signal(), Signal(), Signal()
        in_two, out_two = Signal(), Signal()
        m.d.comb += [in_two.eq(~in_left[0] & in_left[1] & ~in_left[2:].any()),
                     out_two.eq(~out_left[0] & out_left[1] & ~out_left[2:].any()),
                     rd_one.eq(rd_left[0] & ~rd_left[1:].any())]
        ports = [vm.read_port() for vm in vmems]
        m.d.comb += [ports[0].addr.eq(Mux(st["idle"], self.rd.payload, ra)),
                     ports[1].addr.eq(rb), ports[2].addr.eq(rc), ports[3].addr.eq(rd_)]
        held = [Signal(word, name=f"op{k}_q", reset_less=True) for k in range(4)]
        m.d.sync += [h.eq(p.data) for h, p in zip(held, ports, strict=True)]
        with m.If(hv2):
            m.d.sync += [rd_valid.eq(1), rd_word.eq(held[0])]
        # One FIFO per operand port, each written by its own copy of ``iv2``: one FIFO 4
        # words wide put a single enable on all its LUT RAM cells across the engine (the
        # 4-lane engine's routed critical path: ``iv2`` -> the write enable, 6.6 ns of
        # routing). They move together; ``opq`` (port 0's) stands for all four.
        opqs = [fifo.SyncFIFO(width=len(Value.cast(held[0])), depth=4) for _ in range(4)]
        for k, q in enumerate(opqs):
            m.submodules[f"opq{k}"] = q
        opq = opqs[0]
        op_take = Signal()  # the operand groups at the FIFOs' heads are taken
        iv1 = Signal()
        iv2s = [Signal(name=f"iv2_{k}", attrs={"keep": 1}) for k in range(4)]
        iv2 = iv2s[0]
        issue = Signal()
        room = Signal()
        used = Signal(range(opq.depth + 3))  # the FIFO's level and the reads in flight
        m.d.comb += used.eq(opq.level + iv1 + iv2)
        m.d.comb += [room.eq(used < Const(opq.depth, len(used))),
                     issue.eq((st["vec"] | st["bl"]) & rd_nz & room),
                     *(q.w_en.eq(v) for q, v in zip(opqs, iv2s, strict=True)),
                     *(q.w_data.eq(h) for q, h in zip(opqs, held, strict=True)),
                     *(q.r_en.eq(op_take) for q in opqs)]
        m.d.sync += [iv1.eq(issue), *(v.eq(iv1) for v in iv2s)]
        # the FIFOs hold a group: a flip-flop beside their level (level != 0 one cycle
        # later), so the operand handshake starts from flip-flops and not from a compare
        # of the level (the 4-lane engine's routed critical path: the level -> the
        # handshake -> the FIFOs' levels)
        op_ne = Signal()
        lv = opq.level
        m.d.sync += op_ne.eq(iv2 | lv[1:].any() | (lv[0] & ~op_take))
        with m.If(issue):
            m.d.sync += [ra.eq(ra + 1), rb.eq(rb + 1), rc.eq(rc + 1), rd_.eq(rd_ + 1),
                         rd_left.eq(rd_left - 1), rd_nz.eq(~rd_one)]
        opw = [Signal(word, name=f"opw{k}") for k in range(4)]
        m.d.comb += [o.eq(q.r_data) for o, q in zip(opw, opqs, strict=True)]
        groups = Signal(vspec.group_bits + 1)
        m.d.comb += groups.eq(ins.groups_m1 + 1)
        rows = Signal.like(ins.rows)
        m.d.comb += rows.eq(ins.rows)

        is_reduce = Signal()  # the running vector instruction is a reduction (a flip-flop)
        with m.If(st["issue"]):
            m.d.sync += [ra.eq(ins.a), rb.eq(ins.b), rc.eq(ins.c), rd_.eq(ins.d),
                         wa.eq(ins.dst), in_left.eq(groups), in_nz.eq(1),
                         in_one.eq(~ins.groups_m1.any()), got_s.eq(0),
                         is_reduce.eq(kind["reduce"])]
            with m.If(kind["map"] | kind["reduce"] | kind["bitlinear"]):
                m.d.sync += [rd_left.eq(groups), rd_nz.eq(1)]
            with m.If(kind["map"]):
                m.d.sync += [out_left.eq(groups), out_nz.eq(1),
                             out_one.eq(~ins.groups_m1.any()), cmd_pending.eq(1),
                             *goto("issue", "vec")]
            with m.If(kind["reduce"]):
                m.d.sync += [out_left.eq(0), out_nz.eq(0), out_one.eq(0), cmd_pending.eq(1),
                             *goto("issue", "vec")]
            with m.If(kind["bitlinear"]):
                m.d.sync += [out_left.eq(rows), out_nz.eq(rows.any()),
                             out_one.eq(rows[0] & ~rows[1:].any()), *goto("issue", "bl")]
                if spec.cores:
                    m.d.sync += bl_cmd_pending.eq(1)
            with m.If(kind["rmsscale"] | kind["rescale"]):
                m.d.comb += sc.start.eq(1)
                m.d.sync += goto("issue", "sc")
            with m.If(kind["end"]):
                m.d.sync += goto("issue", "done")

        # --- vector unit ---------------------------------------------------------------
        # The command's fields are registered from ``ins`` in every cycle (``vcmd``): they
        # are offered from the state after ``issue``, when ``ins`` has been stable for a
        # cycle (and ``g``, ``sh`` since the last ``RMSSCALE``), so the register costs no
        # cycle and the route from the program memory's output to the vector unit's
        # command decode (across the engine) gets a cycle of its own.
        vc = vec.cmd.payload
        vcmd = Signal.like(vc, name="vcmd", reset_less=True)
        m.d.sync += [
            vcmd.op.eq(ins.vop), vcmd.groups_m1.eq(ins.groups_m1), vcmd.mask.eq(ins.mask),
            vcmd.shift.eq(Mux(ins.gs, sh, ins.shift)), vcmd.align.eq(ins.align),
            vcmd.ow.eq(ins.ow), vcmd.rlog.eq(ins.rlog),
            vcmd.scalar.eq(Mux(ins.gs, g, ins.scalar)),
        ]
        m.d.comb += [vec.cmd.valid.eq(st["vec"] & cmd_pending), vc.eq(vcmd)]
        with m.If(vec.cmd.valid & vec.cmd.ready):
            m.d.sync += cmd_pending.eq(0)
        send = Signal()
        m.d.comb += send.eq(st["vec"] & ~cmd_pending & in_nz & op_ne)
        for port, src in zip((vec.a, vec.b, vec.c, vec.d), opw, strict=True):
            m.d.comb += [port.valid.eq(send), port.payload.eq(src)]
        took = Signal()  # b, c, d transfer with a whenever the op reads them
        m.d.comb += took.eq(vec.a.ready | vec.b.ready | vec.c.ready | vec.d.ready)
        with m.If(send & took):
            m.d.comb += op_take.eq(1)
            m.d.sync += [in_left.eq(in_left - 1), in_nz.eq(~in_one), in_one.eq(in_two)]
        m.d.comb += [vec.y.ready.eq(1), vec.s.ready.eq(1)]
        vec_write = Signal()
        m.d.comb += vec_write.eq(vec.y.valid)
        with m.If(vec.y.valid):
            m.d.sync += [wa.eq(wa + 1), out_left.eq(out_left - 1), out_nz.eq(~out_one),
                         out_one.eq(out_two)]
        with m.If(vec.s.valid):
            m.d.sync += got_s.eq(1)
            with m.If(ins.vop[0]):  # ARGMAX
                m.d.sync += [am_group.eq(vec.s.payload.group), am_lane.eq(vec.s.payload.lane)]
            with m.Else():
                m.d.sync += sumsq.eq(vec.s.payload.value)
        vec_end = Signal()
        m.d.comb += vec_end.eq(~cmd_pending & ~in_nz & Mux(is_reduce, got_s, ~out_nz))
        with m.If(st["vec"] & vec_end):
            m.d.sync += [pc.eq(pc + 1), *goto("vec", "fetch")]

        # --- BitLinear unit --------------------------------------------------------------
        if spec.cores:  # the matrix's command, sent with the vector's first group
            cp = bl.cmd.payload
            m.d.comb += [bl.cmd.valid.eq(st["bl"] & bl_cmd_pending), cp.addr.eq(ins.waddr),
                         cp.rows.eq(ins.rows), cp.rows_pc.eq(ins.rows_pc),
                         cp.groups.eq(groups)]
            with m.If(bl.cmd.valid & bl.cmd.ready):
                m.d.sync += bl_cmd_pending.eq(0)
        xp = bl.x.payload
        bl_send = Signal()
        m.d.comb += bl_send.eq(st["bl"] & in_nz & op_ne)
        last_group = in_one
        m.d.comb += [bl.x.valid.eq(bl_send), xp.last.eq(last_group)]
        for i in range(n):
            keep = Signal(name=f"keep{i}")
            m.d.comb += keep.eq(~last_group | ins.mask[i])
            m.d.comb += [xp.data[i].eq(Mux(keep, opw[0][i], 0)),
                         xp.weight[i].eq(Mux(keep, opw[1][i], 0))]
        with m.If(bl.x.valid & bl.x.ready):
            m.d.comb += op_take.eq(1)
            m.d.sync += [in_left.eq(in_left - 1), in_nz.eq(~in_one), in_one.eq(in_two)]
        # row sums packed into words, lane by lane
        pack = Signal(word)
        lane = Signal(n, init=1)  # one-hot: the lane of the next row sum
        m.d.comb += [bl.y.ready.eq(1), bl.scale.ready.eq(1)]
        bl_write = Signal()
        full = Signal()
        m.d.comb += full.eq(lane[n - 1] | out_one)
        with m.If(bl.y.valid):
            m.d.sync += [pack[i].eq(Mux(lane[i], bl.y.payload, pack[i])) for i in range(n)]
            m.d.sync += [out_left.eq(out_left - 1), out_nz.eq(~out_one), out_one.eq(out_two),
                         lane.eq(Mux(full, 1, Cat(Const(0, 1), lane[:n - 1])))]
            m.d.comb += bl_write.eq(full)
        with m.If(bl.scale.valid):
            m.d.sync += [got_s.eq(1), d_reg.eq(bl.scale.payload.scale),
                         e_reg.eq(bl.scale.payload.exp)]
        with m.If(st["issue"]):
            m.d.sync += lane.eq(1)
        packed = Signal(word)
        for i in range(n):
            m.d.comb += packed[i].eq(Mux(lane[i], bl.y.payload, pack[i]))
        with m.If(bl_write):
            m.d.sync += wa.eq(wa + 1)
        bl_end = Signal()
        m.d.comb += bl_end.eq(~in_nz & ~out_nz & got_s & ~bl_cmd_pending)
        with m.If(st["bl"] & bl_end):
            m.d.sync += [pc.eq(pc + 1), *goto("bl", "fetch")]

        # --- VMEM write port: host, vector results, BitLinear rows ------------------------
        # The chosen write is registered before the block RAMs (``wr_*``): the choice
        # (``bl_write`` comes from the row counter) and the 4 x word-wide block RAM pins
        # are then in different cycles. A word lands one cycle after its source offers it;
        # nothing reads it that soon: an instruction's last write is at least four cycles
        # before the next instruction's first read (``fetch``, ``fetch2``, ``issue``), and
        # a host read waits for a pending host write (``rd.ready``).
        # The source is chosen by the state (flip-flops): vector results come only in
        # ``vec``, BitLinear rows only in ``bl``, host writes only in ``idle``; only the
        # enable depends on the row counter (``bl_write``).
        m.d.sync += [wr_addr.eq(Mux(st["idle"], lp.addr, wa)),
                     wr_data.eq(Mux(st["vec"], vec.y.payload, Mux(st["bl"], packed, lp.data))),
                     wr_en.eq(vec_write | bl_write | host_wr)]
        m.d.comb += [wp.addr.eq(wr_addr), wp.data.eq(wr_data), wp.en.eq(wr_en)]

        # --- scalar unit -----------------------------------------------------------------
        m.d.comb += [sc.rescale.eq(kind["rescale"]), sc.sumsq.eq(sumsq), sc.eps.eq(ins.eps),
                     sc.k_m.eq(ins.km), sc.k_e.eq(ins.ke), sc.d.eq(d_reg), sc.e.eq(e_reg),
                     sc.c_m.eq(ins.km), sc.c_e.eq(ins.ke), sc.out_frac.eq(ins.out_frac)]
        with m.If(st["sc"] & ~sc.busy):
            m.d.sync += [g.eq(sc.g), sh.eq(sc.shift), pc.eq(pc + 1), *goto("sc", "fetch")]

        # --- done ------------------------------------------------------------------------
        m.d.comb += [self.done.valid.eq(st["done"]), self.done.payload.group.eq(am_group),
                     self.done.payload.lane.eq(am_lane)]
        with m.If(self.done.valid & self.done.ready):
            m.d.sync += goto("done", "idle")

        with m.If(rst):
            m.d.sync += [st[k].eq(k == "idle") for k in names]
            m.d.sync += [cmd_pending.eq(0), bl_cmd_pending.eq(0), in_left.eq(0),
                         out_left.eq(0), rd_left.eq(0), iv1.eq(0), *(v.eq(0) for v in iv2s),
                         in_nz.eq(0), in_one.eq(0), out_nz.eq(0), out_one.eq(0), rd_nz.eq(0),
                         op_ne.eq(0)]
        return m
