"""``verilator --lint-only -Wall`` over generated Verilog, with justified waivers only.

Each waiver names one warning class and a rule that a warning must satisfy to be waived;
the justifications are in ``docs/lint.md``. Anything else is reported as a finding.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import toolchain

__all__ = ["WAIVERS", "LintResult", "Warning_", "lint"]

_WARNING = re.compile(r"^%Warning-(\w+): [^:]+:(\d+):\d+: (.*)$")
_NAME = re.compile(r"'([^']+)'")


@dataclass(frozen=True)
class Warning_:
    """One Verilator warning."""

    kind: str
    line: int
    message: str

    @property
    def signal(self) -> str:
        m = _NAME.search(self.message)
        return m[1] if m else ""


def _module_lines(lines: list[str], line_no: int) -> list[str]:
    """The lines of the Verilog module that contains 1-based line ``line_no``."""
    start = max(i for i in range(line_no) if lines[i].lstrip().startswith("module "))
    end = next(i for i in range(line_no - 1, len(lines)) if lines[i].strip() == "endmodule")
    return lines[start:end + 1]


def _is_pure_alias(w: Warning_, lines: list[str]) -> bool:
    """True if the unused signal is a debug alias: within its module it is declared, assigned
    exactly once by ``assign``, and appears nowhere else (so nothing reads it)."""
    name = w.signal
    if not w.message.startswith("Signal is not used") or not name:
        return False
    token = re.escape(name) + r"\b" if re.fullmatch(r"[A-Za-z_]\w*", name) \
        else re.escape("\\" + name + " ")
    pattern = re.compile(r"(?<![\w$\\.])" + token)
    uses = [ln.strip() for ln in _module_lines(lines, w.line) if pattern.search(ln)]
    decls = [u for u in uses if re.match(r"(wire|reg)\b", u)]
    assigns = [u for u in uses if pattern.match(u.removeprefix("assign ")) and
               u.startswith("assign ")]
    if len(assigns) != 1 or len(decls) + len(assigns) != len(uses):
        return False
    # An alias copies: its right-hand side is a reference (with bit selects or a
    # concatenation of references), never a computation.
    rhs = assigns[0].split("=", 1)[1]
    return not re.search(r"[-+*/%&|^~!?<>]", re.sub(r"\[[\d:]+\]", "", rhs))


def _is_dropped_carry(w: Warning_, lines: list[str]) -> bool:
    """True for unused bits of an internal ``$N`` arithmetic net: the design drops them by its
    documented arithmetic (the carry of a wrapping add, the carry of a trial subtraction,
    product bits below a rounding position; docs/lint.md)."""
    return bool(re.fullmatch(r"\$\d+", w.signal)) and w.message.startswith(
        "Bits of signal are not used")


#: class -> (rule(warning, verilog lines), one-line justification; docs/lint.md has more)
WAIVERS = {
    "DECLFILENAME": (lambda w, lines: True,
                     "one file holds the top module and its submodules (top.sub)"),
    "PROCASSINIT": (lambda w, lines: True,
                    "Yosys writes each register's power-up value as a declaration initialiser; "
                    "it equals the reset value and is what FPGA bitstreams load"),
    "UNUSEDSIGNAL": (lambda w, lines: _is_pure_alias(w, lines) or _is_dropped_carry(w, lines),
                     "Amaranth's debug alias wires (declared, assigned once, never read) and "
                     "bits of arithmetic nets dropped by the documented arithmetic (wrapping "
                     "carries, trial-subtraction carries, product bits below rounding)"),
}


@dataclass
class LintResult:
    """Warnings of one lint run, split into waived and findings."""

    waived: list[Warning_]
    findings: list[Warning_]
    errors: str

    @property
    def ok(self) -> bool:
        return not self.findings and not self.errors

    def summary(self) -> str:
        counts = Counter(w.kind for w in self.waived)
        parts = [f"{n} {k} (waived)" for k, n in sorted(counts.items())]
        parts += [f"{w.kind} line {w.line}: {w.message}" for w in self.findings]
        if self.errors:
            parts.append(self.errors)
        return "; ".join(parts) if parts else "no warnings"


def lint(verilog: str, top: str) -> LintResult:
    """Lint ``verilog`` (top module ``top``) with ``verilator --lint-only -Wall``."""
    sim = toolchain.find("verilator")
    env = {**os.environ, **sim.env}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{top}.v"
        path.write_text(verilog)
        proc = subprocess.run(
            ["verilator", "--lint-only", "-Wall", "-Wno-fatal", "--top-module", top, str(path)],
            capture_output=True, text=True, env=env, check=False)
    waived, findings = [], []
    lines = verilog.splitlines()
    unparsed = []
    for line in proc.stderr.splitlines():
        m = _WARNING.match(line)
        if not m:
            if line.startswith("%Warning"):
                unparsed.append(line)  # a warning this parser does not understand: a finding
            continue
        w = Warning_(m[1], int(m[2]), m[3])
        rule = WAIVERS.get(w.kind)
        (waived if rule and rule[0](w, lines) else findings).append(w)
    errors = [x for x in proc.stderr.splitlines() if x.startswith("%Error")] + unparsed
    if proc.returncode != 0 and not errors:
        errors.append(f"verilator exited with {proc.returncode}: {proc.stderr[-500:]}")
    return LintResult(waived, findings, "\n".join(errors))
