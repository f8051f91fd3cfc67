"""``mmfree run --backend rtl``: random checkpoints of two sizes, written by the test in the
released format, on both simulators. ``--rtl-unit bitlinear``: every BitLinear on the RTL,
logits bit-identical to ``--backend bitlinear-int`` (the pipeline it runs); ``--rtl-unit
engine`` (the default): the whole token on the engine, logits bit-identical to ``--backend
integer``; cycles per token equal to the prediction; bad input in one line."""

import json

import numpy as np
import pytest

from mmfree.checkpoint import write_checkpoint
from mmfree.cli import main
from mmfree.golden.hgrn_bit import HGRNBitConfig, random_tensor

from ..conftest import require_simulator

# Two sizes whose longest BitLinear input is 64, so that one unit (16 lanes, max K 64) and
# one simulator build serve all three checkpoints.
SMALL = HGRNBitConfig(vocab_size=40, hidden_size=32, num_hidden_layers=1,
                      intermediate_size=64)
LARGER = HGRNBitConfig(vocab_size=70, hidden_size=64, num_hidden_layers=2,
                       intermediate_size=48)
# one checkpoint on both simulators in the default run; the other dtype and size under
# -m slow (the default suite's time budget)
CHECKPOINTS = [(SMALL, 11, "bfloat16"),
               pytest.param((SMALL, 12, "float32"), marks=pytest.mark.slow),
               pytest.param((LARGER, 13, "float16"), marks=pytest.mark.slow)]


def _checkpoint(root, config, seed, dtype):
    path = root / f"ckpt-{config.hidden_size}-{seed}"
    write_checkpoint(path, config, lambda name: random_tensor(config, seed, name), dtype=dtype)
    return path


def _run(capsys, *argv):
    status = main(["run", *argv])
    cap = capsys.readouterr()
    return status, cap.out, cap.err


# the default bulk harness on both simulators; the per-beat drivers on Icarus (Verilator
# under -m slow)
RUNS = [("icarus", "bulk"), ("verilator", "bulk"), ("icarus", "per-beat"),
        pytest.param(("verilator", "per-beat"), marks=pytest.mark.slow)]


@pytest.mark.cosim
@pytest.mark.parametrize("run", RUNS, ids=lambda r: f"{r[0]}-{r[1]}")
@pytest.mark.parametrize("ckpt", CHECKPOINTS, ids=lambda c: f"d{c[0].hidden_size}-{c[1]}")
def test_rtl_backend_matches_integer_and_cycle_model(run, ckpt, tmp_path, capsys):
    """--rtl-unit bitlinear (the co-processor): checked against bitlinear-int."""
    sim, harness = run
    _check_rtl(sim, ckpt, "bitlinear", harness, tmp_path, capsys)


# the engine (the whole token on the RTL): one checkpoint on both simulators, under -m slow
# (tests/sim/tb/test_engine.py runs the engine in the default suite)
@pytest.mark.slow
@pytest.mark.cosim
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_rtl_engine_matches_integer_and_its_cycle_formula(sim, tmp_path, capsys):
    """--rtl-unit engine (the default): checked against the integer backend."""
    _check_rtl(sim, (SMALL, 11, "bfloat16"), "engine", None, tmp_path, capsys)


# the engine with its weights over AXI (2 cores, one cocotbext-axi memory each), under -m slow
# (tests/sim/tb/test_engine.py runs it in the default suite)
@pytest.mark.slow
@pytest.mark.cosim
def test_rtl_engine_with_axi_weights(tmp_path, capsys):
    """--cores 2 --mem-bits 32 --mem-latency 20: checked against the integer backend."""
    _check_rtl("icarus", (SMALL, 11, "bfloat16"), "engine", None, tmp_path, capsys,
               ["--cores", "2", "--mem-bits", "32", "--mem-latency", "20", "--lanes", "8"])


