"""Progress on a non-terminal (a log, CI, a pipe): whole lines, no carriage returns."""

import io
import re
import time

from mmfree.flow.progress import Ticker


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_ticker_writes_plain_lines_to_a_log():
    log = io.StringIO()
    with Ticker("yosys synth_ecp5 (core)", True, stream=log):
        time.sleep(1.2)  # at least one tick
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "  yosys synth_ecp5 (core) ..." and len(lines) == 2
    assert re.fullmatch(r"  yosys synth_ecp5 \(core\) done in \d+ s", lines[1])


def test_ticker_updates_one_line_on_a_terminal_and_is_silent_when_disabled():
    tty = _Tty()
    with Ticker("nextpnr", True, stream=tty):
        time.sleep(1.2)
    assert "\r  nextpnr ... 00:0" in tty.getvalue()
    assert re.search(r"\r +\r  nextpnr done in \d+ s\n$", tty.getvalue())
    quiet = io.StringIO()
    with Ticker("nextpnr", False, stream=quiet):
        pass
    assert quiet.getvalue() == ""
