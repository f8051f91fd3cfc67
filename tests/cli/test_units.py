"""``mmfree generate | lint | cosim-unit | synth``: options from the specs, files written,
bad parameters rejected in one line naming the parameter; every command's help."""

import json

import pytest

from mmfree.cli import main
from mmfree.spec import UNITS


def test_cli_generate_writes_verilog_and_ports(tmp_path, capsys):
    assert main(["generate", "ternary-core", "--lanes", "12", "--acc-width", "24",
                 "-o", str(tmp_path / "a"), "--name", "core12"]) == 0
    assert main(["generate", "ternary-core", "--lanes", "12", "--acc-width", "24",
                 "-o", str(tmp_path / "b"), "--name", "core12"]) == 0
    va, vb = (tmp_path / d / "core12.v" for d in "ab")
    assert va.read_bytes() == vb.read_bytes()
    assert "module core12(" in va.read_text()
    desc = json.loads((tmp_path / "a" / "core12.json").read_text())
    ports = {p["name"]: p for p in desc["ports"]}
    assert ports["w__payload"]["width"] == 2 * 12 + 1
    assert ports["x__payload"]["width"] == 8 * 12
    assert ports["y__payload"] == {"name": "y__payload", "direction": "output", "width": 24}
    assert desc["latency"] == 3
    assert "M * ceil(K / 12) + 3" in (tmp_path / "a" / "core12.md").read_text()
    assert desc["cycles"] == "M * ceil(K / 12) + 3 for an M x K product"


@pytest.mark.parametrize("argv,message", [
    (["generate", "ternary-core", "--lanes", "0", "-o", "x"], "lanes must be in 1..1024"),
    (["generate", "ternary-core", "--acc-width", "8", "-o", "x"], "acc_width must be in 9..64"),
])
def test_cli_rejects_bad_parameters(argv, message, capsys):
    """One line naming the parameter, exit 2 (bad input), nothing written."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmfree: invalid ternary-core parameter") and message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", [*(["generate", unit] for unit in UNITS),
                                     [], ["generate"], ["lint"], ["cosim-unit"], ["demo"],
                                     ["doctor"], ["generate", "tensor-core"],
                                     ["cosim-unit", "tensor-core"],
                                     ["generate", "sparse-decode"],
                                     ["lint", "sparse-tensor-core"], ["cosim"],
                                     ["generate", "bitlinear-unit"]])
def test_help_explains_every_command(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "usage: mmfree" in text and len(text.splitlines()) > 4
