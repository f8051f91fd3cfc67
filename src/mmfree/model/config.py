"""Inputs of the cycle model: model, hardware and workload, with provenance on every number.

Every physical coefficient is a :class:`Q`: a value with its source, ``measured`` (RTL
simulation or a synthesis report), ``cited`` (the source is named) or ``assumed`` (and why).
Design choices (lane counts, batch size, ...) are plain numbers. Configurations load from
TOML files (:func:`load_toml`) with schema checks whose errors name the offending key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..golden.tiny_model import glu_size
from ..spec import TernaryCoreSpec

__all__ = [
    "ACCELERGY",
    "E_ADD_PJ",
    "E_ELEMENTWISE_PJ",
    "E_MAC_PJ",
    "E_SRAM_PJ_BIT",
    "FPGA_FACTOR",
    "HOROWITZ",
    "KUON_ROSE",
    "LUT_PER_ARRAY",
    "LUT_PER_LANE",
    "PRESETS",
    "RENAMED_PRESETS",
    "SOURCES",
    "WORKLOAD_LIMITS",
    "ConfigError",
    "HardwareConfig",
    "ModelConfig",
    "Q",
    "Workload",
    "builtin_model",
    "builtin_names",
    "glu_size",
    "hardware_from_dict",
    "load_toml",
    "model_from_value",
    "preset",
    "workload_from_dict",
]

SOURCES = ("measured", "cited", "assumed")


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key."""


@dataclass(frozen=True)
class Q:
    """A quantity with provenance."""

    value: float
    source: str
    note: str

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")

    def tag(self) -> str:
        return f"{self.source}: {self.note}"


# --- references (named once, used by the presets) ----------------------------------------

HOROWITZ = "Horowitz, ISSCC 2014, 45 nm"
KUON_ROSE = "Kuon & Rose, IEEE TCAD 2007: FPGA vs ASIC dynamic power ~14x"
ACCELERGY = "Accelergy CACTI plug-in DRAM table"
FPGA_FACTOR = Q(14.0, "cited", KUON_ROSE)
#: energy per 2-input 32-bit integer add on an FPGA (an upper bound for the 9..20-bit adds
#: of a ternary lane): 0.1 pJ (45 nm ASIC) x 14
E_ADD_PJ = Q(0.1 * 14, "cited", f"{HOROWITZ} 32-bit add 0.1 pJ x {KUON_ROSE}")
#: energy per int8 MAC on an FPGA, bounded by the 32-bit multiply + add: (3.1 + 0.1) pJ x 14
E_MAC_PJ = Q((3.1 + 0.1) * 14, "cited", f"{HOROWITZ} 32-bit mult 3.1 + add 0.1 pJ x 14")
#: energy per element-wise fp32 operation: mean of fp32 add 0.9 and mult 3.7 pJ, x 14
E_ELEMENTWISE_PJ = Q((0.9 + 3.7) / 2 * 14, "cited",
                     f"{HOROWITZ} fp32 add 0.9 / mult 3.7 pJ, mean, x 14")
#: on-chip SRAM read energy per bit: 10 pJ per 64-bit read of an 8 KB SRAM, x 14
E_SRAM_PJ_BIT = Q(10 / 64 * 14, "cited", f"{HOROWITZ} 8 KB SRAM 64-bit read 10 pJ x 14")


@dataclass(frozen=True)
class ModelConfig:
    """A language model: the MatMul-free LM or the Transformer++ baseline of the same size."""

    name: str
    kind: str  #: "mmfree" or "transformer"
    layers: int
    d: int  #: hidden size
    inter: int  #: GLU intermediate size
    vocab: int = 32000
    head_dim: int = 128  #: transformer only
    ternary_linear: bool = False  #: transformer only: BitNet-style ternary projections

    @property
    def weights_per_layer(self) -> int:
        """Linear weights per block: ``4 d^2 + 3 d I`` for both model kinds."""
        return 4 * self.d * self.d + 3 * self.d * self.inter

    @property
    def linear_weights(self) -> int:
        """All linear weights read per token: every block plus the lm_head."""
        return self.layers * self.weights_per_layer + self.vocab * self.d


_SIZES = {"370M": (24, 1024), "1.3B": (24, 2048), "2.7B": (32, 2560)}


def builtin_model(name: str) -> ModelConfig:
    """``370M``, ``1.3B``, ``2.7B`` (MatMul-free LM) or ``transformer-<size>`` /
    ``bitnet-<size>`` (Transformer++ of the same size, int8 or ternary projections)."""
    kind, _, size = name.rpartition("-")
    if size not in _SIZES or kind not in ("", "mmfree", "transformer", "bitnet"):
        raise ConfigError(f"unknown model {name!r}; built in: {', '.join(builtin_names())}")
    layers, d = _SIZES[size]
    return ModelConfig(name=name, kind="transformer" if kind in ("transformer", "bitnet")
                       else "mmfree", layers=layers, d=d, inter=glu_size(d),
                       ternary_linear=kind == "bitnet")


