"""SIGTERM, SIGINT and kill -9 at a random moment of a short run, then --resume.

The resumed run must start from the newest checkpoint (the signal's own checkpoint for SIGTERM
and SIGINT), keep the metrics records up to it exactly as they were, and never record an update
twice: PPO updates every 128 steps here, so the update records must sit on 128, 256, ... once each.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections import Counter

import pytest

from gaussrl.trainer.cli import main
from tests.training.run_helpers import TINY, checkpoint_steps, records, spawn, strict_json

PER_UPDATE = 128  # --ppo.rollouts 64 x --num-envs 2
BACKENDS = ["torch", "jax", "warp"]


def _start(tmp_path, interval, *options):
    run = tmp_path / "run"
    argv = ["train", "--timesteps", "1000000", "--checkpoint-interval", str(interval), "--out", str(run), *TINY]
    argv += options
    process = spawn(argv, tmp_path)
    deadline = time.monotonic() + 120
    while not checkpoint_steps(run) if (run / "checkpoints").is_dir() else True:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run wrote no checkpoint in 120 s"
        time.sleep(0.05)
    delay = random.Random().uniform(0.0, 1.0)  # a random moment of the run
    time.sleep(delay)
    return process, run, delay


def _resume_and_check(capsys, run, step, before, *, in_process=True):
    target = step + 3 * PER_UPDATE
    argv = ["train", "--resume", str(run), "--timesteps", str(target)]
    if in_process:
        assert main(argv) == 0
        err = capsys.readouterr().err
    else:  # an async run forks its environment workers: not from this (possibly multithreaded) process
        process = spawn(argv, run.parent)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert f"resuming {run} from its checkpoint of step {step}" in err
    after = records(run)
    assert [r for r in after if r["step"] <= step] == [r for r in before if r["step"] <= step]
    updates = Counter(r["step"] for r in after if r["kind"] == "update")
    assert sorted(updates) == list(range(PER_UPDATE, target + 1, PER_UPDATE)), sorted(updates)
    assert set(updates.values()) == {1}, updates
    steps = [r["step"] for r in after]
    assert steps == sorted(steps)  # a duplicated stretch would step backwards
    summary = strict_json((run / "summary.json").read_text())
    assert summary["timesteps"] == target and summary["resumed"] is True


def _check_interrupted(err, run, name, delay):
    last = err.strip().splitlines()[-1]
    match = re.fullmatch(
        rf"gaussrl: {name} after (\d+) steps: saved checkpoint step \1; continue with: "
        rf"gaussrl train --resume {re.escape(str(run))}",
        last,
    )
    assert match, (delay, err)
    step = int(match.group(1))
    assert step == checkpoint_steps(run)[-1]
    before = records(run)
    assert max(r["step"] for r in before) <= step
    assert not (run / "summary.json").exists()
    return step, before


def test_sigterm_writes_a_checkpoint_and_says_how_to_resume(tmp_path, capsys):
    # Signalled as a terminal or a service manager does: the whole process group, environment workers included.
    process, run, delay = _start(tmp_path, 512, "--vectorization", "async")
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, (delay, err)
    step, before = _check_interrupted(err, run, "SIGTERM", delay)
    _resume_and_check(capsys, run, step, before, in_process=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigint_in_process_returns_130_after_a_checkpoint(tmp_path, capsys, backend):
    run = tmp_path / "run"
    delay = random.Random().uniform(0.0, 0.5)  # a random moment after the first checkpoint

    def interrupt():
        while not (run / "checkpoints").is_dir() or not checkpoint_steps(run):
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt, daemon=True)
    timer.start()
    argv = ["train", "--backend", backend, "--timesteps", "1000000", "--checkpoint-interval", "512"]
    argv += ["--out", str(run), *TINY]
    assert main(argv) == 130
    timer.join()
    step, before = _check_interrupted(capsys.readouterr().err, run, "SIGINT", delay)
    _resume_and_check(capsys, run, step, before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_loses_only_the_steps_since_the_last_checkpoint(tmp_path, capsys, backend):
    process, run, delay = _start(tmp_path, 512, "--backend", backend)
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, delay
    step = checkpoint_steps(run)[-1]
    _resume_and_check(capsys, run, step, records(run))
