"""``mmfree project`` says which hardware values it used, with their tags, in every format."""

import csv
import io
import json

from mmfree.cli import main


def test_project_prints_the_hardware_values_it_used(tmp_path, capsys):
    toml = tmp_path / "hw.toml"
    toml.write_text('[hardware]\npreset = "ecp5-85k"\nlanes = 512\n'
                    'clock_mhz = {value = 150, source = "measured", note = "nextpnr Fmax"}\n')
    assert main(["project", "--hw", str(toml), "--model", "370M"]) == 0
    text = capsys.readouterr().out
    used = text.split("hardware used (ecp5-85k; tagged coefficients below):\n")[1]
    lines = {line.split()[0]: line for line in used.split("\n\n")[0].splitlines()}
    assert "512  (configured)" in lines["lanes"]  # the TOML override is visible
    assert "1  (preset ecp5-85k)" in lines["ternary_cores"]
    assert "clock_mhz = 150 MHz (measured: nextpnr Fmax)" in text.split("coefficients:")[1]

    assert main(["project", "--hw", str(toml), "--model", "370M", "--json", "-"]) == 0
    hw = json.loads(capsys.readouterr().out)["hardware"]
    assert hw["lanes"] == {"value": 512, "source": "configured", "note": ""}
    assert hw["clock_mhz"]["source"] == "measured" and hw["device"]["value"] == "lfe5u-85f"

    out = tmp_path / "p.csv"
    assert main(["project", "--hw", str(toml), "--model", "370M", "--csv", str(out)]) == 0
    assert "hardware used" in capsys.readouterr().out  # the text report still goes to stdout
    rows = {(r["section"], r["key"]): r for r in csv.DictReader(io.StringIO(out.read_text()))}
    assert rows[("hardware", "lanes")]["value"] == "512"
    assert rows[("hardware", "lanes")]["source"] == "configured"
    assert rows[("hardware", "clock_mhz")]["source"] == "measured: nextpnr Fmax"
    assert ("summary", "decode_tokens_per_s") in rows
