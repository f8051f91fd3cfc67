"""FPGA devices, their families' energy coefficients, and DRAM technologies.

Everything here is a tagged :class:`~mmfree.model.config.Q`: ``cited`` (the document and the
table are named), ``derived`` (a formula over cited figures; the note gives it) or
``assumed`` (with the reason). Presets name a device and a DRAM technology
(:mod:`mmfree.model.config`); the projection takes the static power, the energy per toggle
and the resources of the fit check from the device, and the energy per bit from the DRAM
technology. ``docs/cycle-model.md`` §5 lists the figures and their sources.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Q

__all__ = [
    "DEVICES",
    "DRAM_TECHS",
    "FAMILIES",
    "LADDER",
    "LC_PER_LUT6",
    "Device",
    "DramTech",
    "Family",
    "dram_for_bandwidth",
]

# --- family energy coefficients ---------------------------------------------------------------
#
# One vendor estimate anchors the dynamic energy: Intel, "Designing for Stratix 10 Devices with
# Power in Mind" (ID 683058, 2016), section 1.2, power estimates from the Early Power Estimator
# for an SG280 (F43, Tj 100 C):
#   Table 1 (core logic): 800K half-ALMs, 312 MHz average weighted clock -> 18 W dynamic;
#   Table 2 (M20K): 4600 blocks, 500 MHz, 40 % toggle, 70 % enable, 5 bits wide -> 3.7 W;
#   Table 3 (DSP): 2300 blocks, 500 MHz, 15 % toggle -> 5 W.
# Table 1 gives no toggle rate; Intel's estimators use 12.5 % as their standard logic toggle rate
# (EPE user guides: "100 MHz with a 12.5% toggle means that each LUT or flipflop output toggles
# 12.5 million times per second"), which is assumed here.

_S10_DOC = "Intel 683058 'Designing for Stratix 10 Devices with Power in Mind', s.1.2"
#: half-ALM -> LUT4-equivalents: Intel counts 2,753,000 LEs for the 933,120 ALMs of an SX 2800
_LE_PER_HALF_ALM = 2_753_000 / (2 * 933_120)
_S10_TOGGLE_PJ = 18.0 / (800e3 * 312e6 * 0.125) * 1e12 / _LE_PER_HALF_ALM
_S10_DSP_PJ = 5.0 / (2300 * 2 * 500e6) * 1e12 / 0.15  # per multiplier-cycle per unit toggle
_S10_BRAM_PJ_BIT = 3.7 / (4600 * 500e6 * 0.7 * 5) * 1e12


@dataclass(frozen=True)
class Family:
    """Dynamic energy of one FPGA family."""

    name: str
    process: str
    e_toggle_pj: Q  #: one LUT4-equivalent (with its flip-flop and local routing) toggling
    e_dsp_pj: Q  #: one multiplier-cycle of a DSP block per unit toggle probability
    e_bram_pj_per_bit: Q  #: one bit read from block RAM


def _scaled(name: str, process: str, node_nm: float, vcore: float) -> Family:
    """A family whose energies are the Stratix 10 anchor scaled by feature size and V^2."""
    k = node_nm / 14 * (vcore / 0.9) ** 2
    why = (f"{_S10_DOC} Stratix 10 figure x {k:.2f} = ({node_nm:g} nm / 14 nm) x "
           f"({vcore:g} V / 0.9 V)^2 (assumed scaling: switched capacitance with feature size, "
           "energy with V^2; uncertain by about 2x either way)")
    return Family(name, process,
                  Q(_S10_TOGGLE_PJ * k, "derived", why),
                  Q(_S10_DSP_PJ * k, "derived", why),
                  Q(_S10_BRAM_PJ_BIT * k, "derived", why))


FAMILIES: dict[str, Family] = {
    "stratix10": Family(
        "stratix10", "Intel 14 nm, VCC 0.9 V",
        Q(_S10_TOGGLE_PJ, "derived",
          f"{_S10_DOC} Table 1: 18 W / (800K half-ALMs x 312 MHz x 12.5 % toggle (assumed: "
          f"Intel's standard rate; the table states none)) / {_LE_PER_HALF_ALM:.3f} LE per "
          "half-ALM (2,753,000 LE / 933,120 ALM of the SX 2800)"),
        Q(_S10_DSP_PJ, "derived",
          f"{_S10_DOC} Table 3: 5 W / (2300 blocks x 2 multipliers x 500 MHz) at 15 % toggle"),
        Q(_S10_BRAM_PJ_BIT, "derived",
          f"{_S10_DOC} Table 2: 3.7 W / (4600 M20K x 500 MHz x 70 % enable x 5 bits)")),
    "ultrascale+": _scaled("ultrascale+", "TSMC 16 nm FinFET, VCCINT 0.85 V", 16, 0.85),
    "artix7": _scaled("artix7", "TSMC 28 nm HPL, VCCINT 1.0 V", 28, 1.0),
    "ecp5": _scaled("ecp5", "Samsung 40 nm, VCC 1.1 V", 40, 1.1),
}


# --- devices ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Device:
    """One FPGA: resources for the fit check and its static power."""

    name: str
    family: str
    part: str
    luts: Q  #: LUT4-equivalents (logic elements)
    ffs: Q
    multipliers: Q  #: 18x18-class hard multipliers (a DSP block may hold two)
    bram_bits: Q  #: block RAM (and UltraRAM) bits
    static_w: Q  #: device static power (leakage and always-on circuits) at typical conditions

    @property
    def fam(self) -> Family:
        return FAMILIES[self.family]


_K26_DOC = ("AMD Kria KV260 NLP-SmartVision tutorial, 'Hardware Architecture of the "
            "Accelerator', resource table: K26 117120 LUTs, 144 BRAM, 1248 DSP, 64 URAM")
#: LUT6 -> LUT4-equivalents: AMD's own logic-cell count per LUT in the 7 series (33,280 logic
#: cells for the 20,800 LUTs of an XC7A35T)
LC_PER_LUT6 = 33_280 / 20_800
_UNVERIFIED = "vendor product table, transcribed, not re-checked against the data sheet here"

DEVICES: dict[str, Device] = {
    "1sx280": Device(
        "1sx280", "stratix10", "Stratix 10 SX 2800 (1SX280HN2F43E2VG), Intel FPGA PAC D5005",
        Q(2_753_000, "assumed", f"2,753,000 logic elements ({_UNVERIFIED})"),
        Q(3_732_480, "assumed", f"3,732,480 registers ({_UNVERIFIED})"),
        Q(11_520, "assumed", f"5,760 DSP blocks x 2 18x19 multipliers ({_UNVERIFIED})"),
        Q(11_721 * 20_480, "assumed", f"11,721 M20K blocks ({_UNVERIFIED})"),
        Q(8.0, "assumed",
          "no static figure for this part at typical conditions was found; Intel AN 943 "
          "(s.6.4) gives 38 W total static for its Stratix 10 example at maximum Tj 90 C and "
          "worst-case silicon, and leakage falls steeply with temperature: 8 W assumed for "
          "typical silicon at Tj ~55 C in a cooled card (range 4-38 W)")),
    "xck26": Device(
        "xck26", "ultrascale+", "Zynq UltraScale+ XCK26 (Kria K26 SOM, KV260)",
        Q(117_120 * LC_PER_LUT6, "derived",
          f"{_K26_DOC}; x {LC_PER_LUT6:g} LUT4-equivalents per LUT6 (AMD 7-series logic-cell "
          "ratio, assumed for UltraScale+)"),
        Q(234_240, "derived", f"{_K26_DOC}; 2 flip-flops per LUT (UltraScale+ CLB)"),
        Q(1_248, "cited", _K26_DOC),
        Q(144 * 36_864 + 64 * 294_912, "cited",
          f"{_K26_DOC}: 144 x 36 Kb block RAM + 64 x 288 Kb UltraRAM"),
        Q(1.0, "assumed",
          "no figure found; ZU5EV-class programmable logic plus the processing system's "
          "static at typical conditions, range 0.5-2 W (AMD's tutorial estimates 7.9 W for "
          "the whole K26 with a 3136-MAC DPU running)")),
    "xc7a35t": Device(
        "xc7a35t", "artix7", "Artix-7 XC7A35T (Digilent Arty A7-35T)",
        Q(33_280, "assumed", f"33,280 logic cells ({_UNVERIFIED}: AMD DS180)"),
        Q(41_600, "assumed", f"41,600 flip-flops ({_UNVERIFIED}: AMD DS180)"),
        Q(90, "assumed", f"90 DSP48E1 slices ({_UNVERIFIED}: AMD DS180)"),
        Q(50 * 36_864, "assumed", f"50 x 36 Kb block RAM ({_UNVERIFIED}: AMD DS180)"),
        Q(0.07, "assumed",
          "no figure found; small 28 nm HPL device at typical conditions and room "
          "temperature, range 0.05-0.15 W")),
    "lfe5u-85f": Device(
        "lfe5u-85f", "ecp5", "Lattice ECP5 LFE5U-85F (ULX3S-85F)",
        Q(83_640, "measured", "nextpnr-ecp5 --85k device capacity, TRELLIS_COMB "
          "(docs/fpga-flow.md, mmfree synth)"),
        Q(83_640, "measured", "nextpnr-ecp5 --85k, TRELLIS_FF"),
        Q(156, "measured", "nextpnr-ecp5 --85k, MULT18X18D (docs/tensor-core.md)"),
        Q(208 * 18_432, "assumed", f"208 x 18 Kb EBR ({_UNVERIFIED}: Lattice DS1044)"),
        Q(0.15, "assumed",
          "no figure found (the ECP5 data sheet's static-current table was not reachable "
          "here); 40 nm low-power process, range 0.08-0.4 W")),
    "xcu280": Device(
        "xcu280", "ultrascale+", "Virtex UltraScale+ XCU280 (AMD Alveo U280)",
        Q(1_304_000 * LC_PER_LUT6, "assumed",
          f"1,304K LUTs ({_UNVERIFIED}: AMD DS963) x {LC_PER_LUT6:g}"),
        Q(2_607_000, "assumed", f"2,607K registers ({_UNVERIFIED}: AMD DS963)"),
        Q(9_024, "assumed", f"9,024 DSP slices ({_UNVERIFIED}: AMD DS963)"),
        Q(2_016 * 36_864 + 960 * 294_912, "assumed",
          f"2,016 x 36 Kb BRAM + 960 x 288 Kb URAM ({_UNVERIFIED}: AMD DS963)"),
        Q(12.0, "assumed",
          "no figure found; large 16 nm device at typical conditions in a cooled card, range "
          "6-30 W")),
}


# --- DRAM technologies ---------------------------------------------------------------------------

_ACCELERGY = ("Accelergy CACTI plug-in DRAM table (hwcomponents-cacti, DRAM.type2energy; "
              "HBM2 3.9 pJ/bit as in O'Connor et al., MICRO 2017)")
_MICRON_DDR4 = ("Micron MTA4ATF51264AZ 4 GB DDR4 UDIMM data sheet, Table 13 (4 x MT40A512M16 "
                "x16, DDR4-2400): IDD4R 972 mA, IDD3N 188 mA, IPP3N 12 mA, VDD 1.2 V, VPP 2.5 V")
_MICRON_DDR3 = ("Micron 2 Gb DDR3 x8 -125E (DDR3-1600) IDD4R 180 mA, IDD3N 45 mA at 1.5 V, "
                "as used by Micron's DDR3 power calculator (transcribed in "
                "gaomy3832/energydram's tests)")


@dataclass(frozen=True)
class DramTech:
    """A DRAM technology: energy per bit moved, and its bandwidth ladder for sweeps."""

    name: str
    pj_per_bit: Q
    max_gbps: float  #: most a board of this technology delivers (peak), for the sweep ladder
    ladder_note: str
    #: idle (active-standby) power per GB/s of peak bandwidth, for sweeps that vary it
    background_mw_per_gbps: Q


DRAM_TECHS: dict[str, DramTech] = {
    "DDR3": DramTech(
        "DDR3",
        Q(15.8 + 3.8, "derived",
          f"device (IDD4R - IDD3N) x VDD / (1600 MT/s x 8 bit) = 15.8 pJ/bit from {_MICRON_DDR3}"
          "; + I/O 3.8 pJ/bit: SSTL15, 34 ohm driver into 60 ohm ODT to VDDQ/2 (assumed "
          "settings), I^2 R per bit time. The Accelergy table's 70 pJ/bit (Malladi et al.) "
          "includes background power at server utilisation and is the range's upper end"),
        51.2, "4 x 64-bit DDR3-1600 channels",
        Q(68 / 1.6, "derived", f"IDD3N 45 mA x 1.5 V = 68 mW per x8 chip at 1.6 GB/s, "
                               f"{_MICRON_DDR3}")),
    "DDR4": DramTech(
        "DDR4",
        Q(6.1 + 3.7, "derived",
          f"device (972 - 188) mA x 1.2 V / (2400 MT/s x 64 bit) = 6.1 pJ/bit from {_MICRON_DDR4}"
          "; + I/O 3.7 pJ/bit: POD12, 34 ohm driver and 48 ohm ODT, current only on zeros, 50 % "
          "zeros (assumed settings)"),
        102.4, "4 x 64-bit DDR4-3200 channels",
        Q((188 * 1.2 + 12 * 2.5) / 19.2, "derived",
          f"(IDD3N x VDD + IPP3N x VPP) per 19.2 GB/s channel, {_MICRON_DDR4}")),
    "LPDDR4": DramTech("LPDDR4", Q(8.0, "cited", f"{_ACCELERGY}: LPDDR4 8 pJ/bit"),
                       4 * 17.1, "4 x 32-bit LPDDR4-4266 channels",
                       Q(5.0, "assumed", "no figure found; below DDR4's 13 mW per GB/s "
                                         "(unterminated I/O, low-power standby)")),
    "HBM2": DramTech("HBM2", Q(3.9, "cited", f"{_ACCELERGY}: HBM2 3.9 pJ/bit"),
                     2 * 256.0, "2 stacks x 1024 bit x 2.0 Gb/s",
                     Q(2000 / 460, "assumed", "no figure found; 2 W for two stacks of 460 "
                                              "GB/s (the hbm-fpga preset's assumption)")),
    "HBM2e": DramTech(
        "HBM2e", Q(3.9, "assumed", "no HBM2e figure found; HBM2's 3.9 pJ/bit (same 1.2 V I/O "
                                   "over the interposer, faster pins)"),
        2 * 460.0, "2 stacks x 1024 bit x 3.6 Gb/s",
        Q(2000 / 460, "assumed", "no figure found; HBM2's assumed rate")),
    "SDR": DramTech(
        "SDR", Q(30.0, "assumed",
                 "no figure found; 3.3 V unterminated LVCMOS I/O (C V^2 / 2 with ~5 pF per pin "
                 "at 50 % toggles ~ 14 pJ/bit) plus a DDR3-like core energy"),
        0.4, "one 16-bit SDR SDRAM at 200 MHz",
        Q(130 / 0.4, "assumed", "one 3.3 V SDRAM's standby (~40 mA) per 0.4 GB/s; not "
                                "measured")),
}

#: technologies a bandwidth sweep climbs through, by the bandwidth a board can deliver
LADDER = ("DDR3", "DDR4", "HBM2", "HBM2e")


def dram_for_bandwidth(gbps: float, base: str) -> str:
    """The DRAM technology of a design with ``gbps`` peak bandwidth on a board of technology
    ``base``: the board's own when it reaches that far, else the first technology of
    :data:`LADDER` that does (HBM2e beyond)."""
    if gbps <= DRAM_TECHS[base].max_gbps * (1 + 1e-9):
        return base
    for name in LADDER:
        if gbps <= DRAM_TECHS[name].max_gbps * (1 + 1e-9):
            return name
    return LADDER[-1]
