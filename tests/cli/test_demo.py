"""``mmfree demo`` checks all its input before it writes or runs anything."""

from mmfree.cli import main


def test_demo_rejects_bad_input_before_any_work(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path), "--tokens", "0", "--sim", "icarus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmfree: ") and "--tokens" in err
    assert not list(tmp_path.iterdir())
    assert main(["demo", "-o", str(tmp_path), "--lanes", "0", "--sim", "icarus"]) == 2
    assert "lanes must be in 1..64" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    # the engine's lanes must divide the MLP width (256)
    assert main(["demo", "-o", str(tmp_path), "--lanes", "48", "--sim", "icarus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmfree: --lanes") and "\n" not in err.strip()
    assert not list(tmp_path.iterdir())
