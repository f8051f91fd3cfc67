#!/usr/bin/env python3
"""FuseSoC generator: writes a unit's Verilog with ``mmfree generate`` and describes it as a
core, so that Vivado, Quartus or open flows pull the unit in through edalize.

FuseSoC calls it with the path of a GAPI 1.0 YAML file holding ``parameters`` (``unit`` and
the unit's options, as on the ``mmfree generate`` command line), ``vlnv`` and
``files_root``; it runs in the folder where the generated core must appear.

FuseSoC starts it with whatever ``python3`` is first on PATH. If that Python has no mmfree,
the generator runs itself again with ``$MMFREE_PYTHON`` or the project's ``.venv/bin/python``
(beside this folder, where ``./bootstrap`` puts it), so a plain shell needs no activated
venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _python_with_mmfree() -> None:
    """Re-run this script with a Python that has mmfree, unless this one has it."""
    try:
        import yaml  # noqa: F401

        import mmfree.cli  # noqa: F401
        return
    except ImportError:
        pass
    candidates = [os.environ.get("MMFREE_PYTHON"),
                  str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python")]
    for python in filter(None, candidates):
        if Path(python).exists() and Path(python) != Path(sys.executable):
            os.execv(python, [python, __file__, *sys.argv[1:]])
    print(f"mmfree_gen: {sys.executable} has no mmfree, and neither $MMFREE_PYTHON nor "
          f"{candidates[1]} exists: run ./bootstrap, or set MMFREE_PYTHON", file=sys.stderr)
    sys.exit(1)




def main(gapi_path: str) -> int:
    import yaml
    gapi = yaml.safe_load(Path(gapi_path).read_text())
    params = dict(gapi.get("parameters") or {})
    unit = params.pop("unit", None)
    if unit is None:
        print("mmfree_gen: parameters must name a unit (ternary-core, tensor-core, ...)",
              file=sys.stderr)
        return 1
    name = params.pop("name", None)
    argv = [sys.executable, "-m", "mmfree.cli", "generate", unit, "-o", "."]
    if name:
        argv += ["--name", str(name)]
    for key, value in params.items():
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not False:
            argv += [flag, str(value)]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"mmfree_gen: {out.stderr.strip()}", file=sys.stderr)
        return out.returncode
    verilog = next(Path(p) for p in out.stdout.split() if p.endswith(".v"))
    vlnv = gapi["vlnv"]
    core = {
        "name": vlnv,
        "filesets": {"rtl": {"files": [verilog.name], "file_type": "verilogSource"}},
        "targets": {"default": {"filesets": ["rtl"], "toplevel": verilog.stem}},
    }
    Path(vlnv.split(":")[2] + ".core").write_text("CAPI=2:\n" + yaml.safe_dump(core))
    return 0


if __name__ == "__main__":
    _python_with_mmfree()
    sys.exit(main(sys.argv[1]))