def builtin_names() -> list[str]:
    return [p + s for p in ("", "transformer-", "bitnet-") for s in _SIZES]


@dataclass(frozen=True)
class HardwareConfig:
    """An accelerator built from the project's units, plus memories and power figures."""

    name: str
    clock_mhz: Q
    ternary_cores: int = 1
    lanes: int = 64
    weight_bits: float = 2.0  #: 2 (2-bit codes) or 1.6 (5 trits per byte, unpacker)
    #: the ternary cores' adder tree registered every this many levels (0: one stage)
    tree_levels_per_stage: int = 0
    dsp_pipeline: bool = False  #: the tensor arrays register every product twice
    tensor_arrays: int = 0
    tensor_sparse: bool = False
    sram_mib: float = 0.0
    sram_bits_per_cycle: int = 4096  #: on-chip read bandwidth available to the units
    dram_channels: int = 1
    dram_gbps_per_channel: Q = field(default_factory=lambda: Q(19.2, "cited", "DDR4-2400"))
    dram_efficiency: Q = field(default_factory=lambda: Q(0.7, "assumed", "typical"))
    dram_capacity_gib: float = 32.0
    dram_pj_per_bit: Q = field(default_factory=lambda: Q(70, "cited", ACCELERGY + " (DDR3)"))
    elementwise_per_cycle: int = 16  #: element operations per cycle (fp, element-wise unit)
    overlap: bool = True  #: weight fetch overlaps compute
    static_w: Q = field(default_factory=lambda: Q(1.0, "assumed", "placeholder"))
    e_add_pj: Q = E_ADD_PJ
    e_mac_pj: Q = E_MAC_PJ
    e_elementwise_pj: Q = E_ELEMENTWISE_PJ
    e_sram_pj_per_bit: Q = E_SRAM_PJ_BIT
    luts_per_ternary_lane: Q | None = None
    luts_per_tensor_array: Q | None = None

    @property
    def dram_bytes_per_s(self) -> float:
        return (self.dram_channels * self.dram_gbps_per_channel.value * 1e9
                * self.dram_efficiency.value)

    def luts(self) -> float | None:
        """LUT estimate from measured per-unit synthesis counts, when present."""
        if self.luts_per_ternary_lane is None:
            return None
        total = self.ternary_cores * self.lanes * self.luts_per_ternary_lane.value
        if self.tensor_arrays and self.luts_per_tensor_array is not None:
            total += self.tensor_arrays * self.luts_per_tensor_array.value
        return total

    def provenance(self) -> dict[str, str]:
        """Every tagged coefficient of this configuration, name -> tag."""
        return {f.name: getattr(self, f.name).tag() for f in fields(self)
                if isinstance(getattr(self, f.name), Q)}


@dataclass(frozen=True)
class Workload:
    """Batch of sequences, prompt length and tokens generated per sequence."""

    batch: int = 1
    prompt: int = 128
    generate: int = 128


# --- presets ---------------------------------------------------------------------------
# Each preset's tensor_arrays equals cores * lanes / 64: the same number of MAC slots as
# ternary lanes (the comparison's budget rule, see docs/cycle-model.md).

#: Yosys 0.70 synth_ecp5 of this project's RTL (tests/test_synth.py): a 16-lane ternary core
#: uses 777 LUT4 (49 per lane); an int8 tensor-core array 35 LUT4 and 64 DSPs (its sums are
#: 688 CCU2C carry cells and its output FIFO 128 LUT-RAM cells, which LUT4 does not count).
LUT_PER_LANE = Q(777 / 16, "measured", "Yosys synth_ecp5, 16-lane ternary core: 777 LUT4")
LUT_PER_ARRAY = Q(35, "measured", "Yosys synth_ecp5, int8 TensorCore: 35 LUT4 (+ 688 CCU2C, "
                  "128 LUT RAM) + 64 DSP")

