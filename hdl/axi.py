"""AXI4 read channels (AR and R) as an Amaranth ``lib.wiring`` signature."""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec.base import check_int
from ..spec.weight_fetcher import MAX_ADDR_WIDTH, MAX_ID_WIDTH, MIN_ADDR_WIDTH, check_data_width

__all__ = ["BURST_FIXED", "BURST_INCR", "BURST_WRAP", "RESP_DECERR", "RESP_EXOKAY", "RESP_OKAY",
           "RESP_SLVERR", "AxiReadSignature", "size_code"]

BURST_FIXED, BURST_INCR, BURST_WRAP = 0, 1, 2  #: ``arburst`` encodings
RESP_OKAY, RESP_EXOKAY, RESP_SLVERR, RESP_DECERR = 0, 1, 2, 3  #: ``rresp`` encodings


def size_code(data_width: int) -> int:
    """``arsize`` of full-width beats: ``log2(data_width / 8)``."""
    return (check_data_width(data_width) // 8).bit_length() - 1


class AxiReadSignature(wiring.Signature):
    """The read half of an AXI4 interface, seen from the manager (the side that issues reads).

    Members (AXI4 names, so memory models and vendor IP bind by name; Verilog ports are
    ``<member>__<name>``, e.g. ``axi__araddr``):

    * read address channel AR, out (valid/ready, ``arready`` in): ``arid`` (``id_width``),
      ``araddr`` (``addr_width``), ``arlen`` (8: beats - 1, 1..256 beats), ``arsize`` (3:
      ``log2`` bytes per beat), ``arburst`` (2: :data:`BURST_FIXED`, :data:`BURST_INCR`,
      :data:`BURST_WRAP`), ``arvalid``;
    * read data channel R, in (valid/ready, ``rready`` out): ``rid``, ``rdata``
      (``data_width``), ``rresp`` (2: :data:`RESP_OKAY` .. :data:`RESP_DECERR`), ``rlast``,
      ``rvalid``.

    AXI4 handshake rules apply: a transfer happens on a rising edge where ``valid`` and
    ``ready`` are both high; ``valid`` must not wait for ``ready``, and a presented request
    stays unchanged until it transfers. Responses with equal IDs return in request order.
    The optional AXI4 signals (``arlock``, ``arcache``, ``arprot``, ``arqos``, ``arregion``,
    ``aruser``, ``ruser``) are left out: a subordinate takes their defaults.

    Parameters: ``addr_width`` 12..64 bits, ``data_width`` a power of two 32..512 bits,
    ``id_width`` 1..16 bits. ``flipped()`` gives the subordinate's view.
    """

    def __init__(self, *, addr_width: int, data_width: int, id_width: int = 1) -> None:
        self.addr_width = check_int("addr_width", addr_width, MIN_ADDR_WIDTH, MAX_ADDR_WIDTH)
        self.data_width = check_data_width(data_width)
        self.id_width = check_int("id_width", id_width, 1, MAX_ID_WIDTH)
        super().__init__({
            "arid": Out(id_width),
            "araddr": Out(addr_width),
            "arlen": Out(8),
            "arsize": Out(3),
            "arburst": Out(2),
            "arvalid": Out(1),
            "arready": In(1),
            "rid": In(id_width),
            "rdata": In(data_width),
            "rresp": In(2),
            "rlast": In(1),
            "rvalid": In(1),
            "rready": Out(1),
        })

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and self.addr_width == other.addr_width
                and self.data_width == other.data_width and self.id_width == other.id_width)

    def __hash__(self) -> int:
        return hash((type(self), self.addr_width, self.data_width, self.id_width))

    def __repr__(self) -> str:
        return (f"AxiReadSignature(addr_width={self.addr_width}, "
                f"data_width={self.data_width}, id_width={self.id_width})")

