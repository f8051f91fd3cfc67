"""The one exit-code convention: expected errors become one line ``mmfree: ...`` and exit 2
(bad input, missing tool) or 1 (a tool failed), anything else keeps its traceback."""

import argparse

import pytest

from mmfree.cli import COMMANDS, build_parser, main
from mmfree.cli.errors import BAD_INPUT, CHECK_FAILED, OK, UsageError, run_command
from mmfree.flow.synth import SynthesisError
from mmfree.flow.toolchain import SIMULATORS, SimulatorMissing
from mmfree.model.config import ConfigError


@pytest.mark.parametrize("error,code", [
    (UsageError("--lanes must be positive"), BAD_INPUT),
    (SimulatorMissing("Icarus Verilog not found;\ninstall it"), BAD_INPUT),
    (ConfigError("hardware.lanes: expected an integer"), BAD_INPUT),
    (SynthesisError("yosys failed:\nERROR: x"), CHECK_FAILED),
])
def test_expected_errors_are_one_line_with_their_exit_code(error, code, capsys):
    def command(args):
        raise error
    assert run_command(command, argparse.Namespace()) == code
    err = capsys.readouterr().err
    assert err.startswith("mmfree: ") and err.count("\n") == 1 and "Traceback" not in err


def test_results_pass_through_and_bugs_keep_their_traceback():
    assert run_command(lambda args: None, argparse.Namespace()) == OK
    assert run_command(lambda args: CHECK_FAILED, argparse.Namespace()) == CHECK_FAILED
    with pytest.raises(ZeroDivisionError):
        run_command(lambda args: 1 // 0, argparse.Namespace())


def test_every_command_module_has_add_parser_and_run():
    sub = build_parser()._subparsers._group_actions[0]
    names = set(sub.choices)
    assert {"generate", "lint", "cosim-unit", "synth", "cosim", "run", "demo", "project",
            "compare", "sweep", "explore", "regress", "doctor", "board", "fusesoc"} == names
    for module in COMMANDS:
        assert callable(module.add_parser) and callable(module.run)
    for name, parser in sub.choices.items():
        assert parser.get_default("module") in COMMANDS, name


def test_simulator_choices_come_from_the_toolchain(capsys):
    for argv in (["demo", "--help"], ["cosim-unit", "tensor-core", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "{" + ",".join([*SIMULATORS, "both"]) + "}" in text


def test_unit_options_show_limits_and_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no line wrapping inside the help texts
    with pytest.raises(SystemExit):
        main(["generate", "ternary-core", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1..1024 (default 16)" in text and "act-width+1..64 (default 32)" in text
    with pytest.raises(SystemExit):
        main(["synth", "tensor-core", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--unsigned" in text and "2*width (+1 if unsigned)..64 (default 32)" in text
    assert "ecp5-85k: Lattice ECP5 LFE5U-85F" in text
