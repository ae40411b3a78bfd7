"""The compiled gymnax trainer stopped early as the Gymnasium trainer is: signals, divergence, reruns, progress.

Each run is tiny (8 environments x 8 steps per update, 16-16 networks) and checkpoints every
512 steps; a compiled chunk is a divisor of the run's updates, at most a tenth of them and at most
one checkpoint interval (``compiled.chunk_updates``), and the stop is looked at between chunks.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from collections import Counter

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("gymnax", reason="the compiled path needs gymnax (pip install 'gaussrl[gymnax]')")

from gaussrl.io.checkpoint import load_checkpoint  # noqa: E402
from gaussrl.trainer import compiled  # noqa: E402
from gaussrl.trainer.cli import main  # noqa: E402
from tests.training.run_helpers import checkpoint_steps, records, spawn, strict_json  # noqa: E402

PER_UPDATE = 64  # --num-envs 8 x --ppo.rollouts 8
CHUNK = 512  # --checkpoint-interval: 8 updates per compiled chunk
TINY = ["--backend", "jax", "--env", "gymnax/Pendulum-v1", "--num-envs", "8", "--ppo.rollouts", "8"]
TINY += ["--ppo.learning-epochs", "2", "--ppo.mini-batches", "2", "--ppo.hidden-sizes", "16", "16"]
TINY += ["--eval-episodes", "2", "--eval-interval", "0", "--checkpoint-interval", str(CHUNK), "--no-tensorboard"]


def _argv(run, timesteps, *extra):
    return ["train", *TINY, "--no-progress", "--timesteps", str(timesteps), "--out", str(run), *extra]


def _cli_error(capsys, argv):
    """Run the CLI in process; assert exit status 2 and a last line ``gaussrl: error: ...`` (after the preset's)."""
    capsys.readouterr()
    status = main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and lines[-1].startswith("gaussrl: error: "), lines
    assert all(line.startswith("gaussrl: preset for") for line in lines[:-1]), lines
    return lines[-1]


def _check_updates(run, target):
    """Every update recorded once, on 64, 128, ..., target, and the records in step order."""
    after = records(run)
    updates = Counter(r["step"] for r in after if r["kind"] == "update")
    assert sorted(updates) == list(range(PER_UPDATE, target + 1, PER_UPDATE)), sorted(updates)
    assert set(updates.values()) == {1}, updates
    assert [r["step"] for r in after] == sorted(r["step"] for r in after)


def test_sigint_writes_a_checkpoint_then_resume_finishes(tmp_path, capsys):
    run = tmp_path / "run"
    process = spawn(_argv(run, CHUNK * 40_000), tmp_path)
    deadline = time.monotonic() + 300
    while not ((run / "checkpoints").is_dir() and checkpoint_steps(run)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run wrote no checkpoint in 300 s"
        time.sleep(0.05)
    delay = random.Random().uniform(0.0, 0.5)  # a random moment of the run
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole process group
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, (delay, err)
    last = err.strip().splitlines()[-1]
    match = re.fullmatch(
        rf"gaussrl: SIGINT after (\d+) steps: saved checkpoint step \1; continue with: "
        rf"gaussrl train --resume {re.escape(str(run))}",
        last,
    )
    assert match, (delay, err)
    step = int(match.group(1))
    assert step % CHUNK == 0 and step == checkpoint_steps(run)[-1]
    before = records(run)
    assert max(r["step"] for r in before) <= step and not (run / "summary.json").exists()
    target = step + 2 * CHUNK
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--timesteps", str(target)]) == 0
    assert f"resuming {run} from its checkpoint of step {step}" in capsys.readouterr().err
    assert [r for r in records(run) if r["step"] <= step] == before
    _check_updates(run, target)
    summary = strict_json((run / "summary.json").read_text())
    assert summary["timesteps"] == target and summary["resumed"] is True


def _poison(monkeypatch, on_call, where):
    """Make chunk call ``on_call`` (1-based) start from a carry with NaN at ``where(carry)`` (a leaf's path)."""
    make_chunk = compiled.ppo_compiled.make_chunk

    def patched(*args, **kwargs):
        chunk, calls = make_chunk(*args, **kwargs), []

        def poisoned(carry, evaluate):
            calls.append(1)
            if len(calls) == on_call:
                carry = where(carry)
            return chunk(carry, evaluate)

        return poisoned

    monkeypatch.setattr(compiled.ppo_compiled, "make_chunk", patched)


def _nan_policy_kernel(carry):
    params = jax.tree_util.tree_map(lambda x: x, carry.ppo.params)
    kernel = np.array(params["policy"]["params"]["Dense_0"]["kernel"])
    kernel[0, 0] = np.nan
    params["policy"]["params"]["Dense_0"]["kernel"] = kernel
    return carry._replace(ppo=carry.ppo._replace(params=params))


def test_nan_in_the_parameters_stops_with_a_divergence_error(tmp_path, capsys, monkeypatch):
    # 32 updates in chunks of 2 (128 steps): chunk 9 starts after the checkpoints of steps 512 and 1024.
    _poison(monkeypatch, 9, _nan_policy_kernel)
    run = tmp_path / "run"
    line = _cli_error(capsys, _argv(run, 4 * CHUNK))
    resume = re.escape(f"continue with `gaussrl train --resume {run}`")
    pattern = (
        rf"gaussrl: error: PPO's (\w+) became nan in the update after {2 * CHUNK + PER_UPDATE} steps "
        rf"\(learning diverged: try a lower learning rate or smaller rewards\); the run stopped and the agent's "
        rf"state is no longer finite, so nothing was saved; the newest checkpoint is step {2 * CHUNK}; {resume}\."
    )
    assert re.fullmatch(pattern, line), line
    assert checkpoint_steps(run) == [CHUNK, 2 * CHUNK] and not (run / "summary.json").exists()
    # The records before the diverged update were written; the run continues from its last finite checkpoint.
    assert max(r["step"] for r in records(run)) == 2 * CHUNK
    monkeypatch.undo()
    assert main(["train", "--resume", str(run)]) == 0
    _check_updates(run, 4 * CHUNK)


def test_nan_in_an_unused_state_leaf_is_caught_after_the_chunk(tmp_path, capsys, monkeypatch):
    # Without value normalisation the value statistics take no part in the losses: only the state check sees it.
    def nan_value_stats(carry):
        stats = carry.ppo.value_stats._replace(mean=np.full_like(np.asarray(carry.ppo.value_stats.mean), np.nan))
        return carry._replace(ppo=carry.ppo._replace(value_stats=stats))

    _poison(monkeypatch, 1, nan_value_stats)  # 16 updates in chunks of one
    run = tmp_path / "run"
    line = _cli_error(capsys, _argv(run, 2 * CHUNK, "--ppo.no-value-normalization"))
    assert line == (
        f"gaussrl: error: the agent's ppo.value_stats.mean holds NaN or infinity after {PER_UPDATE} steps; the run "
        f"stopped and the agent's state is no longer finite, so nothing was saved; no checkpoint exists; "
        f"continue with `gaussrl train --resume {run}`."
    )
    assert not (run / "checkpoints").is_dir() or not checkpoint_steps(run)


def test_resume_twice_equals_uninterrupted_and_a_rerun_refuses(tmp_path, capsys):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(_argv(whole, 3 * CHUNK)) == 0
    assert main(_argv(part, CHUNK)) == 0
    for target in (2 * CHUNK, 3 * CHUNK):
        capsys.readouterr()
        assert main(["train", "--resume", str(part), "--timesteps", str(target)]) == 0
        assert f"from its checkpoint of step {target - CHUNK}" in capsys.readouterr().err
    read = lambda run: [r for r in records(run) if r["kind"] != "eval"]  # noqa: E731 (evals differ: see below)
    assert read(part) == read(whole)
    want = json.loads((whole / "summary.json").read_text())
    got = json.loads((part / "summary.json").read_text())
    assert got["eval_return_mean"] == want["eval_return_mean"] and got["timesteps"] == 3 * CHUNK
    want_state, _ = load_checkpoint(whole / "checkpoints")
    got_state, _ = load_checkpoint(part / "checkpoints")
    assert want_state["carry"].keys() == got_state["carry"].keys() and got_state["steps"] == 3 * CHUNK
    for name, tensor in want_state["carry"].items():
        np.testing.assert_array_equal(got_state["carry"][name].numpy(), tensor.numpy(), err_msg=name)
    # The same command again refuses the directory, which it leaves as it was.
    files = sorted(p.name for p in (whole / "checkpoints").iterdir())
    line = _cli_error(capsys, _argv(whole, 3 * CHUNK))
    assert line.startswith(f"gaussrl: error: {whole} already holds a run") and f"--resume {whole}" in line
    assert sorted(p.name for p in (whole / "checkpoints").iterdir()) == files
    assert json.loads((whole / "summary.json").read_text()) == want


def test_progress_prints_plain_lines_when_stderr_is_not_a_terminal(tmp_path, capsys):
    argv = [a for a in _argv(tmp_path / "run", CHUNK) if a != "--no-progress"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "\r" not in err  # no bar redrawn in a log file
    lines = [line for line in err.splitlines() if line.startswith("gaussrl: step")]
    # One line every 10 s (the first chunk compiles for a while on a loaded machine) and a last one at the end.
    pattern = r"gaussrl: step \d+/512 \(\d+%\), \d+ steps/s(, return=-(, eval=-?\d+\.\d)?)?"
    assert lines and all(re.fullmatch(pattern, x) for x in lines)
    # The run's one chunk ends with the evaluation, which the last line shows.
    last = rf"gaussrl: step {CHUNK}/{CHUNK} \(100%\), \d+ steps/s, return=-, eval=-\d+\.\d"
    assert re.fullmatch(last, lines[-1]), lines
