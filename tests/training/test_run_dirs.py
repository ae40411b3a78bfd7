"""Run directories: a new run never writes into another run's files; keep-newest follows the run's history.

Each test does the misuse, then checks what the user sees (one line) and what is on disk.
"""

from __future__ import annotations

import os
import stat

import pytest
import torch

from gaussrl.io.atomic import write_text_atomic
from gaussrl.io.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from gaussrl.trainer.cli import main
from tests.training.run_helpers import TINY, checkpoint_steps, cli_error, strict_json


def _snapshot(run):
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_second_run_into_the_same_directory_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--timesteps", "256", "--checkpoint-interval", "128", "--out", str(run), *TINY]
    assert main(argv) == 0
    before = _snapshot(run)
    message = cli_error(capsys, argv)
    assert message == (
        f"gaussrl: error: {run} already holds a run (config.json, metrics.jsonl, summary.json, checkpoints); "
        f"continue it with --resume {run}, start over in it with --force (deletes those files), or pass another --out."
    )
    assert _snapshot(run) == before


def test_default_run_directory_is_refused_too(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--timesteps", "128", *TINY]
    assert main(argv) == 0
    capsys.readouterr()
    message = cli_error(capsys, [*argv, "--seed", "0"])
    assert "runs/ppo-Pendulum-v1-seed0 already holds a run" in message and "--force" in message


def test_force_starts_over_and_eval_reports_the_new_model(tmp_path, capsys):
    run = tmp_path / "run"
    # The old run's checkpoints (256, 384, 512) have higher steps than the new run's: they used to win.
    assert main(["train", "--timesteps", "512", "--checkpoint-interval", "128", "--out", str(run), *TINY]) == 0
    (run / "notes.txt").write_text("mine")
    argv = ["train", "--timesteps", "256", "--checkpoint-interval", "128", "--out", str(run), "--force", *TINY]
    assert main(argv) == 0
    assert checkpoint_steps(run) == [128, 256]
    assert (run / "notes.txt").read_text() == "mine"  # --force deletes only gaussrl's files
    summary = strict_json((run / "summary.json").read_text())
    assert summary["timesteps"] == 256
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert f"of the checkpoint of step 256: {summary['eval_return_mean']:.2f}" in out


def test_a_run_that_failed_before_training_does_not_block_the_next(tmp_path, capsys):
    run = tmp_path / "run"
    assert "cannot make environment" in cli_error(capsys, ["train", "--env", "NoSuchEnv-v9", "--out", str(run), *TINY])
    assert main(["train", "--timesteps", "128", "--out", str(run), *TINY]) == 0


def test_run_directory_that_is_a_file_or_cannot_be_created(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    message = cli_error(capsys, ["train", "--out", str(afile), *TINY])
    assert message == f"gaussrl: error: the run directory {afile} is a file; pass --out naming a directory."
    message = cli_error(capsys, ["train", "--out", str(afile / "run"), *TINY])
    assert message.startswith(f"gaussrl: error: cannot write to {afile / 'run'} (")
    assert message.endswith("make it writable or pass another --out.")
    assert afile.read_text() == "x"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only directories")
def test_unwritable_run_directory_is_reported_before_training(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        message = cli_error(capsys, ["train", "--out", str(run), *TINY])
    finally:
        run.chmod(stat.S_IRWXU)
    assert message.startswith(f"gaussrl: error: cannot write to {run} (")
    assert list(run.iterdir()) == []


def test_keep_newest_follows_the_order_of_writing(tmp_path):
    # A run resumed from step 100 writes steps 100..200 again after an old 300..500: those are older now.
    for step in (300, 400, 500):
        save_checkpoint(tmp_path, step, {"w": torch.full((2,), float(step))}, {}, keep=3)
    save_checkpoint(tmp_path, 100, {"w": torch.full((2,), 100.0)}, {}, keep=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step_000000000400.json",
        "step_000000000500.json",
        "step_000000000100.json",
    ]
    save_checkpoint(tmp_path, 200, {"w": torch.full((2,), 200.0)}, {}, keep=3)
    assert latest_checkpoint(tmp_path).name == "step_000000000200.json"
    state, _ = load_checkpoint(tmp_path)
    torch.testing.assert_close(state["w"], torch.full((2,), 200.0))
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == [
        "step_000000000100.safetensors",
        "step_000000000200.safetensors",
        "step_000000000500.safetensors",
    ]


def test_the_checkpoint_just_written_is_never_deleted(tmp_path):
    save_checkpoint(tmp_path, 5, {"w": torch.ones(1)}, {}, keep=1)
    save_checkpoint(tmp_path, 3, {"w": torch.zeros(1)}, {}, keep=1)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000000003.json"]
    torch.testing.assert_close(load_checkpoint(tmp_path)[0]["w"], torch.zeros(1))


def test_checkpoint_json_is_strict_and_keeps_non_finite_floats(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"x": float("nan"), "y": float("-inf"), "z": 1.5}, {})
    strict_json(path.read_text())
    state, _ = load_checkpoint(tmp_path)
    assert state["x"] != state["x"] and state["y"] == float("-inf") and state["z"] == 1.5


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_writes_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "a.json", "{}")
        save_checkpoint(tmp_path / "c", 1, {"w": torch.ones(1)}, {})
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    for path in (tmp_path / "a.json", *(tmp_path / "c").iterdir()):
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
