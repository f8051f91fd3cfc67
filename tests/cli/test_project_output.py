"""``mmfree project`` says which hardware values it used, with their tags, in every format."""

import csv
import io
import json

from mmfree.cli import main


def test_project_prints_the_hardware_values_it_used(tmp_path, capsys):
    toml = tmp_path / "hw.toml"
    toml.write_text('[hardware]\npreset = "ecp5-85k"\nlanes = 320\n'
                    'clock_mhz = {value = 150, source = "measured", note = "nextpnr Fmax"}\n')
    assert main(["project", "--hw", str(toml), "--model", "370M"]) == 0
    text = capsys.readouterr().out
    used = text.split("hardware used (ecp5-85k; tagged coefficients below):\n")[1]
    lines = {line.split()[0]: line for line in used.split("\n\n")[0].splitlines()}
    assert "320  (configured)" in lines["lanes"]  # the TOML override is visible
    assert "1  (preset ecp5-85k)" in lines["ternary_cores"]
    assert "clock_mhz = 150 MHz (measured: nextpnr Fmax)" in text.split("coefficients:")[1]

    assert main(["project", "--hw", str(toml), "--model", "370M", "--json", "-"]) == 0
    hw = json.loads(capsys.readouterr().out)["hardware"]
    assert hw["lanes"] == {"value": 320, "source": "configured", "note": ""}
    assert hw["clock_mhz"]["source"] == "measured" and hw["device"]["value"] == "lfe5u-85f"

    out = tmp_path / "p.csv"
    assert main(["project", "--hw", str(toml), "--model", "370M", "--csv", str(out)]) == 0
    assert "hardware used" in capsys.readouterr().out  # the text report still goes to stdout
    rows = {(r["section"], r["key"]): r for r in csv.DictReader(io.StringIO(out.read_text()))}
    assert rows[("hardware", "lanes")]["value"] == "320"
    assert rows[("hardware", "lanes")]["source"] == "configured"
    assert rows[("hardware", "clock_mhz")]["source"] == "measured: nextpnr Fmax"
    assert ("summary", "decode_tokens_per_s") in rows


def test_project_says_what_is_validated_against_rtl(tmp_path, capsys):
    assert main(["project", "--hw", "d5005", "--model", "370M"]) == 0
    text = capsys.readouterr().out
    block = text.split("validated against RTL / analytical:\n")[1].split("\n\n")[0]
    lines = block.splitlines()
    assert any(line.strip().startswith("validated against RTL   ternary products")
               for line in lines)
    assert any(line.strip().startswith("analytical              clock") for line in lines)
    assert "AXI ports (product model fetched): 4 x 512 bits" in text

    assert main(["project", "--hw", "d5005", "--model", "370M", "--json", "-"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["product_model"] == "fetched" and s["port"]["data_width"] == 512
    rows = {r["part"].split(" (")[0]: r["status"] for r in s["validation"]}
    assert rows["ternary products"] == "validated against RTL"
    assert rows["element-wise work"] == "validated against RTL"
    for part in ("clock", "power and energy", "fit", "port bandwidth and latency of a preset"):
        assert rows[part] == "analytical", part
    # the analytical product model says so too
    toml = tmp_path / "a.toml"
    toml.write_text('[hardware]\npreset = "d5005"\nproduct_model = "analytical"\n')
    assert main(["project", "--hw", str(toml), "--model", "370M", "--json", "-"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    rows = {r["part"]: r["status"] for r in s["validation"]}
    assert s["port"] is None and rows["ternary products"] == "unit measured on RTL"
    assert rows["element-wise work"] == "analytical"
    out = tmp_path / "p.csv"
    assert main(["project", "--hw", "d5005", "--model", "370M", "--csv", str(out)]) == 0
    got = {(r["section"], r["key"]): r["value"]
           for r in csv.DictReader(io.StringIO(out.read_text()))}
    assert got[("summary", "product_model")] == "fetched"
    assert any(k[0] == "validation" and v == "validated against RTL" for k, v in got.items())


def test_a_design_the_fetcher_cannot_build_is_one_line_naming_the_keys(tmp_path, capsys):
    toml = tmp_path / "bad.toml"
    toml.write_text('[hardware]\npreset = "ecp5-85k"\nlanes = 256\n')  # 52-byte groups
    assert main(["project", "--hw", str(toml), "--model", "370M"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmfree: ") and "\n" not in err
    assert "lanes" in err and "port_bits" in err and "product_model" in err
