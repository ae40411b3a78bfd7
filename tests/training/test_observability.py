"""Progress output: a bar on a terminal, plain periodic lines elsewhere."""

from __future__ import annotations

import io
import re

from gaussrl.trainer.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_prints_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(1000, 200, stream=stream, interval_s=0.0)
    progress.set_postfix({"return": "-150.7"})
    progress.update(500)
    progress.set_postfix({"return": "-140.0", "eval": "-159.8"})
    progress.close()
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 2
    assert re.fullmatch(r"gaussrl: step 500/1000 \(50%\), \d+ steps/s, return=-150\.7", lines[0]), lines
    assert re.fullmatch(r"gaussrl: step 500/1000 \(50%\), \d+ steps/s, return=-140\.0, eval=-159\.8", lines[1])


def test_progress_waits_for_the_interval_and_can_be_off():
    stream = io.StringIO()
    progress = Progress(1000, 0, stream=stream, interval_s=3600.0)
    for steps in range(10, 1001, 10):
        progress.update(steps)
    progress.close()
    assert len(stream.getvalue().splitlines()) == 1  # only the last line
    quiet = io.StringIO()
    progress = Progress(1000, 0, enabled=False, stream=quiet, interval_s=0.0)
    progress.update(500)
    progress.close()
    assert quiet.getvalue() == ""


def test_progress_draws_a_bar_on_a_terminal():
    stream = _Terminal()
    progress = Progress(1000, 0, stream=stream, interval_s=0.0)
    progress.update(1000)
    progress.close()
    assert "\r" in stream.getvalue() and "1000/1000" in stream.getvalue()
    assert "gaussrl: step" not in stream.getvalue()