def _check_rtl(sim, ckpt, unit, harness, tmp_path, capsys, more=()):
    require_simulator(sim)
    config, seed, dtype = ckpt
    path = _checkpoint(tmp_path, config, seed, dtype)
    common = ["--checkpoint", str(path), "--ids", "1,5", "--tokens", "2", "--ignore-eos"]
    reference = "bitlinear-int" if unit == "bitlinear" else "integer"
    status, out, err = _run(capsys, *common, "--backend", reference, "--logits",
                            str(tmp_path / "int.npy"), "--json", str(tmp_path / "int.json"))
    assert status == 0, err
    status, out, err = _run(capsys, *common, "--backend", "rtl", "--rtl-unit", unit, "--sim",
                            sim, *(["--harness", harness] if harness else []), *more,
                            "--logits",
                            str(tmp_path / "rtl.npy"), "--json", str(tmp_path / "rtl.json"))
    assert status == 0, out + err
    rtl = json.loads((tmp_path / "rtl.json").read_text())
    ref = json.loads((tmp_path / "int.json").read_text())
    assert rtl["tokens"] == ref["tokens"] and len(rtl["tokens"]) == 2
    assert np.array_equal(np.load(tmp_path / "rtl.npy"), np.load(tmp_path / "int.npy"))
    assert rtl["logits_identical"] and rtl["device_mismatches"] == 0
    assert rtl.get("harness") == harness
    assert rtl["step_cycles"] == [rtl["predicted_cycles_per_token"]] * 3
    assert rtl["cycles_per_token"] == rtl["predicted_cycles_per_token"]
    assert "bit-identical" in out and f"[{sim}] step 3/3" in err


@pytest.mark.parametrize("argv,message", [
    (["--backend", "rtl", "--ids", "1", "--lanes", "0"], "--lanes must be in 1..1024"),
    (["--backend", "rtl", "--perplexity", "x.txt"], "drop --backend rtl"),
    (["--backend", "rtl", "--ids", "1,999999"], "outside the vocabulary"),
    (["--backend", "rtl", "--ids", "1", "--cores", "17"], "--cores must be in 0..16"),
    (["--backend", "rtl", "--ids", "1", "--mem-bits", "64"], "--mem-bits needs --cores"),
    (["--backend", "rtl", "--ids", "1", "--cores", "2", "--mem-bits", "48"],
     "--mem-bits must be a power of two"),
    (["--backend", "rtl", "--ids", "1", "--cores", "2", "--mem-latency", "1"],
     "--mem-latency must be in 2..100000"),
    (["--backend", "rtl", "--ids", "1", "--cores", "2", "--mem-rate", "3/2"],
     "--mem-rate must be N/D"),
    (["--backend", "rtl", "--ids", "1", "--cores", "2", "--outstanding", "0"],
     "--outstanding must be in 1..64"),
    (["--backend", "rtl", "--ids", "1", "--cores", "4", "--channels", "3"],
     "--channels 3 must divide --cores 4"),
    (["--backend", "rtl", "--ids", "1", "--cores", "2", "--channels", "3"],
     "--channels must be in 1..--cores (2)"),
    (["--backend", "rtl", "--ids", "1", "--channels", "1"], "--channels needs --cores"),
    (["--backend", "rtl", "--ids", "1", "--cores", "2", "--rtl-unit", "bitlinear"],
     "--cores runs the whole-token engine"),
    (["--backend", "integer", "--ids", "1", "--cores", "2"],
     "--cores runs the whole-token engine"),
    (["--backend", "rtl", "--ids", "1", "--cores", "9"], "cores 9 exceed the 8 lane groups"),
    (["--backend", "rtl", "--ids", "1", "--cores", "2", "--packed", "--lanes", "64"],
     "lanes=64 makes 104-bit packed groups"),
])
def test_rtl_backend_rejects_bad_input(argv, message, capsys):
    status, _, err = _run(capsys, *argv)
    assert status == 2
    assert err.startswith("mmfree: ") and message in err and err.count("\n") == 1


def test_cosim_is_run_with_the_rtl_backend():
    from mmfree.cli import build_parser
    args = build_parser().parse_args(["cosim", "--ids", "1"])
    assert args.backend == "rtl" and args.sim == "verilator" and args.lanes == 16
    assert args.harness == "bulk"
