# amaranth: UnusedElaboratable=no
"""The testbench kit without a simulator: payload codecs agree with Amaranth's own encoding
(``layout.const(...).as_bits()``) on every port of every unit, and round-trip; pause
patterns are seeded."""

import random

import numpy as np
import pytest
from amaranth.hdl import Shape
from amaranth.lib import data

from mmfree.hdl.selftest import SelfTestChecker
from mmfree.sim.kit import Codec, component_of, flat, port_codecs, random_pauses
from mmfree.spec import (
    BitLinearUnitSpec,
    SparseDecodeSpec,
    SparseTensorCoreSpec,
    TensorCoreSpec,
    TernaryCoreSpec,
)

COMPONENTS = [
    lambda: component_of(TernaryCoreSpec(lanes=7, act_width=5, acc_width=13)),
    lambda: component_of(TernaryCoreSpec(lanes=16, packed=True)),
    lambda: component_of(TensorCoreSpec(width=4, is_signed=False, acc_width=12, accumulate=True)),
    lambda: component_of(SparseDecodeSpec(mode="select", accumulate=True)),
    lambda: component_of(SparseDecodeSpec(width=3, is_signed=False, acc_width=7)),
    lambda: component_of(SparseTensorCoreSpec(acc_width=64)),
    lambda: component_of(BitLinearUnitSpec(lanes=5, max_dim=50, in_width=12)),
    lambda: SelfTestChecker(3, 4, 7, 10, 100),
]


def random_value(shape, rng: random.Random):
    """A random value of ``shape`` as Amaranth's ``const`` takes it."""
    if isinstance(shape, data.StructLayout):
        return {name: random_value(f.shape, rng) for name, f in shape}
    if isinstance(shape, data.ArrayLayout):
        return [random_value(shape.elem_shape, rng) for _ in range(shape.length)]
    s = Shape.cast(shape)
    lo, hi = (-(1 << (s.width - 1)), (1 << (s.width - 1)) - 1) if s.signed else \
        (0, (1 << s.width) - 1)
    return rng.choice([lo, hi, 0, rng.randint(lo, hi)])


def reference_bits(shape, value) -> int:
    if isinstance(shape, data.Layout):
        return shape.const(value).as_bits()
    return value & ((1 << Shape.cast(shape).width) - 1)


@pytest.mark.parametrize("make", COMPONENTS, ids=range(len(COMPONENTS)))
def test_codecs_encode_as_amaranth_does_and_round_trip(make, seed):
    rng = random.Random(seed)
    for port, codec in port_codecs(make()).items():
        for _ in range(3):
            value = random_value(codec.shape, rng)
            bits = codec.encode(value)
            assert bits == reference_bits(codec.shape, value), port
            assert np.array_equal(flat(codec.decode(bits)), flat(value)), port


def test_codec_rejects_values_out_of_range_naming_the_field():
    codec = Codec(data.StructLayout({"codes": data.ArrayLayout(2, 40), "last": 1}), "w")
    with pytest.raises(ValueError, match=r"w.codes\[\]: 4 outside 0..3"):
        codec.encode({"codes": [4] * 40, "last": 0})
    with pytest.raises(ValueError, match="field last missing"):
        codec.encode({"codes": [0] * 40})
    with pytest.raises(ValueError, match="expected 40 elements"):
        codec.encode({"codes": [0] * 39, "last": 0})


def test_pause_patterns_are_seeded():
    a = random_pauses(random.Random(5), 0.3)
    b = random_pauses(random.Random(5), 0.3)
    first = [next(a) for _ in range(1000)]
    assert first == [next(b) for _ in range(1000)]
    assert 200 < sum(first) < 400
