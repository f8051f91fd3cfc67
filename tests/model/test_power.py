"""Power model, coefficient table, DRAM technologies, fit check, Transformer++ baseline and
the released block's BitLinear calls in the cycle model."""

import json
from dataclasses import replace

import numpy as np
import pytest

from mmfree.cli import main
from mmfree.model import activity, fit
from mmfree.model.config import (
    PRESETS,
    SOURCES,
    ModelConfig,
    Workload,
    builtin_model,
    glu_size,
)
from mmfree.model.cycles import ternary_matvec_cycles
from mmfree.model.devices import DEVICES, DRAM_TECHS, LADDER, dram_for_bandwidth
from mmfree.model.report import summary, to_json
from mmfree.model.sweep import grid, sweep
from mmfree.model.system import elementwise_per_layer, hw_arrays, project, step_ops

MODELS = ["370M", "1.3B", "2.7B", "transformer-370M", "bitnet-1.3B"]


@pytest.mark.parametrize("preset", list(PRESETS))
def test_power_parts_sum_to_the_total(preset):
    for name in MODELS:
        p = project(builtin_model(name), PRESETS[preset], Workload(2, 64, 32))
        s = json.loads(to_json(p))["summary"]
        power, detail = s["power_w"], s["power_detail_w"]
        assert list(power) == ["static", "logic", "on-chip memory", "DRAM"]
        assert np.isclose(sum(power.values()), s["total_power_w"])
        assert np.isclose(power["static"], detail["device static"] + detail["DRAM background"]
                          + detail["board"])
        assert np.isclose(power["logic"], detail["ternary cores"] + detail["tensor arrays"]
                          + detail["element-wise"])
        assert min(power.values()) >= 0 and power["logic"] > 0
        hw = PRESETS[preset]
        assert np.isclose(detail["device static"], hw.dev.static_w.value)
        assert np.isclose(detail["board"], hw.board_w.value)


def test_coefficient_table_names_every_coefficient():
    p = project(builtin_model("1.3B"), PRESETS["d5005"], Workload())
    coeffs = json.loads(to_json(p))["summary"]["coefficients"]
    for key in ("clock_mhz", "dram_pj_per_bit", "static_w", "dram_background_w", "board_w",
                "elementwise_per_cycle", "e_toggle_pj", "e_dsp_pj", "e_sram_pj_per_bit",
                "alpha_ternary", "luts_per_ternary_lane", "alpha_tensor", "device_luts"):
        assert key in coeffs, key
    for key, c in coeffs.items():
        assert set(c) == {"value", "unit", "source", "note"}, key
        assert c["source"] in SOURCES and c["note"] and c["unit"], key
        assert isinstance(c["value"], int | float), key
    hw = PRESETS["d5005"]
    assert coeffs["dram_pj_per_bit"]["value"] == DRAM_TECHS["DDR4"].pj_per_bit.value
    assert coeffs["static_w"]["value"] == DEVICES["1sx280"].static_w.value
    assert coeffs["e_toggle_pj"]["value"] == hw.dev.fam.e_toggle_pj.value
    data = activity.measured()["units"]["ternary-core"]
    assert coeffs["alpha_ternary"]["value"] == data["alpha"]
    assert coeffs["alpha_ternary"]["source"] == "measured"


def test_every_preset_names_its_device_and_dram_technology():
    for name, hw in PRESETS.items():
        assert hw.device in DEVICES and hw.dram_tech in DRAM_TECHS, name
        assert hw.dram_pj.value == DRAM_TECHS[hw.dram_tech].pj_per_bit.value, name
        assert hw.static.value == DEVICES[hw.device].static_w.value, name
    e = {t: DRAM_TECHS[t].pj_per_bit.value for t in DRAM_TECHS}
    assert e["HBM2"] < e["DDR4"] < e["DDR3"]


def test_bandwidth_sweep_never_pairs_hbm_bandwidth_with_ddr_energy():
    bws = [0.4, 1.6, 6.4, 12.8, 25.6, 51.2, 76.8, 102.4, 153.6, 460, 700, 1200]
    pts = grid(lanes=[64, 1024], cores=[1, 8], clock_mhz=[100], dram_gbps=bws, batch=[1, 16])
    ddr_max = max(DRAM_TECHS[t].max_gbps for t in ("DDR3", "DDR4", "LPDDR4", "SDR"))
    for preset, hw in PRESETS.items():
        res = sweep(builtin_model("370M"), hw, pts, Workload(1, 64, 64))
        for gbps, tech, pj in zip(pts["dram_gbps"], res.dram_tech, res.dram_pj_per_bit,
                                  strict=True):
            assert pj == DRAM_TECHS[tech].pj_per_bit.value, (preset, gbps, tech)
            if gbps > ddr_max:
                assert tech.startswith("HBM"), (preset, gbps, tech)
            assert gbps <= DRAM_TECHS[tech].max_gbps or tech == LADDER[-1], (preset, gbps)
        # bandwidth the board's own technology reaches keeps it
        own = pts["dram_gbps"] <= hw.dram.max_gbps
        assert (res.dram_tech[own] == hw.dram_tech).all(), preset
    assert dram_for_bandwidth(460, "DDR4") == "HBM2"
    assert dram_for_bandwidth(900, "DDR4") == "HBM2e"


