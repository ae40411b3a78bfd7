"""NaN/inf from the environment or in the losses: caught where it enters, named, and never written as NaN.

The environments below are Pendulum-v1 with one bad value injected at the N-th step of each
environment instance (every copy of a vector env hits it at the same vector step).
"""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
import torch

from gaussrl.io.checkpoint import load_checkpoint
from gaussrl.trainer.cli import main
from tests.training.run_helpers import TINY, checkpoint_steps, cli_error, records, strict_json


class Inject(gymnasium.Wrapper):
    """Replace the reward or the first observation component by ``value`` from the ``at``-th step on (at only once
    unless ``every``)."""

    def __init__(self, env, *, quantity, value, at, every=False):
        super().__init__(env)
        self.quantity, self.value, self.at, self.every, self.count = quantity, value, at, every, 0

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.count += 1
        if self.count == self.at or (self.every and self.count >= self.at):
            if self.quantity == "reward":
                reward = self.value
            else:
                observation = np.array(observation, copy=True)
                observation[0] = self.value
        return observation, reward, terminated, truncated, info


def _make(**kwargs):
    return Inject(gymnasium.make("Pendulum-v1"), **kwargs)


ENVS = {
    "gaussrl_test/NanReward-v0": {"quantity": "reward", "value": math.nan, "at": 300},
    "gaussrl_test/InfObservation-v0": {"quantity": "observation", "value": -math.inf, "at": 300},
    "gaussrl_test/NanEarly-v0": {"quantity": "reward", "value": math.nan, "at": 50},
    "gaussrl_test/HugeReward-v0": {"quantity": "reward", "value": 1e30, "at": 1, "every": True},
}
for _id, _kwargs in ENVS.items():
    if _id not in gymnasium.registry:
        gymnasium.register(id=_id, entry_point=_make, kwargs=_kwargs, max_episode_steps=200)


BACKENDS = ["torch", "jax", "warp"]
NAN_REWARD = ("gaussrl_test/NanReward-v0", "NaN in its reward")
INF_OBSERVATION = ("gaussrl_test/InfObservation-v0", "-inf in its observation")


@pytest.mark.parametrize(
    ("injected", "agent"),
    [
        (NAN_REWARD, ("torch", "ppo")),
        (INF_OBSERVATION, ("torch", "ppo")),
        (NAN_REWARD, ("jax", "ppo")),
        (INF_OBSERVATION, ("jax", "sac")),
        (NAN_REWARD, ("warp", "sac")),
        (INF_OBSERVATION, ("warp", "ppo")),
    ],
    ids=lambda case: "-".join(case).split("/")[-1],
)
def test_nonfinite_env_data_stops_the_run_after_a_checkpoint(tmp_path, capsys, injected, agent):
    (env_id, what), (backend, algo) = injected, agent
    run = tmp_path / "run"
    argv = ["train", "--backend", backend, "--algo", algo, "--env", env_id, "--timesteps", "1024", "--out", str(run)]
    argv += TINY
    message = cli_error(capsys, argv)
    # Both copies hit the value at their 300th step: the vector step that would have reached step 600.
    assert message == (
        f"gaussrl: error: environment '{env_id}' returned {what} (sub-environment 0 of 2, step 100 of its "
        f"episode 1), after 598 environment steps of training; the run stopped and saved checkpoint step 598 "
        f"(the state before it); continue with `gaussrl train --resume {run}` (add --nonfinite skip to leave "
        f"such steps out of training)."
    )
    assert checkpoint_steps(run) == [598]
    state, _ = load_checkpoint(run / "checkpoints")
    assert state["steps"] == 598
    assert not (run / "summary.json").exists()
    assert max(r["step"] for r in records(run)) <= 598


@pytest.mark.parametrize("backend", BACKENDS)
def test_skip_leaves_the_steps_out_and_counts_them(tmp_path, backend):
    run = tmp_path / "run"
    argv = ["train", "--backend", backend, "--env", "gaussrl_test/NanReward-v0", "--timesteps", "1024"]
    argv += ["--out", str(run)]
    assert main([*argv, "--nonfinite", "skip", *TINY]) == 0
    summary = strict_json((run / "summary.json").read_text())
    assert summary["nonfinite_skipped"] == 2 and summary["timesteps"] == 1024
    assert math.isfinite(summary["eval_return_mean"]) and summary["eval_episodes"] == 2
    episodes = [r for r in records(run) if r["kind"] == "episode"]
    # Each copy: episode 0 ends at its step 200; episode 1 is cut at step 300 and not recorded; episode 2 runs
    # from step 301 to 500 (run steps: twice the copy's).
    assert [r["step"] for r in episodes] == [400, 400, 1000, 1000]
    assert all(math.isfinite(r["return"]) for r in episodes)
    state, _ = load_checkpoint(run / "checkpoints")
    assert state["skipped"] == 2


def test_summary_is_strict_json_when_no_evaluation_episode_is_finite(tmp_path):
    # Every evaluation episode also hits NaN at its 50th step and is left out: the mean is null.
    run = tmp_path / "run"
    argv = ["train", "--env", "gaussrl_test/NanEarly-v0", "--timesteps", "256", "--out", str(run)]
    assert main([*argv, "--nonfinite", "skip", *TINY]) == 0
    text = (run / "summary.json").read_text()
    summary = strict_json(text)
    assert summary["eval_return_mean"] is None and summary["eval_return_std"] is None
    assert summary["eval_episodes"] == 0 and "NaN" not in text
    evals = [r for r in records(run) if r["kind"] == "eval"]
    assert evals == [{"kind": "eval", "step": 256, "return_mean": None, "return_std": None}]


@pytest.mark.parametrize("backend", BACKENDS)
def test_nonfinite_loss_stops_without_saving_the_poisoned_state(tmp_path, capsys, backend):
    # Rewards of 1e30 are finite in float32, but SAC's squared critic error overflows to inf.
    run = tmp_path / "run"
    argv = ["train", "--backend", backend, "--algo", "sac", "--env", "gaussrl_test/HugeReward-v0"]
    argv += ["--timesteps", "1000"]
    argv += ["--out", str(run), "--no-progress", "--no-tensorboard", "--checkpoint-interval", "100"]
    argv += ["--sac.learning-starts", "200", "--sac.batch-size", "16", "--sac.hidden-sizes", "16", "16"]
    message = cli_error(capsys, argv)
    # The first update (at step 200, before that step's checkpoint) diverges: checkpoint 100 is the last good one.
    assert message == (
        "gaussrl: error: SAC's critic_loss became inf in the update after 200 steps (learning diverged: try a lower "
        "learning rate or smaller rewards); the run stopped and the agent's state is no longer finite, so nothing "
        f"was saved; the newest checkpoint is step 100; continue with `gaussrl train --resume {run}`."
    )
    assert checkpoint_steps(run) == [100]
    state, _ = load_checkpoint(run / "checkpoints")
    parameters = list(_tensors(state["agent"]["learning" if backend == "jax" else "policy"]))
    assert parameters and all(torch.isfinite(tensor).all() for tensor in parameters)


def _tensors(tree):
    """Every tensor in nested dicts and lists."""
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, dict | list | tuple):
        for item in tree.values() if isinstance(tree, dict) else tree:
            yield from _tensors(item)
