"""The bad-input matrix of issue 11: every ordinary mistake ends with one line ``mmfree: ...``
that names the argument and the documented exit code (2 bad input, 1 a check failed),
never a traceback and never a wrong result with exit 0.

Most rows run in-process through :func:`mmfree.cli.main` (a subprocess would add a second
of imports each and prove nothing more); the rows where the process itself matters (a closed
pipe, an allocation that must not happen, ``--version``) and a sample of the others run as
real subprocesses of the installed ``mmfree``."""

import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mmfree.cli import main

MMFREE = str(Path(sys.executable).parent / "mmfree")

# (arguments, exit code, words the message must hold). FILE is an existing regular file,
# so FILE/... can be created by nobody (root included); TOML(...) is a config file.
MATRIX = [
    # 3. unwritable outputs and tracebacks on ordinary mistakes
    ("project --hw d5005 --plot FILE/figs", 2, ["--plot", "FILE/figs"]),
    ("project --hw d5005 --plot FILE", 2, ["--plot", "existing file"]),
    ("sweep --hw d5005 --quiet -o FILE/sweep", 2, ["--output", "FILE/sweep"]),
    ("synth ternary-core --target ecp5-85k --json FILE/r.json", 2, ["--json", "FILE/r.json"]),
    ("cosim --ids 1 --json FILE/r.json", 2, ["--json"]),
    ("cosim --ids 1 --logits FILE/l.npy", 2, ["--logits"]),
    ("demo -o FILE/demo", 2, ["--output", "FILE/demo"]),
    ("generate ternary-core -o FILE/v", 2, ["--output"]),
    ("generate weight-fetcher --lanes 12 -o FILE/v", 2, ["lanes=12", "data_width=64"]),
    ("generate weight-fetcher --max-burst 12 -o FILE/v", 2, ["max_burst", "power of two"]),
    ("generate fetched-product --cores 0 -o FILE/v", 2, ["cores", "1..16"]),
    ("board icebreaker -o FILE/b", 2, ["--output"]),
    ("project --hw d5005 --json FILE/p.json", 2, ["--json"]),
    ("cosim --ids 1 --lanes 0", 2, ["--lanes", "1..1024"]),
    ("demo --lanes 0", 2, ["--lanes", "1..64"]),
    ("cosim --ids 1 --lanes 100000", 2, ["--lanes", "1..1024"]),
    ("cosim --ids 1 --lanes 48", 2, ["--lanes", "does not divide the MLP width"]),
    ("cosim --ids 1 --lanes 128", 2, ["--lanes", "1..64 for the engine"]),
    ("cosim --ids 1 --tokens -1", 2, ["--tokens"]),
    ("cosim --ids 1,99999", 2, ["--ids"]),
    ("cosim", 2, ["--prompt"]),
    ("cosim --ids 1 --checkpoint FILE/none", 2, ["--checkpoint"]),
    ("board icebreaker --pass-after 0", 2, ["--pass-after"]),
    ("run --ids 1,2 --json FILE/r.json", 2, ["--json"]),
    ("run --ids 1,x", 2, ["--ids"]),
    ("run --ids 1 --tokens -1", 2, ["--tokens"]),
    ("run --ids 1 --checkpoint FILE/none", 2, ["--checkpoint"]),
    # 4. wrong results with exit 0
    ("project --hw d5005 --batch 100000000", 2, ["--batch", "1..65536"]),
    ("project --hw d5005 --tokens 0", 2, ["--tokens"]),
    ("compare --hw d5005 --batches 0,1", 2, ["--batches", "got 0"]),
    ("compare --hw d5005 --contexts 10000000", 2, ["--contexts"]),
    ("compare --hw d5005 --batches 1,x", 2, ["--batches", "whole numbers"]),
    ("sweep --hw d5005 --quiet --batch-sizes 1e9 -o OUT", 2, ["--batch-sizes"]),
    ("sweep --hw d5005 --quiet --clock 100,-1 -o OUT", 2, ["--clock"]),
    ("project --config TOML(hw_preset)", 2, ["hardware.preset", "d5006"]),
    ("project --hw d5005 --config TOML(ternary_string)", 2, ["model.ternary_linear"]),
    ("project --hw TOML(hw_with_model)", 2, ["--hw", "[model]", "--config"]),
    ("project --hw d5006", 2, ["--hw", "d5006", "d5005"]),
    ("project --hw d5005 --model 9B", 2, ["--model", "9B"]),
    ("synth ternary-core --target ecp5-85k --freq 0", 2, ["--freq", "above 0"]),
    ("synth ternary-core --target ecp5-85k --freq 5000", 2, ["--freq"]),
    # 6. renamed spellings: errors that say the new name
    ("project --hw d5005 --json", 2, ["--json FILE", "--json -"]),
    ("project --hw d5005 --csv", 2, ["--csv FILE"]),
    ("project --hw d5005 --prompt 64", 2, ["--prompt", "--prompt-tokens"]),
    ("sweep --hw d5005 --generate 64", 2, ["--generate", "--tokens"]),
    ("compare --hw d5005 --size 1.3B", 2, ["--size", "--model"]),
    ("project --hw ecp5-85", 2, ["ecp5-85", "renamed", "ecp5-85k"]),
    ("sweep --hw arty-a7", 2, ["arty-a7", "renamed", "arty-a7-35t"]),
    ("project --config TOML(old_preset)", 2, ["hardware.preset", "ecp5-85k"]),
]

