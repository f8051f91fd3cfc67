"""Golden model of the board self-test: the LFSR, its beats and the rows' results."""

import numpy as np
import pytest

from mmfree.golden.selftest import expected_results, lfsr_bits, pattern, row_results
from mmfree.golden.ternary import decode_codes, ternary_matvec


def test_golden_lfsr_and_rows():
    # the documented recurrence of x^31 + x^28 + 1: b[n] = b[n-31] ^ b[n-28]
    bits, state = lfsr_bits(0x1234567, 300)
    assert all(bits[n] == bits[n - 31] ^ bits[n - 28] for n in range(31, 300))
    assert state == sum(int(b) << i for i, b in enumerate(bits[::-1][:31]))
    with pytest.raises(ValueError):
        lfsr_bits(0, 1)
    beats = pattern(4, 8, 3, 12, seed=12345)
    assert set(np.unique(beats.codes)) == {0, 1, 2, 3}
    assert beats.last.tolist() == [0, 0, 1] * 4
    # every row, as a 1 x K product, agrees with the ternary golden model
    res = row_results(beats, 32)
    for r in range(4):
        w = decode_codes(beats.codes[3 * r:3 * r + 3]).reshape(1, -1)
        x = beats.x[3 * r:3 * r + 3].reshape(-1)
        assert res[r] == ternary_matvec(w, x, 8, 32)[0]
    # a narrow accumulator wraps
    assert (expected_results(16, 8, 9, 4, 50) != expected_results(16, 8, 32, 4, 50)).any()
