"""mmfree regress: seeded chunks on a 2-worker local Dask cluster find an injected golden-model
fault and print the seeds that replay it."""

from __future__ import annotations

import re

import pytest

from mmfree.cli import main
from mmfree.sim import regress as rg
from tests.conftest import require_simulator


def test_chunks_divide_the_transactions_and_build_apart(tmp_path):
    jobs = rg.chunks("ternary-core", {"lanes": 1}, ["icarus", "verilator"], 3, 100, 7,
                     tmp_path)
    assert [(j.simulator, j.seed) for j in jobs] == [
        ("icarus", 100), ("icarus", 101), ("icarus", 102),
        ("verilator", 100), ("verilator", 101), ("verilator", 102)]
    assert {j.random_products for j in jobs} == {3}
    assert len({j.root for j in jobs}) == len(jobs)
    with pytest.raises(ValueError, match="--seeds"):
        rg.chunks("ternary-core", {}, ["icarus"], 0, 1, None, tmp_path)


@pytest.mark.cosim
def test_regress_on_two_workers_finds_an_injected_fault_and_prints_its_seed(
        tmp_path, monkeypatch, capsys):
    require_simulator("icarus")
    # every expected output that is a multiple of 3 is made wrong (sim/kit/bench.py); the
    # workers inherit the variable when the local cluster starts
    monkeypatch.setenv("MMFREE_TB_INJECT_FAULT", "3")
    code = main(["regress", "ternary-core", "--lanes", "1", "--sim", "icarus", "--seeds", "2",
                 "--seed", "40", "--transactions", "2", "--workers", "2", "--quiet",
                 "-o", str(tmp_path / "build")])
    out = capsys.readouterr().out
    assert code == 1, out
    failed = re.findall(r"^FAILED icarus seed (\d+): .*(\d+) output mismatches", out, re.M)
    assert {s for s, _ in failed} == {"40", "41"}, out
    for seed in ("40", "41"):
        assert (f"replay: mmfree regress ternary-core --lanes 1 --sim icarus --seed {seed} "
                "--seeds 1 --transactions 1") in out
    # each chunk built in its own folder, kept because it failed
    assert (tmp_path / "build" / "icarus" / "seed-40").is_dir()
    assert (tmp_path / "build" / "icarus" / "seed-41").is_dir()


@pytest.mark.slow
@pytest.mark.cosim
def test_a_printed_replay_command_reproduces_the_chunk(tmp_path, monkeypatch, capsys):
    """The replay line of a failing chunk runs that chunk again: same outputs, same
    mismatches."""
    require_simulator("icarus")
    monkeypatch.setenv("MMFREE_TB_INJECT_FAULT", "5")
    base = ["--lanes", "3", "--sim", "icarus", "--workers", "2", "--quiet"]
    assert main(["regress", "ternary-core", *base, "--seeds", "3", "--seed", "900",
                 "--transactions", "6", "-o", str(tmp_path / "a")]) == 1
    out = capsys.readouterr().out
    rows = {int(m[0]): (int(m[1]), int(m[2])) for m in re.findall(
        r"^icarus\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s+(\d+)", out, re.M)}
    replay = re.search(r"replay: mmfree (regress .*)$", out, re.M).group(1).split()
    seed = int(replay[replay.index("--seed") + 1])
    assert main([*replay, "--workers", "1", "--quiet",
                 "-o", str(tmp_path / "b")]) == 1
    again = capsys.readouterr().out
    row = re.search(rf"^icarus\s+{seed}\s+\d+\s+\d+\s+(\d+)\s+(\d+)", again, re.M)
    assert (int(row.group(1)), int(row.group(2))) == rows[seed]
