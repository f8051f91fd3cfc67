"""The weight fetcher's spec: validation naming the parameter, sizes, the cycle formula."""

import numpy as np
import pytest

from mmfree.spec import WeightFetcherSpec, spec_for


@pytest.mark.parametrize("params,message", [
    ({"data_width": 96}, "data_width must be a power of two, got 96"),
    ({"data_width": 16}, "data_width must be in 32..512, got 16"),
    ({"lanes": 12}, "lanes=12 makes 24-bit 2-bit code groups"),
    ({"lanes": 16, "packed": True, "data_width": 32}, None),
    ({"lanes": 11, "packed": True}, "lanes=11 makes 24-bit packed groups"),
    ({"max_burst": 32, "fifo_depth": 16}, "fifo_depth must be in 32..4096, got 16"),
    ({"max_burst": 1, "fifo_depth": 1}, "fifo_depth must be in 2..4096, got 1"),
    ({"max_burst": 257}, "max_burst must be in 1..256"),
    ({"outstanding": 0}, "outstanding must be in 1..64"),
])
def test_validation(params, message):
    if message is None:
        spec_for("weight-fetcher", **params)
        return
    with pytest.raises((ValueError, TypeError), match=message):
        spec_for("weight-fetcher", **params)


def test_sizes():
    s = WeightFetcherSpec()
    assert (s.group_bits, s.groups_per_beat, s.beats_per_group) == (32, 2, 1)
    assert s.beats(7) == 4
    wide = WeightFetcherSpec(lanes=64, data_width=32)
    assert (wide.group_bits, wide.groups_per_beat, wide.beats_per_group) == (128, 0, 4)
    assert WeightFetcherSpec(lanes=20, packed=True, data_width=256).groups_per_beat == 8


def test_port_bound_cycles_are_exact_counts():
    # one group per cycle from the first beat: AR_START (8) + L + FIFO (2) + N - 1, + 1
    s = WeightFetcherSpec()
    assert s.cycles(8, 8) == 8 + 8 + 2 + 7 + 1
    assert s.cycles(np.array([8, 64]), 30).tolist() == [8 + 30 + 2 + 7 + 1, 8 + 30 + 2 + 63 + 1]


def test_memory_bound_rates():
    s = WeightFetcherSpec(outstanding=1)
    # one burst of 16 beats in flight, the next AR 3 cycles after the last beat: L + 15 + 3
    assert s.beat_rate(10_000, 30) == pytest.approx(16 / 48)
    assert WeightFetcherSpec().beat_rate(10_000, 8, 0.5) == 0.5
    # a half-rate memory feeding 2 groups per beat keeps the port at one group per cycle
    assert WeightFetcherSpec().cycles(64, 8, 0.5) == pytest.approx(8 + 8 + 2 + 63 + 1)
    # single-beat bursts: one request every AR_INTERVAL (3) cycles
    assert WeightFetcherSpec(max_burst=1).beat_rate(10_000, 2) == pytest.approx(1 / 3)