def test_fit_check_counts_measured_resources():
    t, a = activity.unit("ternary-core"), activity.unit("tensor-core")
    hw = PRESETS["ecp5-85k"]
    big = replace(hw, ternary_cores=16, lanes=1024, product_model="analytical")
    rows = {r.resource.split(" (")[0]: r for r in fit.check(builtin_model("370M"), big,
                                                            Workload())}
    ew = hw.elementwise_per_cycle.value * activity.EW_LANE_LUTS.value
    assert np.isclose(rows["LUT4-equivalents"].need, 16 * 1024 * t.luts.value + ew)
    assert np.isclose(rows["LUT4-equivalents"].available,
                      DEVICES["lfe5u-85f"].luts.value * hw.max_utilisation.value)
    assert not rows["LUT4-equivalents"].ok and rows["DRAM capacity"].ok
    p = project(builtin_model("370M"), big, Workload())
    assert not p.fits and any("LUT4-equivalents" in w for w in p.warnings)
    # the preset itself fits; a Transformer++ on 4 arrays does not (4 x 64 multipliers)
    assert project(builtin_model("370M"), hw, Workload()).fits
    q = project(builtin_model("transformer-370M"), replace(hw, tensor_arrays=4), Workload())
    mult = next(r for r in q.fit if r.resource == "hard multipliers")
    assert mult.need == (4 * a.multipliers.value
                         + hw.elementwise_per_cycle.value * activity.EW_LANE_MULTS.value)
    assert not mult.ok and not q.fits
    # memory: the weights, embeddings and state of 370M do not fit the ULX3S's 32 MB
    u = project(builtin_model("370M"), PRESETS["ulx3s-85f"], Workload())
    mem = next(r for r in u.fit if r.resource.startswith("DRAM capacity"))
    assert not mem.ok and mem.available == 32 * 2**20
    assert mem.need > builtin_model("370M").linear_weights * 1.6 / 8
    assert all(project(builtin_model(m), PRESETS["d5005"], Workload()).fits for m in MODELS)


def test_kv_cache_fills_capacity_with_context():
    hw = PRESETS["kv260"]
    model = builtin_model("transformer-1.3B")
    assert project(model, hw, Workload(1, 1024, 1)).fits
    assert not project(model, hw, Workload(64, 16384, 1)).fits  # 64 x 16k x 24 x 4 KB
    assert project(builtin_model("1.3B"), hw, Workload(64, 16384, 1)).fits  # no KV cache


def test_sweep_fronts_keep_only_designs_that_fit(tmp_path, capsys):
    pts = grid(lanes=[64, 256, 1024], cores=[1, 4, 16], clock_mhz=[100, 200],
               dram_gbps=[1.6, 12.8], batch=[1, 8])
    hw = PRESETS["ecp5-85k"]
    res = sweep(builtin_model("370M"), hw, pts, Workload(1, 64, 64))
    assert res.fits.any() and not res.fits.all()
    for cost in (res.power_w, res.luts):
        front = res.pareto(cost)
        assert len(front) and res.fits[front].all()
    big = (pts["lanes"] * pts["cores"] * activity.unit("ternary-core").luts.value
           > hw.dev.luts.value * hw.max_utilisation.value)
    assert not res.fits[big].any()
    assert main(["sweep", "--hw", "ecp5-85k", "--model", "370M", "--lanes", "64,1024",
                 "--cores", "1,16", "--clock", "100", "--bandwidth", "1.6,460",
                 "--batch-sizes", "1", "--quiet", "-o", str(tmp_path)]) == 0
    head = (tmp_path / "points.csv").read_text().splitlines()[0].split(",")
    assert {"fits", "dram_tech", "luts"} <= set(head)
    assert "HBM2" in (tmp_path / "points.csv").read_text()
    capsys.readouterr()
    # a device too small for any point: exit 1 with a one-line reason
    assert main(["sweep", "--hw", "ulx3s-85f", "--model", "1.3B", "--lanes", "64",
                 "--cores", "1", "--clock", "100", "--bandwidth", "1.6",
                 "--batch-sizes", "1", "--quiet", "-o", str(tmp_path)]) == 1
    assert "no design point fits" in capsys.readouterr().err


