"""Shared fixtures: simulator availability policy and the random seed."""

from __future__ import annotations

import os
import random

import pytest

from mmfree.flow.toolchain import SimulatorMissing, find


def require_simulator(name: str) -> None:
    """Skip loudly when a simulator is missing; under CI (``CI`` set) fail instead."""
    try:
        find(name)
    except SimulatorMissing as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {name}: {e}")
        pytest.skip(f"SIMULATOR MISSING, tests not run: {e}")


@pytest.fixture(scope="session")
def seed() -> int:
    """``$MMFREE_SEED`` or a fresh random seed; printed so that a failure can be replayed."""
    value = int(os.environ.get("MMFREE_SEED", random.randrange(1 << 31)))
    print(f"\nmmfree seed: {value} (replay: MMFREE_SEED={value} pytest ...)")
    return value


def pytest_report_header(config: pytest.Config) -> str:
    return "mmfree: set MMFREE_SEED to replay a run; the seed is printed per test"