PRESETS: dict[str, HardwareConfig] = {
    "d5005": HardwareConfig(
        name="d5005",
        clock_mhz=Q(60, "cited", "Zhu et al. 2406.02528: the FPGA core runs at 60 MHz"),
        ternary_cores=1, lanes=1024, weight_bits=2.0, tensor_arrays=16,
        sram_mib=28.0, sram_bits_per_cycle=8192,
        dram_channels=4,
        dram_gbps_per_channel=Q(19.2, "cited", "D5005: 4 x DDR4-2400, 64-bit, 19.2 GB/s each"),
        dram_efficiency=Q(0.7, "assumed", "DDR4 sustained/peak for long bursts"),
        dram_capacity_gib=32,
        dram_pj_per_bit=Q(70, "cited", ACCELERGY + ": DDR3 70 pJ/bit, upper bound for DDR4"),
        elementwise_per_cycle=16,
        static_w=Q(10.0, "assumed", "Stratix 10 board-level static power, not measured"),
        luts_per_ternary_lane=LUT_PER_LANE, luts_per_tensor_array=LUT_PER_ARRAY),
    "ecp5-85k": HardwareConfig(
        name="ecp5-85k",
        clock_mhz=Q(100, "assumed", "until the FPGA flow measures Fmax"),
        ternary_cores=1, lanes=256, weight_bits=1.6, tensor_arrays=4,
        sram_mib=0.45, sram_bits_per_cycle=2048,
        dram_channels=1,
        dram_gbps_per_channel=Q(1.6, "assumed", "a 16-bit DDR3-800 board memory"),
        dram_efficiency=Q(0.6, "assumed", "small-controller DDR3 efficiency"),
        dram_capacity_gib=0.5,
        dram_pj_per_bit=Q(70, "cited", ACCELERGY + ": DDR3 70 pJ/bit"),
        elementwise_per_cycle=4,
        static_w=Q(0.5, "assumed", "ECP5-85 board static power, not measured"),
        luts_per_ternary_lane=LUT_PER_LANE, luts_per_tensor_array=LUT_PER_ARRAY),
    "hbm-fpga": HardwareConfig(
        name="hbm-fpga",
        clock_mhz=Q(300, "assumed", "data-centre FPGA fabric clock"),
        ternary_cores=8, lanes=1024, weight_bits=1.6, tensor_arrays=128,
        sram_mib=40.0, sram_bits_per_cycle=65536,
        dram_channels=32,
        dram_gbps_per_channel=Q(14.4, "assumed", "HBM2 pseudo-channel class, 460 GB/s total"),
        dram_efficiency=Q(0.8, "assumed", "HBM sustained/peak"),
        dram_capacity_gib=8,
        dram_pj_per_bit=Q(3.9, "cited", ACCELERGY + ": HBM2 3.9 pJ/bit"),
        elementwise_per_cycle=128,
        static_w=Q(25.0, "assumed", "data-centre FPGA card static power"),
        luts_per_ternary_lane=LUT_PER_LANE, luts_per_tensor_array=LUT_PER_ARRAY),
}


#: Presets renamed (old -> new): the old names are errors that name the new one.
RENAMED_PRESETS = {"ecp5-85": "ecp5-85k"}  # named like the synth target and the ECP5 part


def preset(name: str, where: str = "--hw") -> HardwareConfig:
    """The built-in hardware ``name``; an unknown or renamed one is a :class:`ConfigError`
    naming ``where``."""
    if name in PRESETS:
        return PRESETS[name]
    if name in RENAMED_PRESETS:
        raise ConfigError(f"{where}: preset {name!r} was renamed {RENAMED_PRESETS[name]!r}")
    raise ConfigError(f"{where}: unknown preset {name!r}; presets: {', '.join(PRESETS)}")


#: The workload's limits: batch, prompt and generated tokens (TOML and command line).
WORKLOAD_LIMITS = {"batch": (1, 1 << 16), "prompt": (0, 1 << 20), "generate": (1, 1 << 20)}


# --- TOML --------------------------------------------------------------------------------

_HW_INT = {"ternary_cores": (0, 1 << 16), "lanes": TernaryCoreSpec.limits("lanes"),
           "tree_levels_per_stage": TernaryCoreSpec.limits("tree_levels_per_stage"),
           "tensor_arrays": (0, 1 << 16),
           "sram_bits_per_cycle": (1, 1 << 24), "dram_channels": (1, 1024),
           "elementwise_per_cycle": (1, 1 << 20)}
_HW_FLOAT = {"sram_mib": (0, 1e6), "dram_capacity_gib": (0, 1e6)}
_HW_BOOL = ("tensor_sparse", "overlap", "dsp_pipeline")
_HW_Q = {"clock_mhz": (0.001, 1e5), "dram_gbps_per_channel": (0.001, 1e4),
         "dram_efficiency": (0.01, 1.0), "dram_pj_per_bit": (0, 1e4), "static_w": (0, 1e4),
         "e_add_pj": (0, 1e4), "e_mac_pj": (0, 1e4), "e_elementwise_pj": (0, 1e4),
         "e_sram_pj_per_bit": (0, 1e4)}


def _number(key: str, value: Any, lo: float, hi: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            integer and not isinstance(value, int)):
        raise ConfigError(f"{key}: expected {'an integer' if integer else 'a number'}, "
                          f"got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{key}: {value} is outside {lo}..{hi}")
    return value