def test_compare_and_project_warn(capsys, tmp_path):
    four = tmp_path / "ecp5-4-arrays.toml"  # 4 tensor arrays need 256 of 156 multipliers
    four.write_text('[hardware]\npreset = "ecp5-85k"\ntensor_arrays = 4\n')
    assert main(["compare", "--hw", str(four), "--model", "370M", "--batches", "1",
                 "--contexts", "256"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: Transformer++/dense: hard multipliers" in out
    assert main(["project", "--hw", "ulx3s-85f", "--model", "370M"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: does not fit" in out and "FAIL DRAM capacity" in out


def test_logic_power_is_activity_times_resources_times_energy():
    hw = PRESETS["d5005"]
    p = project(builtin_model("1.3B"), hw, Workload())
    t = activity.unit("ternary-core")
    # the lanes' working cycles: a fetched product's cycles waiting for its port draw none
    busy = sum(float(op.active_cycles) * (24 if op.per_layer else 1) for op in p.decode.ops
               if op.unit == "ternary")
    assert busy == sum(float(ternary_matvec_cycles(-(-op.m // hw.ternary_cores), op.k,
                                                   hw.lanes)) * (24 if op.per_layer else 1)
                       for op in p.decode.ops if op.unit == "ternary")
    want = (t.alpha.value * t.luts.value * hw.lanes * hw.ternary_cores
            * hw.dev.fam.e_toggle_pj.value * 1e-12 * busy / p.tpot_s)
    assert np.isclose(p.power_detail_w["ternary cores"], want)
    assert p.power_detail_w["tensor arrays"] == 0  # the MatMul-free LM uses none
    # twice the lanes and the same work: the same energy per token (busy cycles halve)
    q = project(builtin_model("1.3B"), replace(hw, lanes=512), Workload())
    e1 = p.power_detail_w["ternary cores"] * p.tpot_s
    e2 = q.power_detail_w["ternary cores"] * q.tpot_s
    assert 0.95 < e1 / e2 < 1.05


def test_transformer_baseline_head_dim_gqa_and_tied_embeddings():
    m = builtin_model("bitnet-b1.58-2B4T")
    assert (m.layers, m.d, m.heads, m.kv_dim, m.tie_embeddings) == (30, 2560, 20, 640, True)
    assert m.weights_per_layer == 2 * 2560**2 + 2 * 2560 * 640 + 3 * 2560 * 6912
    mha = replace(m, kv_heads=None)
    assert mha.weights_per_layer == 4 * 2560**2 + 3 * 2560 * 6912
    hw = PRESETS["d5005"]
    wl = Workload(1, 2048, 1)
    g, f = project(m, hw, wl), project(mha, hw, wl)
    assert float(g.decode.dram_bytes) < float(f.decode.dram_bytes)  # 4x smaller KV cache
    mem = fit.memory_bytes(m, hw, 1, 2048)
    assert mem["KV cache"] == 30 * 2 * 640 * 2048  # int8 K and V of 5 x 128 per layer
    assert mem["weights"] == 30 * m.weights_per_layer * 2 / 8  # tied: no separate lm_head
    head = [op for op in g.decode.ops if op.name.startswith("lm_head")]
    assert len(head) == 1 and head[0].unit == "tensor" and head[0].weight_bits == 16
    with pytest.raises(ValueError, match="tied fp16 lm_head"):
        project(m, replace(hw, tensor_arrays=0), wl)


def test_released_block_bitlinear_calls_and_elementwise_work():
    for size in ("370M", "1.3B", "2.7B"):
        m = builtin_model(size)
        hw = replace(PRESETS["d5005"], product_model="analytical")
        ops = step_ops(m, hw, 1, 0, 1, 1, hw_arrays(hw))
        # the preset's engine program does the same element work (the energy's count)
        engine = step_ops(m, PRESETS["d5005"], 1, 0, 1, 1, hw_arrays(hw))
        assert {op.source for op in engine if op.unit == "elementwise"} == {"engine"}

        def elems(ops, layers=m.layers):
            return sum(op.elems * (layers if op.per_layer else 1) for op in ops)
        assert elems(engine) == elems(ops)
        calls = sum(m.layers if op.per_layer else 1 for op in ops if op.unit == "ternary")
        assert calls == 6 * m.layers + 1  # i, f, g, o, gate_proj, down_proj; lm_head
        d, i = m.d, glu_size(m.d)
        assert sum(elementwise_per_layer(m).values()) == 49 * d + 9 * i
        lb = [op for op in ops if op.name == "forget-gate lower bound"]
        assert len(lb) == 1 and lb[0].elems == 2 * d * (m.layers - 1)
        shapes = sorted((op.m, op.k) for op in ops if op.unit == "ternary" and op.per_layer)
        assert shapes == sorted([(d, d)] * 4 + [(2 * i, d), (d, i)])


def test_custom_model_keys_round_trip(tmp_path):
    from mmfree.model.config import load_toml
    f = tmp_path / "m.toml"
    f.write_text('[model]\nkind = "transformer"\nlayers = 4\nd = 512\nhead_dim = 64\n'
                 'kv_heads = 2\ntie_embeddings = true\nternary_linear = true\n')
    model, _, _ = load_toml(f)
    assert model == ModelConfig("custom-transformer", "transformer", 4, 512, glu_size(512),
                                head_dim=64, kv_heads=2, tie_embeddings=True,
                                ternary_linear=True)
    assert model.kv_dim == 128


def test_summary_reports_chip_power_without_dram_and_board():
    p = project(builtin_model("370M"), PRESETS["arty-a7-35t"], Workload())
    s = summary(p)
    d = s["power_detail_w"]
    assert np.isclose(s["chip_power_w"], d["device static"] + s["power_w"]["logic"]
                      + s["power_w"]["on-chip memory"])
    assert s["chip_power_w"] < s["total_power_w"]
