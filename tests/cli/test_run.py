"""``mmfree cosim``: the tiny model on the RTL from the command line, its JSON report, and
bad input rejected in one line."""

import json

import pytest

from mmfree.cli import main
from mmfree.golden.tiny_model import TinyConfig, TinyModel

from ..conftest import require_simulator


@pytest.mark.cosim
def test_cosim_command(tmp_path, capsys):
    """``mmfree cosim`` end to end from a weight file, with its JSON report."""
    require_simulator("verilator")
    weights, out = tmp_path / "w.npz", tmp_path / "run.json"
    from mmfree.golden.tiny_model import save_weights
    save_weights(TinyModel.random(TinyConfig(d=32, layers=1, vocab=128), 9), weights)
    status = main(["cosim", "--weights", str(weights), "--prompt", "ok", "--tokens", "2",
                   "--lanes", "32", "--sim", "verilator", "--json", str(out)])
    text = capsys.readouterr().out
    assert status == 0, text
    rep = json.loads(out.read_text())
    (run,) = rep["runs"]
    assert run["ok"] and run["tokens"] == rep["golden_tokens"]
    assert run["step_cycles"] == [run["predicted_cycles"]] * 3
    assert "same" in text and "float reference vs integer" in text


@pytest.mark.parametrize("argv,message", [
    (["--d", "32", "--layers", "1", "--vocab", "100", "--prompt", "z"],
     "outside the model's vocabulary"),
    (["--weights", "{tmp}/nope.npz"], "weight file not found"),
    (["--weights", "{tmp}/bad.npz"], "not a readable"),
    (["--d", "32", "--layers", "1", "--tokens", "0"], "tokens"),
    (["--d", "32", "--layers", "1", "--lanes", "0"], "lanes must be in 1..1024"),
])
def test_cosim_command_rejects_bad_input(argv, message, tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"junk")
    assert main(["cosim", *(a.format(tmp=tmp_path) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmfree: ") and message in err and err.count("\n") == 1
