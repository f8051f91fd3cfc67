"""System-level cycle model: property tests, sweep consistency, configuration errors."""

from dataclasses import replace

import numpy as np
import pytest

from mmfree.cli import main
from mmfree.model.config import (
    PRESETS,
    ConfigError,
    Q,
    Workload,
    builtin_model,
    hardware_from_dict,
    load_toml,
)
from mmfree.model.report import compare, summary
from mmfree.model.sweep import grid, sweep, sweep_hardware
from mmfree.model.system import project


def _random_hw(rng):
    base = PRESETS[rng.choice(list(PRESETS))]
    return replace(base, lanes=int(rng.choice([16, 64, 256, 1024])),
                   ternary_cores=int(rng.integers(1, 9)),
                   tensor_arrays=int(rng.integers(1, 64)),
                   clock_mhz=Q(float(rng.uniform(20, 400)), "assumed", "test"),
                   sram_mib=float(rng.choice([0, 1, 16, 64])),
                   dram_gbps_per_channel=Q(float(rng.uniform(0.5, 100)), "assumed", "test"),
                   overlap=bool(rng.integers(2)), tensor_sparse=bool(rng.integers(2)),
                   product_model="analytical")  # the roofline model; "fetched": test_presets


MODELS = ["370M", "1.3B", "2.7B", "transformer-370M", "bitnet-1.3B"]


