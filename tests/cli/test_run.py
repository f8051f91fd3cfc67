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


def test_cosim_command_rejects_bad_input(tmp_path):
    with pytest.raises(SystemExit, match="outside the model's vocabulary"):
        main(["cosim", "--d", "32", "--layers", "1", "--vocab", "100", "--prompt", "z"])
    with pytest.raises(SystemExit, match="weight file not found"):
        main(["cosim", "--weights", str(tmp_path / "nope.npz")])
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(SystemExit, match="not a readable"):
        main(["cosim", "--weights", str(tmp_path / "bad.npz")])
    with pytest.raises(SystemExit, match="tokens"):
        main(["cosim", "--d", "32", "--layers", "1", "--tokens", "0"])
