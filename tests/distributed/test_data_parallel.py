"""Data-parallel PPO and SAC on 2 gloo ranks (CPU): gradients, identical parameters, resume, a killed rank.

Each module-scoped fixture starts the 2 ranks once (``python -m torch.distributed.run``, the
engine of torchrun) with ``worker.py``; the tests compare what the ranks wrote. The oracle of
the averaged gradient is a one-process agent updated on the union of both ranks' data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch

from gaussrl.trainer.build import build_ppo, build_sac
from tests.distributed import cases

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")
LAUNCH_TIMEOUT_S = 240

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    env.pop("GAUSSRL_TRACEBACK", None)
    return env


@pytest.fixture(scope="module")
def ranks_dir(tmp_path_factory) -> Path:
    """The directory the 2 ranks of ``worker.py`` wrote their results to."""
    out = tmp_path_factory.mktemp("ranks")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER)]
    done = subprocess.run(
        [*command, str(out)], check=False, env=_env(), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def grads_dir(ranks_dir) -> Path:
    return ranks_dir


@pytest.fixture(scope="module")
def trained(ranks_dir) -> list[dict]:
    return [json.loads((ranks_dir / f"train_rank{rank}.json").read_text()) for rank in (0, 1)]


def _spaces():
    return gymnasium.spaces.Box(-np.inf, np.inf, (3,), np.float32), gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)


def _one_process(algo: str, part: slice) -> list[np.ndarray]:
    torch.manual_seed(0)
    if algo == "ppo":
        envs = part.stop - part.start
        agent = build_ppo(cases.GRAD_PPO, *_spaces(), num_envs=envs, policy="mlp", device="cpu")
        return cases.ppo_gradients(agent, part)
    agent = build_sac(cases.GRAD_SAC, *_spaces(), num_envs=1, device="cpu")
    return cases.sac_gradients(agent, part)


def _rank_grads(grads_dir: Path, rank: int, algo: str) -> list[np.ndarray]:
    counts = json.loads((grads_dir / f"grads_rank{rank}.json").read_text())
    with np.load(grads_dir / f"grads_rank{rank}.npz") as saved:
        arrays = [saved[f"arr_{i}"] for i in range(counts["ppo"] + counts["sac"])]
    return arrays[: counts["ppo"]] if algo == "ppo" else arrays[counts["ppo"] :]


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_averaged_gradient_equals_gradient_of_the_union(grads_dir, algo):
    union = slice(0, 2 * cases.ENVS) if algo == "ppo" else slice(0, 2 * cases.GRAD_SAC.batch_size)
    first_half = slice(0, cases.ENVS) if algo == "ppo" else slice(0, cases.GRAD_SAC.batch_size)
    want = _one_process(algo, union)
    local = _one_process(algo, first_half)
    ranks = [_rank_grads(grads_dir, rank, algo) for rank in (0, 1)]
    assert len(ranks[0]) == len(want) > 0
    for got0, got1, expected in zip(*ranks, want, strict=True):
        np.testing.assert_array_equal(got0, got1)  # every rank steps with the same bits
        np.testing.assert_allclose(got0, expected, rtol=1e-5, atol=1e-6)
    # The oracle separates: one rank's own gradient is far from the union's.
    assert max(np.abs(a - b).max() for a, b in zip(local, want, strict=True)) > 1e-3


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_parameters_identical_across_ranks_after_every_update(trained, algo):
    rank0, rank1 = (result[algo] for result in trained)
    # 2 ranks x 2 envs: 4 env steps per vector step; SAC counts learning_starts in this rank's env steps.
    vector_steps = 3200 // 4 if algo == "ppo" else 1200 // 4
    first = cases.TINY_PPO.rollouts if algo == "ppo" else cases.TINY_SAC.learning_starts // 2
    updates = vector_steps // cases.TINY_PPO.rollouts if algo == "ppo" else vector_steps - first + 1
    assert len(rank0["digests"]) == updates + 1  # the start, then every update
    assert rank0["digests"] == rank1["digests"]
    assert len(set(rank0["digests"])) == len(rank0["digests"])  # every update changed them


def test_collectives_per_update_are_one_per_optimizer_step_plus_ppo_s_three(trained):
    ppo, sac = (trained[0][algo]["collectives"] for algo in ("ppo", "sac"))
    steps = cases.TINY_PPO.learning_epochs * cases.TINY_PPO.mini_batches
    # One gradient exchange (a send and a receive with 2 ranks) per optimizer step, carrying the previous
    # epoch's KLs; the last epoch's KLs; the observation statistics; the value statistics with the advantages.
    assert ppo == [{"isend": steps, "irecv": steps, "all_reduce": 1, "all_gather": 2}] * len(ppo)
    assert sac == [{"isend": 2, "irecv": 2}] * len(sac)  # the critics; the policy with the temperature
    assert trained[1]["ppo"]["collectives"] == ppo


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_resumed_two_rank_run_continues_exactly(trained, algo):
    for result in trained:
        run = result[algo]
        assert run["resumed_final"] == run["final"]
        resumed = run["resumed_digests"]
        assert resumed[1:] == run["digests"][len(run["digests"]) - len(resumed) + 1 :]
    summary = trained[0][algo]["summary"]
    assert summary["world_size"] == 2
    assert summary["timesteps"] == (3200 if algo == "ppo" else 1200)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _rank_of(pid: int) -> int | None:
    try:
        variables = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [v.split(b"=", 1)[1] for v in variables if v.startswith(b"RANK=")]
    return int(ranks[0]) if ranks else None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the ranks' processes through /proc")
def test_killed_rank_ends_the_run_with_an_error_in_bounded_time(tmp_path):
    command = [sys.executable, "-m", "gaussrl", "train", "--nproc", "2", "--timesteps", "10000000", "--no-progress"]
    command += ["--no-tensorboard", "--out", str(tmp_path / "run"), "--eval-interval", "0"]
    launcher = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + LAUNCH_TIMEOUT_S
        while not (tmp_path / "run" / "config.json").exists():  # rank 0 has joined and built its trainer
            assert launcher.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        workers = [p for child in _children(launcher.pid) for p in [child, *_children(child)]]
        victim = next(p for p in workers if _rank_of(p) == 1)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert time.monotonic() - killed < 60
    assert launcher.returncode == 1
    # Rank 0 either finds rank 1 gone first (exit status 3) or is stopped by the launcher: a race.
    last = stderr.strip().splitlines()[-1]
    assert last in (
        "gaussrl: error: the run stopped: rank 1 exited with signal SIGKILL; the launcher then stopped rank 0.",
        "gaussrl: error: the run stopped: rank 1 exited with signal SIGKILL; rank 0 then lost contact and stopped.",
    ), stderr