def test_throughput_never_exceeds_the_rooflines(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        hw, model = _random_hw(rng), builtin_model(str(rng.choice(MODELS)))
        wl = Workload(int(rng.integers(1, 65)), int(rng.integers(0, 2048)),
                      int(rng.integers(1, 512)))
        p = project(model, hw, wl)
        s = summary(p)
        dram_bound = wl.batch * hw.dram_bytes_per_s / s["dram_bytes_per_step"]
        assert p.tokens_per_s <= dram_bound * (1 + 1e-9), (seed, hw.name, model.name)
        compute_bound = wl.batch / (float(p.decode.ops_count) / p.peak_ops_per_s())
        assert p.tokens_per_s <= compute_bound * (1 + 1e-9), (seed, hw.name, model.name)
        assert s["attained_gops"] <= s["peak_compute_gops"] * (1 + 1e-9)
        assert p.tpot_s >= float(p.decode.compute_s) and p.tpot_s >= float(p.decode.dram_s)
        # energy and power are consistent
        assert np.isclose(sum(p.power_w.values()) * p.tpot_s,
                          sum(p.energy_per_token_j.values()) * wl.batch)


@pytest.mark.parametrize("knob", ["bandwidth", "clock", "lanes", "sram", "cores"])
def test_more_resources_never_lower_throughput(knob, seed):
    rng = np.random.default_rng(seed)
    for _ in range(100):
        hw, model = _random_hw(rng), builtin_model(str(rng.choice(MODELS)))
        wl = Workload(int(rng.integers(1, 33)), 256, 64)
        bigger = {
            "bandwidth": lambda h: replace(h, dram_gbps_per_channel=Q(
                2 * h.dram_gbps_per_channel.value, "assumed", "x2")),
            "clock": lambda h: replace(h, clock_mhz=Q(2 * h.clock_mhz.value, "assumed", "x2")),
            "lanes": lambda h: replace(h, lanes=min(1024, 2 * h.lanes)),
            "sram": lambda h: replace(h, sram_mib=2 * h.sram_mib + 1),
            "cores": lambda h: replace(h, ternary_cores=2 * h.ternary_cores,
                                       tensor_arrays=2 * h.tensor_arrays),
        }[knob](hw)
        a, b = project(model, hw, wl).tokens_per_s, project(model, bigger, wl).tokens_per_s
        assert b >= a * (1 - 1e-12), (knob, seed, hw, model.name)


@pytest.mark.parametrize("preset", ["hbm-fpga", "d5005"])
def test_sweep_equals_project_point_by_point(preset, seed):
    rng = np.random.default_rng(seed)
    pts = grid(lanes=[16, 256, 1024], cores=[1, 3], clock_mhz=[60, 250],
               dram_gbps=[3.2, 100.0, 700.0], batch=[1, 7, 64])
    model, hw, wl = builtin_model("370M"), PRESETS[preset], Workload(1, 64, 64)
    res = sweep(model, hw, pts, wl)
    for i in rng.choice(len(res.tokens_per_s), 12, replace=False):
        h = replace(sweep_hardware(hw, pts["dram_gbps"][i]), lanes=int(pts["lanes"][i]),
                    ternary_cores=int(pts["cores"][i]),
                    clock_mhz=Q(pts["clock_mhz"][i], "assumed", "t"))
        p = project(model, h, Workload(int(pts["batch"][i]), 64, 64))
        assert np.isclose(p.tokens_per_s, res.tokens_per_s[i])
        assert np.isclose(sum(p.power_w.values()), res.power_w[i])
        assert p.fits == res.fits[i] and h.dram_tech == res.dram_tech[i]
    front = res.pareto(res.power_w)
    for i in front:  # nothing on the front is dominated by a design that fits
        dominated = ((res.tokens_per_s > res.tokens_per_s[i]) & (res.power_w < res.power_w[i])
                     & res.fits)
        assert not dominated.any()


def test_weights_per_layer_match_the_reference_table():
    # ../shared/reference/matmulfree-lm.md: 12.85 M, 51.38 M, 79.30 M per layer
    for size, want in (("370M", 12.85e6), ("1.3B", 51.38e6), ("2.7B", 79.30e6)):
        assert abs(builtin_model(size).weights_per_layer - want) < 0.01e6


def test_comparison_finds_crossovers():
    c = compare(PRESETS["d5005"], "1.3B", [1, 4, 16], [256, 4096, 16384])
    names = set(c.winner().ravel())
    assert len(names) >= 2 and c.crossovers()


@pytest.mark.parametrize("text,message", [
    ('[hardware]\npreset = "d5005"\nlanes = 2048\n', "lanes: 2048 is outside"),
    ('[hardware]\npreset = "d5005"\nbogus = 1\n', "unknown key"),
    ('[hardware]\nlanes = 16\n', "give clock_mhz and device"),
    ('[hardware]\nclock_mhz = 50\n', "give device"),
    ('[hardware]\npreset = "d5005"\ndevice = "xc9"\n', "device: one of"),
    ('[hardware]\npreset = "d5005"\ndram_tech = "DDR9"\n', "dram_tech: one of"),
    ('[hardware]\npreset = "nope"\n', "preset: unknown preset 'nope'; presets: d5005"),
    ('[model]\nkind = "transformer"\nlayers = 2\nd = 1024\nkv_heads = 3\n', "kv_heads: 3"),
    ('[model]\nkind = "mmfree"\nlayers = 2\nd = 64\nkv_heads = 1\n', "Transformer"),
    ('[hardware]\npreset = "d5005"\nweight_bits = 3\n', "weight_bits"),
    ('[hardware]\npreset = "d5005"\nclock_mhz = {value = 100, source = "guess"}\n', "source"),
    ('[hardware]\npreset = "d5005"\nlanes = "many"\n', "expected an integer"),
    ('[model]\nkind = "mmfree"\nd = 64\n', "missing key layers"),
    ('model = "4B"\n', "unknown model"),
    ('[workload]\nbatch = 0\n', "batch: 0 is outside"),
    ('[extra]\n', "unknown sections"),
    ('not toml =', "not valid TOML"),
])
def test_config_errors_name_the_key(tmp_path, text, message):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_toml(f)


def test_config_file_round_trip(tmp_path):
    f = tmp_path / "hw.toml"
    f.write_text('model = "370M"\n[hardware]\npreset = "ecp5-85k"\nlanes = 512\n'
                 'clock_mhz = {value = 150, source = "measured", note = "nextpnr Fmax"}\n'
                 '[workload]\nbatch = 2\n')
    model, hw, wl = load_toml(f)
    assert (model.name, hw.lanes, hw.clock_mhz.source, wl.batch) == ("370M", 512, "measured", 2)
    hw = hardware_from_dict({"clock_mhz": 50, "device": "xc7a35t", "dram_tech": "DDR3"})
    assert hw.clock_mhz.source == "assumed" and hw.dram_pj.value == hw.dram.pj_per_bit.value


def test_cli_project_sweep_and_compare(tmp_path, capsys):
    assert main(["project", "--hw", "d5005", "--model", "370M", "--csv", "-"]) == 0
    assert "decode_tokens_per_s" in capsys.readouterr().out
    assert main(["sweep", "--hw", "d5005", "--quiet", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "pareto_power.csv").exists() and (tmp_path / "points.csv").exists()
    assert main(["compare", "--hw", "ecp5-85k", "--batches", "1,8", "--contexts", "512"]) == 0
    capsys.readouterr()
    assert main(["sweep", "--hw", "d5005", "--lanes", "2048", "-o", str(tmp_path)]) == 2
    assert "--lanes takes whole numbers up to 1024" in capsys.readouterr().err


def test_cli_plot_writes_figures(tmp_path):
    assert main(["project", "--hw", "hbm-fpga", "--model", "370M", "--plot", str(tmp_path),
                 "--plot-format", "svg"]) == 0
    assert (tmp_path / "roofline.svg").stat().st_size > 1000
    assert (tmp_path / "breakdown.svg").stat().st_size > 1000
