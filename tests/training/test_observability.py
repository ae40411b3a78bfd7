"""Progress output (a bar on a terminal, plain periodic lines elsewhere) and the Weights & Biases logger."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest

from gaussrl.trainer.cli import main
from gaussrl.trainer.progress import Progress
from tests.training.run_helpers import TINY, cli_error, strict_json


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


def test_wandb_logs_offline_into_the_run_directory(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason='wandb is optional (pip install "gaussrl[wandb]")')
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_PROJECT": "gaussrl-test"}.items():
        monkeypatch.setenv(name, value)
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    run = tmp_path / "run"
    assert main(["train", "--timesteps", "512", "--out", str(run), "--wandb", *TINY]) == 0
    summary = strict_json((run / "summary.json").read_text())
    # The offline run file is W&B's own binary format; the logged key and its value's JSON text appear in it.
    (found,) = (run / "wandb").glob("offline-run-*/run-*.wandb")
    data = found.read_bytes()
    assert b"eval/return_mean" in data and json.dumps(summary["eval_return_mean"]).encode() in data
    assert b"update/policy_loss" in data and b"episode/return" in data


def test_wandb_missing_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    run = tmp_path / "run"
    message = cli_error(capsys, ["train", "--out", str(run), "--wandb", *TINY])
    assert message == (
        'gaussrl: error: --wandb needs the wandb package: pip install "gaussrl[wandb]" (set WANDB_MODE=offline to '
        "log without a network), or drop --wandb."
    )
    assert not run.exists()