def _q(key: str, value: Any, lo: float, hi: float) -> Q:
    if isinstance(value, dict):
        extra = set(value) - {"value", "source", "note"}
        if extra or "value" not in value:
            raise ConfigError(f"{key}: a tagged value is {{value = ..., source = "
                              f"\"measured|cited|assumed\", note = \"...\"}}; got {value!r}")
        src = value.get("source", "assumed")
        if src not in SOURCES:
            raise ConfigError(f"{key}.source must be one of {', '.join(SOURCES)}, got {src!r}")
        return Q(_number(key, value["value"], lo, hi), src, str(value.get("note", "from file")))
    return Q(_number(key, value, lo, hi), "assumed", "given in the configuration file")


def hardware_from_dict(d: dict, where: str = "hardware") -> HardwareConfig:
    """Build a hardware configuration; ``preset = "name"`` starts from a built-in one."""
    d = dict(d)
    base = preset(d.pop("preset"), f"{where}.preset") if "preset" in d else None
    if base is None and "clock_mhz" not in d:
        raise ConfigError(f"{where}: give clock_mhz (or start from a preset: "
                          f"{', '.join(PRESETS)})")
    kw: dict[str, Any] = {"name": str(d.pop("name", base.name if base else "custom"))}
    for key, value in d.items():
        full = f"{where}.{key}"
        if key in _HW_INT:
            kw[key] = int(_number(full, value, *_HW_INT[key], integer=True))
        elif key in _HW_FLOAT:
            kw[key] = float(_number(full, value, *_HW_FLOAT[key]))
        elif key in _HW_BOOL:
            if not isinstance(value, bool):
                raise ConfigError(f"{full}: expected true or false, got {value!r}")
            kw[key] = value
        elif key in _HW_Q:
            kw[key] = _q(full, value, *_HW_Q[key])
        elif key == "weight_bits":
            if value not in (2, 1.6):
                raise ConfigError(f"{full}: 2 (2-bit codes) or 1.6 (5 trits per byte), "
                                  f"got {value!r}")
            kw[key] = float(value)
        else:
            known = sorted([*_HW_INT, *_HW_FLOAT, *_HW_BOOL, *_HW_Q, "weight_bits", "name",
                            "preset"])
            raise ConfigError(f"{full}: unknown key; known keys: {', '.join(known)}")
    if base is not None:
        return replace(base, **kw)
    kw.setdefault("name", "custom")
    return HardwareConfig(**kw)


def model_from_value(value: Any, where: str = "model") -> ModelConfig:
    """A built-in name, or a table ``{kind, layers, d, inter?, vocab?, ternary_linear?}``."""
    if isinstance(value, str):
        return builtin_model(value)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: a built-in name or a table, got {value!r}")
    d = dict(value)
    kind = d.pop("kind", "mmfree")
    if kind not in ("mmfree", "transformer"):
        raise ConfigError(f"{where}.kind: mmfree or transformer, got {kind!r}")
    try:
        layers = int(_number(f"{where}.layers", d.pop("layers"), 1, 1000, integer=True))
        dim = int(_number(f"{where}.d", d.pop("d"), 4, 1 << 17, integer=True))
    except KeyError as e:
        raise ConfigError(f"{where}: missing key {e.args[0]}") from None
    inter = int(_number(f"{where}.inter", d.pop("inter", glu_size(dim)), 4, 1 << 19,
                        integer=True))
    vocab = int(_number(f"{where}.vocab", d.pop("vocab", 32000), 1, 1 << 22, integer=True))
    ternary = d.pop("ternary_linear", False)
    if not isinstance(ternary, bool):
        raise ConfigError(f"{where}.ternary_linear: expected true or false, got {ternary!r}")
    name = str(d.pop("name", f"custom-{kind}"))
    if d:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(d))}")
    return ModelConfig(name, kind, layers, dim, inter, vocab, ternary_linear=bool(ternary))


def workload_from_dict(d: dict, where: str = "workload") -> Workload:
    d = dict(d)
    kw = {k: int(_number(f"{where}.{k}", d.pop(k), *lim, integer=True))
          for k, lim in WORKLOAD_LIMITS.items() if k in d}
    if d:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(d))}")
    return Workload(**kw)


def load_toml(path: str | Path) -> tuple[ModelConfig | None, HardwareConfig | None,
                                          Workload | None]:
    """Read ``[model]`` (or ``model = "1.3B"``), ``[hardware]`` and ``[workload]``."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    extra = set(data) - {"model", "hardware", "workload"}
    if extra:
        raise ConfigError(f"{path}: unknown sections {', '.join(sorted(extra))}; "
                          "use model, hardware, workload")
    model = model_from_value(data["model"]) if "model" in data else None
    hw = hardware_from_dict(data["hardware"]) if "hardware" in data else None
    wl = workload_from_dict(data["workload"]) if "workload" in data else None
    return model, hw, wl
