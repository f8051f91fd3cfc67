"""The bulk co-simulation harness, testbench side (the wrapper: :mod:`mmfree.sim.bulk`).

A bulk testbench prepares whole streams in numpy, writes them as beat memories
(:meth:`BulkHarness.load`), and runs **segments** (:meth:`BulkHarness.segment`): one
``await`` per segment while the simulator plays the beats, stalls and resets on its own, with
its clock on the C side (``Clock(..., impl="gpi")``). What each output stream transferred
comes back in bulk with its cycle stamps (:class:`Capture`), to be compared with the golden
model in numpy. Payloads go through :class:`BulkCodec`: vectorised encoders and decoders
compiled from the hardware's ``amaranth.lib.data`` layouts (the same layouts
:class:`~mmfree.sim.kit.payload.Codec` reads beat by beat).

Use it where a test is a long stream whose stimulus does not depend on the outputs (or depends
only per transaction, like a model's next product); keep the per-beat drivers of
:mod:`mmfree.sim.kit.streams` where a test must react inside a transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data, wiring
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from ..bulk import DEFAULT_DEPTH, stream_ports
from .bench import PERIOD_NS

__all__ = ["BulkCodec", "BulkHarness", "Capture", "SegmentResult"]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i


class BulkCodec:
    """Whole arrays of beats to and from bit matrices (``beats x width`` of 0/1), from a
    port's Amaranth shape. Values: a struct is a mapping of field name to an array with one
    entry per beat (arrays of arrays for array fields), an array layout an integer array of
    shape ``(beats, length)``, a plain shape a 1-D integer array. Decoding gives the same
    (``int64``; plain shapes wider than 63 bits as Python ``int`` objects)."""

    def __init__(self, shape: Any) -> None:
        self.shape = shape
        self.width = Shape.cast(shape).width

    def to_bits(self, value: Any, beats: int) -> np.ndarray:
        out = np.zeros((beats, self.width), dtype=np.uint8)
        self._put(self.shape, value, out, 0, beats)
        return out

    def _put(self, shape: Any, value: Any, out: np.ndarray, offset: int, beats: int) -> None:
        if isinstance(shape, data.StructLayout):
            if not isinstance(value, Mapping):
                raise TypeError("a struct payload needs a mapping of its fields")
            for name, f in shape:
                self._put(f.shape, value[name], out, offset + f.offset, beats)
        elif isinstance(shape, data.ArrayLayout):
            v = np.asarray(value)
            ew = Shape.cast(shape.elem_shape).width
            if v.shape != (beats, shape.length):
                raise ValueError(f"expected shape {(beats, shape.length)}, got {v.shape}")
            es = Shape.cast(shape.elem_shape)
            if isinstance(shape.elem_shape, data.Layout) or ew > 64:
                for i in range(shape.length):
                    self._put(shape.elem_shape, v[:, i], out, offset + i * ew, beats)
                return
            _check_range(v, es)
            if ew in (8, 16, 32, 64):  # whole bytes: numpy writes the two's complement
                raw = np.ascontiguousarray(v.astype(f"<{'i' if es.signed else 'u'}{ew // 8}"))
                bits = np.unpackbits(raw.view(np.uint8).reshape(beats, -1), axis=1,
                                     bitorder="little")
            else:
                bits = ((v.astype(np.int64)[:, :, None] >> np.arange(ew, dtype=np.int64)) & 1
                        ).astype(np.uint8)
            out[:, offset:offset + shape.length * ew] = bits.reshape(beats, -1)
        else:
            s = Shape.cast(shape)
            v = np.asarray(value, dtype=np.int64).reshape(beats)
            _check_range(v, s)
            bits = (v[:, None] >> np.arange(min(s.width, 64), dtype=np.int64)) & 1
            out[:, offset:offset + min(s.width, 64)] = bits
            if s.width > 64:  # sign extension of wide fields
                out[:, offset + 64:offset + s.width] = (v < 0)[:, None]

    def from_bits(self, bits: np.ndarray) -> Any:
        return self._get(self.shape, bits, 0)

    def _get(self, shape: Any, bits: np.ndarray, offset: int) -> Any:
        if isinstance(shape, data.StructLayout):
            return {name: self._get(f.shape, bits, offset + f.offset) for name, f in shape}
        if isinstance(shape, data.ArrayLayout):
            ew = Shape.cast(shape.elem_shape).width
            cols = [self._get(shape.elem_shape, bits, offset + i * ew)
                    for i in range(shape.length)]
            return np.stack(cols, axis=1) if cols else np.zeros((len(bits), 0), np.int64)
        s = Shape.cast(shape)
        b = bits[:, offset:offset + s.width]
        if s.width > 63:
            vals = [int("".join(map(str, row[::-1])), 2) for row in b]
            if s.signed:
                vals = [v - (1 << s.width) if v >> (s.width - 1) else v for v in vals]
            return np.array(vals, dtype=object)
        v = (b.astype(np.int64) << np.arange(s.width, dtype=np.int64)).sum(axis=1)
        if s.signed and s.width:
            v = v - ((v >> (s.width - 1)) << s.width)
        return v


def _check_range(v: np.ndarray, s: Shape) -> None:
    lo = -(1 << (s.width - 1)) if s.signed else 0
    hi = (1 << (s.width - 1)) - 1 if s.signed else (1 << s.width) - 1
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"values outside {lo}..{hi}")


def bits_to_hex(bits: np.ndarray) -> bytes:
    """``$readmemh`` text of a bit matrix: one line per beat, most significant digit first."""
    beats, width = bits.shape
    digits = max(1, -(-width // 4))
    packed = np.packbits(bits, axis=1, bitorder="little")  # beats x ceil(width/8) bytes
    nib = np.empty((beats, packed.shape[1] * 2), dtype=np.uint8)
    nib[:, 0::2] = packed & 15
    nib[:, 1::2] = packed >> 4
    chars = np.empty((beats, digits + 1), dtype=np.uint8)
    chars[:, :digits] = _HEX[nib[:, digits - 1::-1]]
    chars[:, digits] = ord("\n")
    return chars.tobytes()


def _hex_to_bits(chars: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Bit matrix of fixed-width hex fields (rows of ASCII digits, most significant first) and
    a per-row flag for rows holding x/z digits."""
    nib = _NIBBLE[chars]
    bad = (nib == 255).any(axis=1)
    nib = np.where(nib == 255, 0, nib)[:, ::-1]
    bits = ((nib[:, :, None] >> np.arange(4, dtype=np.uint8)) & 1).reshape(
        len(chars), 4 * chars.shape[1])
    return bits[:, :width].astype(np.uint8), bad


