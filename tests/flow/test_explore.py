"""mmfree explore: grid parsing, and a small grid on a 2-worker local Dask cluster that
loses a worker mid-run, still gets every row, and then reruns entirely from the cache."""

from __future__ import annotations

import csv
import io
import os
import signal
import threading
import time

import pytest

from mmfree.cli import main
from mmfree.flow import explore as ex
from mmfree.flow.cluster import Progress, connect


def test_grid_parses_values_by_parameter_type():
    axes = ex.parse_grid("ternary-core", "lanes=4,8,4 tree-levels-per-stage=0,1 packed=0,true")
    assert axes == {"lanes": [4, 8], "tree_levels_per_stage": [0, 1], "packed": [False, True]}
    pts = ex.points("ternary-core", axes, "ecp5-25k", 150.0, fixed={"act_width": 4})
    assert len(pts) == 8
    assert {dict(p.params)["act_width"] for p in pts} == {4}
    assert pts[0].spec().top_name() == "mmfree_ternary_core_l4_x4_a32"


@pytest.mark.parametrize("grid, message", [
    ("lanes", "not NAME=V1,V2"),
    ("width=4", "has no parameter 'width'"),
    ("lanes=4 lanes=8", "given twice"),
    ("lanes=four", "'four' is not a int"),
    ("packed=maybe", "not a truth value"),
    ("lanes=0,4", "grid point lanes=0"),
])
def test_bad_grids_are_one_line_errors_naming_the_part(grid, message, tmp_path, capsys):
    code = main(["explore", "ternary-core", "--grid", grid, "--target", "ecp5-25k",
                 "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("mmfree: ") and message in err and err.count("\n") == 1


def test_bad_cluster_options_are_one_line_errors(tmp_path, capsys):
    assert main(["explore", "ternary-core", "--grid", "lanes=1", "--target", "ecp5-25k",
                 "--workers", "0", "-o", str(tmp_path)]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert main(["explore", "ternary-core", "--grid", "lanes=1", "--target", "xilinx-7",
                 "--registered-ports", "-o", str(tmp_path)]) == 2
    assert "--registered-ports is for the ECP5" in capsys.readouterr().err


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_grid_on_two_workers_survives_a_killed_worker_and_reruns_from_cache(
        tmp_path, monkeypatch, capsys):
    """Two tiny ternary cores through synthesis and place-and-route on ECP5-25, on a local
    cluster of two workers: once a worker has been busy for a second, it is killed
    (SIGKILL); every row still arrives (the lost point runs again). The same grid again
    comes entirely from the cache (the command line, on a new cluster), with the same
    figures."""
    monkeypatch.setenv("MMFREE_CACHE", str(tmp_path / "cache"))  # inherited by the workers
    pts = ex.points("ternary-core", ex.parse_grid("ternary-core", "lanes=1,2"),
                    "ecp5-25k", 100.0)
    killed = []

    def kill_a_busy_worker(client):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                time.sleep(1.0)  # inside the flow by now
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.1)

    with connect(workers=2) as client:
        killer = threading.Thread(target=kill_a_busy_worker, args=(client,), daemon=True)
        killer.start()
        rows = ex.explore(pts, tmp_path / "out", progress=False, client=client)
        killer.join()
        assert killed, "no worker was killed"
        assert [r["lanes"] for r in rows] == ["1", "2"]
        assert all(r["fits"] == 1 and r["problem"] == "" for r in rows), rows
        assert all(float(r["fmax_mhz"]) > 0 and int(r["LUT4"]) > 0 for r in rows)
        assert all(r["cached"] == 0 for r in rows)
        on_disk = _read(tmp_path / "out" / "results.csv")
        assert [r["key"] for r in on_disk] == [r["key"] for r in rows]

    # the same grid from the command line, on a fresh 2-worker cluster: all from the cache
    assert main(["explore", "ternary-core", "--grid", "lanes=1,2", "--target", "ecp5-25k",
                 "--workers", "2", "--quiet", "-o", str(tmp_path / "again")]) == 0
    out = capsys.readouterr().out
    assert "2 points in" in out and "(0 computed, 2 from the cache)" in out, out
    again = _read(tmp_path / "again" / "results.csv")
    assert all(r["cached"] == "1" for r in again)
    for a, b in zip(rows, again, strict=True):
        assert (a["key"], str(a["LUT4"]), str(a["FF"]), a["fmax_mhz"]) == \
            (b["key"], b["LUT4"], b["FF"], b["fmax_mhz"])
    assert (tmp_path / "again" / "plot-lanes.png").stat().st_size > 0


def test_progress_is_one_line_per_job_off_a_terminal():
    stream = io.StringIO()
    bar = Progress(3, "explore", stream=stream)
    bar.advance("lanes=1: 200.00 MHz")
    bar.advance("lanes=2: 190.00 MHz")
    bar.close()
    assert stream.getvalue().splitlines() == ["explore: 1/3 lanes=1: 200.00 MHz",
                                              "explore: 2/3 lanes=2: 190.00 MHz"]
    quiet = io.StringIO()
    Progress(3, "explore", enabled=False, stream=quiet).advance("x")
    assert quiet.getvalue() == ""
