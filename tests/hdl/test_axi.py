# amaranth: UnusedElaboratable=no
"""The AXI4 read signature: members, directions, parameters and their validation."""

import pytest
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mmfree.hdl.axi import AxiReadSignature, size_code


def test_members_and_directions():
    sig = AxiReadSignature(addr_width=40, data_width=256, id_width=4)
    m = sig.members
    assert m["araddr"] == Out(40) and m["arid"] == Out(4) and m["arlen"] == Out(8)
    assert m["arsize"] == Out(3) and m["arburst"] == Out(2) and m["arvalid"] == Out(1)
    assert m["arready"] == In(1) and m["rready"] == Out(1)
    assert m["rdata"] == In(256) and m["rid"] == In(4) and m["rresp"] == In(2)
    assert m["rlast"] == In(1) and m["rvalid"] == In(1)
    assert sig.flip().members["araddr"] == In(40)
    assert sig == AxiReadSignature(addr_width=40, data_width=256, id_width=4)
    assert sig != AxiReadSignature(addr_width=40, data_width=128, id_width=4)


def test_connects_manager_to_subordinate():
    from amaranth import Module
    sig = AxiReadSignature(addr_width=32, data_width=64)
    manager, sub = sig.create(), sig.flip().create()
    m = Module()
    wiring.connect(m, manager=manager, subordinate=sub)


@pytest.mark.parametrize("kw,message", [
    ({"addr_width": 32, "data_width": 48}, "data_width must be a power of two"),
    ({"addr_width": 32, "data_width": 1024}, "data_width must be in 32..512"),
    ({"addr_width": 8, "data_width": 64}, "addr_width must be in 12..64"),
    ({"addr_width": 32, "data_width": 64, "id_width": 0}, "id_width must be in 1..16"),
])
def test_validation_names_the_parameter(kw, message):
    with pytest.raises(ValueError, match=message):
        AxiReadSignature(**kw)


def test_size_code():
    assert [size_code(w) for w in (32, 64, 128, 256, 512)] == [2, 3, 4, 5, 6]