TOML = {
    "hw_preset": '[hardware]\npreset = "d5006"\n',
    "ternary_string": '[model]\nkind = "transformer"\nlayers = 2\nd = 64\n'
                      'ternary_linear = "false"\n',
    "hw_with_model": 'model = "370M"\n[hardware]\npreset = "d5005"\n[workload]\nbatch = 4\n',
    "old_preset": '[hardware]\npreset = "ecp5-85"\n',
}


def _argv(text: str, tmp: Path) -> list[str]:
    f = tmp / "FILE"
    f.write_text("a regular file\n")
    argv = []
    for word in text.split():
        if word.startswith("TOML("):
            name = word[5:-1]
            path = tmp / f"{name}.toml"
            path.write_text(TOML[name])
            word = str(path)
        argv.append(word.replace("FILE", str(f)).replace("OUT", str(tmp / "out")))
    return argv


def _run_in_process(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors, and the renamed options
        code = e.code
    return code, capsys.readouterr().err


def _check(code: int, err: str, expect_code: int, words: list[str], tmp: Path) -> None:
    err = err.replace(str(tmp / "FILE"), "FILE")
    assert "Traceback" not in err, err
    assert code == expect_code, err
    lines = [line for line in err.splitlines() if line.startswith("mmfree: ")]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize("text,code,words", MATRIX, ids=[row[0] for row in MATRIX])
def test_bad_input_matrix(text, code, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written where the tests run
    got, err = _run_in_process(_argv(text, tmp_path), capsys)
    _check(got, err, code, words, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".toml")) == \
        ["FILE"], "a rejected command wrote something"


# a sample of the matrix, plus what only a real process shows, as subprocesses (in parallel)
SUBPROCESS = ["project --hw d5005 --plot FILE", "cosim --ids 1 --lanes 100000",
              "compare --hw d5005 --size 1.3B", "project --hw d5005 --batch 100000000",
              "synth ternary-core --target ecp5-85k --freq 0",
              "project --config TOML(ternary_string) --hw d5005"]


def test_bad_input_as_subprocesses(tmp_path):
    rows = {row[0]: row for row in MATRIX}
    procs = {text: subprocess.Popen([MMFREE, *_argv(text, tmp_path)], cwd=tmp_path,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for text in SUBPROCESS}
    # a closed pipe: the reader is gone before mmfree writes (mmfree project | true)
    pipe = subprocess.Popen(["bash", "-c", f"'{MMFREE}' project --hw d5005 | true; "
                                           'echo "exit ${PIPESTATUS[0]}" >&2'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    version = subprocess.run([MMFREE, "--version"], capture_output=True, text=True,
                             check=False)
    for text, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        words = rows.get(text, (None, 2, ["--hw"]))[2] if text in rows else \
            ["model.ternary_linear"]
        _check(proc.returncode, err, 2, words, tmp_path)
    _, err = pipe.communicate(timeout=300)
    assert "Traceback" not in err and "Broken pipe" not in err, err
    assert err.strip().splitlines()[-1] == "exit 1"  # quiet, and not "done" (it was cut)
    assert version.returncode == 0 and version.stdout.startswith("mmfree 0.")


def test_compare_long_contexts_compute_without_overflow(capsys):
    """``compare --contexts 1000000`` overflowed int64 op counts; the numbers stay finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert main(["compare", "--hw", "d5005", "--contexts", "1000000",
                     "--batches", "64"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()
            if line.strip().startswith("64 ")]
    assert rows and all(math.isfinite(float(v.rstrip("*"))) and float(v.rstrip("*")) > 0
                        for v in rows[0][2:5])


@pytest.mark.parametrize("fmax,code", [(150.0, 0), (80.0, 1)])
def test_synth_exits_1_when_timing_fails(fmax, code, monkeypatch, capsys):
    """Exit codes: a design that misses --freq is a failed check, as in ``mmfree board``."""
    from mmfree.flow.synth import FlowReport
    report = FlowReport("ecp5-85k", "t", 100.0, {"LUT4": 10}, fmax_mhz=fmax,
                        critical_path=("a", "b"), cached=True)
    monkeypatch.setattr("mmfree.flow.synth.run_flow", lambda *a, **k: report)
    assert main(["synth", "ternary-core", "--target", "ecp5-85k", "--freq", "100"]) == code
    assert ("FAILS" in capsys.readouterr().out) == bool(code)


def test_synth_says_when_fmax_is_a_placement_estimate(monkeypatch, capsys):
    """``--no-route``: the Fmax is labelled as nextpnr's estimate after placement."""
    from mmfree.flow.synth import FlowReport
    report = FlowReport("ecp5-85k", "t", 100.0, {"LUT4": 10}, fmax_mhz=120.0, cached=True,
                        routed=False)
    seen = {}

    def fake(*a, **k):
        seen.update(k)
        return report
    monkeypatch.setattr("mmfree.flow.synth.run_flow", fake)
    assert main(["synth", "ternary-core", "--target", "ecp5-85k", "--no-route",
                 "--seed", "5"]) == 0
    assert seen["place_only"] is True and seen["seed"] == 5
    assert "estimated after placement, not routed" in capsys.readouterr().out