@dataclass
class Capture:
    """Every transfer of one output stream in a segment, in order."""

    bits: np.ndarray  #: ``transfers x width`` payload bits
    cycles: np.ndarray  #: the cycle stamp of each transfer (``int64``)
    unknown: np.ndarray  #: transfers whose payload held x or z (Icarus)
    codec: BulkCodec

    def __len__(self) -> int:
        return len(self.cycles)

    def values(self) -> Any:
        """The payloads, decoded (see :class:`BulkCodec`)."""
        return self.codec.from_bits(self.bits)


@dataclass
class SegmentResult:
    """What a segment did."""

    captures: dict[str, Capture]
    first: dict[str, int]  #: per input stream: cycle of its first transfer (-1: none)
    sent: dict[str, int]  #: per input stream: beats transferred
    start_cycle: int
    end_cycle: int
    timed_out: bool
    violations: int  #: reset-contract violations in this segment
    plain: dict[str, int] = field(default_factory=dict)  #: the unit's plain outputs at the end
    wall_s: float = 0.0


class BulkHarness:
    """The testbench side of the bulk wrapper around one unit (``component``: the unit's
    component, for its stream layouts; ``depths``: the beat memory depths the wrapper was
    built with).

    :meth:`start` starts the C-side clock; :meth:`load` writes an input stream's beat memory
    file (read by the wrapper at the next segment that asks for it); :meth:`segment` runs one
    segment and returns its captures. Files go to the simulator's working directory (the run
    folder)."""

    def __init__(self, dut: Any, component: wiring.Component,
                 depths: Mapping[str, int] | None = None, clock: str = "hdl",
                 period_ns: float = PERIOD_NS) -> None:
        self.dut, self.period, self.clock = dut, period_ns, clock
        streams, self.plain = stream_ports(component)
        self.sources = [s.name for s in streams if s.is_input]
        self.sinks = [s.name for s in streams if not s.is_input]
        self.depths = {n: int((depths or {}).get(n, DEFAULT_DEPTH)) for n in self.sources}
        self.codecs = {
            name: BulkCodec(m.signature.members["payload"].shape)
            for name, m in component.signature.members.items()
            if m.is_signature and "payload" in m.signature.members}
        self._offsets = {n: 0 for n in self.sinks}
        self._dirty: set[str] = set()
        self._seg = 0
        self._viol = 0
        self.cycles = 0  #: simulated cycles so far
        self.wall_s = 0.0  #: wall time spent inside segments

    async def start(self) -> None:
        """Start the clock (unless the wrapper makes its own; either way it runs in the
        simulator, not in Python) and set every control input."""
        d = self.dut
        if self.clock == "gpi":
            Clock(d.clk, self.period, unit="ns", impl="gpi").start()
        d.seg.value = 0
        d.seed.value = 1
        for name in ("pre_reset", "rst_at", "rst_len", "drain"):
            getattr(d, name).value = 0
        d.max_cycles.value = 0xFFFF_FFFF
        for n in self.sources:
            for p in ("base", "count", "load", "stall"):
                getattr(d, f"{n}_{p}").value = 0
        for n in self.sinks:
            for p in ("expect", "stall"):
                getattr(d, f"{n}_{p}").value = 0
        for name, direction, _ in self.plain:
            if direction == "input":
                getattr(d, name).value = 0
        for n in self.sources:  # every memory file at full depth, zeros
            zeros = np.zeros((self.depths[n], self.codecs[n].width), dtype=np.uint8)
            with open(self._hex_path(n), "wb") as f:
                f.write(bits_to_hex(zeros))
        self._dirty = set(self.sources)
        await RisingEdge(d.clk)  # the wrapper's initial values are in place

    def encode(self, port: str, value: Any, beats: int) -> np.ndarray:
        """The bit matrix of ``beats`` beats of ``port`` (see :class:`BulkCodec`)."""
        return self.codecs[port].to_bits(value, beats)

    def _hex_path(self, port: str) -> str:
        return f"bulk_{port}.hex"

    def load(self, port: str, bits: np.ndarray, at: int = 0) -> None:
        """Write beats ``at ..`` of input stream ``port``'s beat memory (a bit matrix, see
        :meth:`encode`); the simulator reads the memory file again at the next segment.

        The file always holds the whole memory (``depth`` lines of fixed length), so a load
        rewrites only its own lines: a session can keep weights resident and replace just
        the next vector."""
        depth = self.depths[port]
        if at < 0 or at + len(bits) > depth:
            raise ValueError(f"{port}: beats {at}..{at + len(bits) - 1} outside the memory "
                             f"depth {depth}")
        line = max(1, -(-self.codecs[port].width // 4)) + 1
        with open(self._hex_path(port), "r+b") as f:  # no truncation: rewriting is cheap
            f.seek(at * line)
            f.write(bits_to_hex(bits))
        self._dirty.add(port)

    async def segment(self, *, sources: Mapping[str, tuple[int, int]],
                      expect: Mapping[str, int],
                      stall: Mapping[str, float] | None = None, seed: int = 1,
                      pre_reset: int = 0, reset_at: int = 0, reset_len: int = 2,
                      drain: int = 4, max_cycles: int = 0) -> SegmentResult:
        """Run one segment: each input stream plays beats ``base .. base+count-1``
        (``sources[name] = (base, count)``; streams not named play nothing) of its memory
        (as last :meth:`load`-ed); the segment ends when every input stream has
        sent its beats and every output stream made ``expect[name]`` transfers, then the
        sinks stay watched for ``drain`` cycles. ``stall[name]`` is the probability of a
        bubble (inputs) or of not being ready (outputs), from generators seeded by ``seed``.
        ``pre_reset`` resets the unit for that many cycles first; ``reset_at`` > 0 resets it
        that many cycles after the sources start (inputs still offered), for ``reset_len``
        cycles, and ends the segment after the drain. ``max_cycles`` (default: generous)
        times out a segment that hangs."""
        d = self.dut
        stall = stall or {}
        beats = sum(c for _, c in sources.values())
        d.pre_reset.value = pre_reset
        d.rst_at.value = reset_at
        d.rst_len.value = reset_len
        d.drain.value = drain
        d.max_cycles.value = max_cycles or min(0xFFFF_FFF0, 1000 + 64 * beats
                                               + 64 * sum(expect.values()))
        d.seed.value = _seed(seed, 0)
        for n in self.sources:
            base, count = sources.get(n, (0, 0))
            if base + count > self.depths[n]:
                raise ValueError(f"{n}: beats {base}..{base + count - 1} beyond the memory "
                                 f"depth {self.depths[n]}")
            d_ = getattr
            d_(d, f"{n}_base").value = base
            d_(d, f"{n}_count").value = count
            d_(d, f"{n}_load").value = int(n in self._dirty)
            d_(d, f"{n}_stall").value = _threshold(stall.get(n, 0.0))
        for n in self.sinks:
            getattr(d, f"{n}_expect").value = expect.get(n, 0)
            getattr(d, f"{n}_stall").value = _threshold(stall.get(n, 0.0))
        self._dirty.clear()
        start_cycle = int(d.cycle.value)
        self._seg += 1
        t0 = time.perf_counter()
        d.seg.value = self._seg
        while int(d.seg_done.value) != self._seg:
            await d.seg_done.value_change
        wall = time.perf_counter() - t0
        self.wall_s += wall
        end_cycle = int(d.cycle.value)
        self.cycles = end_cycle
        viol = int(d.violations.value)
        seg_viol, self._viol = viol - self._viol, viol
        captures = {n: self._read(n) for n in self.sinks}
        first = {}
        for n in self.sources:
            f = int(getattr(d, f"{n}_first").value)
            first[n] = -1 if f == (1 << 64) - 1 else f
        sent = {n: int(getattr(d, f"{n}_sent").value) for n in self.sources}
        plain = {name: int(getattr(d, name).value) for name, direction, _ in self.plain
                 if direction == "output"}
        return SegmentResult(captures, first, sent, start_cycle, end_cycle,
                             bool(int(d.timed_out.value)), seg_viol, plain, wall)

    def _read(self, port: str) -> Capture:
        codec = self.codecs[port]
        digits = max(1, -(-codec.width // 4))
        line = 16 + 1 + digits + 1
        path = f"bulk_{port}.out"
        with open(path, "rb") as f:
            f.seek(self._offsets[port])
            raw = f.read()
        n = len(raw) // line
        self._offsets[port] += n * line
        rows = np.frombuffer(raw[: n * line], dtype=np.uint8).reshape(n, line)
        cyc_bits, cyc_bad = _hex_to_bits(rows[:, :16], 64)
        cycles = (cyc_bits[:, :63].astype(np.int64) << np.arange(63, dtype=np.int64)).sum(axis=1)
        bits, bad = _hex_to_bits(rows[:, 17:17 + digits], codec.width)
        return Capture(bits, cycles, bad | cyc_bad, codec)


def _seed(seed: int, stream: int) -> int:
    """A non-zero 32-bit generator seed per stream."""
    x = (seed * 0x9E3779B1 + stream * 0x85EBCA77 + 0x165667B1) & 0xFFFF_FFFF
    return x or 1


def _threshold(p: float) -> int:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"stall probability {p} outside 0..1 (exclusive)")
    return min(255, round(p * 256))


def _rows(values: Any) -> np.ndarray:
    """Decoded outputs as a 2-D integer array, one row per transfer."""
    if isinstance(values, dict):
        return np.concatenate([_rows(v) for v in values.values()], axis=1)
    v = np.asarray(values)
    return v.reshape(len(v), -1)


async def play(h: BulkHarness, report: dict, log: Any, label: str, *,
               beats: Mapping[str, tuple[Any, int]], expect: Mapping[str, Any],
               due: Mapping[str, np.ndarray] | None = None, latency: int = 0,
               stall: Mapping[str, float] | None = None, reset_at: int = 0,
               pre_reset: int = 0, seed: int = 1, drain: int = 4,
               transactions: str | None = None) -> tuple[int, SegmentResult]:
    """Load the beats of every input stream (``beats[port] = (values, count)``, values as
    :class:`BulkCodec` takes them), play them as one segment, and check it; returns the
    problems found and the segment's result.

    Checks: every output stream's transfers equal ``expect[port]`` (decoded values, one
    entry per transfer), exactly and in order; after a mid-stream reset (``reset_at``) what
    came out is a prefix of it; no x/z in an output; no reset-contract violation; no
    timeout. Stall-free (no ``stall``, no reset) and with ``due[port]`` (for each output,
    the index of the input beat that completes it) every output's cycle stamp must be that
    beat's transfer cycle + ``latency``, the beats of the first input stream named in
    ``beats`` transferring one per cycle from its first. ``report`` (a
    :class:`~mmfree.sim.kit.bench.Report`) counts outputs, mismatches, cycle checks,
    segments, resets, violations and, under the name ``transactions``, the beats the first
    input stream transferred."""
    for port, (value, count) in beats.items():
        h.load(port, h.encode(port, value, count))
    res = await h.segment(sources={p: (0, c) for p, (_, c) in beats.items()},
                          expect={p: len(_rows(e)) for p, e in expect.items()},
                          stall=stall, seed=seed, pre_reset=pre_reset, reset_at=reset_at,
                          drain=drain)
    report["segments"] = report.get("segments", 0) + 1
    bad = 0
    if res.violations:
        log.error("%s: %d reset-contract violations", label, res.violations)
        report["violations"] = report.get("violations", 0) + res.violations
        bad += res.violations
    if res.timed_out and not reset_at:
        log.error("%s: timed out", label)
        report["timeouts"] = report.get("timeouts", 0) + 1
        bad += 1
    if reset_at:
        report["resets"] = report.get("resets", 0) + 1
    for port, want in expect.items():
        cap = res.captures[port]
        want_rows = _rows(want)
        got_rows = _rows(cap.values()) if len(cap) else np.zeros((0, want_rows.shape[1]))
        n = min(len(got_rows), len(want_rows))
        wrong = int(np.any(got_rows[:n] != want_rows[:n], axis=1).sum())
        wrong += int(cap.unknown.sum())
        extra = len(got_rows) - len(want_rows)
        if extra > 0 or (extra < 0 and not reset_at):
            log.error("%s: %s: %d transfers, expected %d", label, port, len(got_rows),
                      len(want_rows))
            wrong += abs(extra)
        if wrong:
            first = np.flatnonzero(np.any(got_rows[:n] != want_rows[:n], axis=1))[:3]
            for i in first:
                log.error("%s: %s[%d]: got %s, expected %s", label, port, i,
                          got_rows[i].tolist(), want_rows[i].tolist())
        report["outputs"] += n
        report["mismatches"] += wrong
        bad += wrong
        if due is not None and port in due and not stall and not reset_at and n == len(
                want_rows) and n:
            src = next(iter(beats))
            want_cycles = res.first[src] + np.asarray(due[port]) + latency
            late = int(np.sum(cap.cycles[:n] != want_cycles))
            report["cycle_checks"] += n
            if late:
                i = int(np.flatnonzero(cap.cycles[:n] != want_cycles)[0])
                log.error("%s: %s: %d outputs off the pipeline timing; output %d at cycle "
                          "%d, expected %d", label, port, late, i, cap.cycles[i],
                          want_cycles[i])
                report["cycle_mismatches"] += late
                bad += late
    if transactions and not reset_at:
        report[transactions] = report.get(transactions, 0) + res.sent[next(iter(beats))]
    return bad, res


def segment_mode(rng: np.random.Generator, seg: int, reset_share: float = 0.1) -> str:
    """The kind of a regression's segment ``seg``: ``"clean"`` (stall-free, cycle stamps
    checked), ``"stall"`` (random bubbles and back-pressure on every stream) or ``"reset"``
    (reset mid-stream). The first three are one of each, so even a short run covers all."""
    if seg < 3:
        return ("clean", "stall", "reset")[seg]
    clean = (1 - reset_share) * 0.35
    return str(rng.choice(["clean", "stall", "reset"],
                          p=[clean, 1 - reset_share - clean, reset_share]))
