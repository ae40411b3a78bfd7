"""The Warp PPO and SAC agents: one update matches the torch agents from the same parameters and data;
a resumed run equals the uninterrupted one; ``gaussrl train --backend warp`` trains, evaluates and checkpoints."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import warp as wp
from gymnasium import spaces

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.agents.warp.memory import load_arrays
from gaussrl.trainer.build import build_ppo, build_sac
from gaussrl.trainer.cli import main
from gaussrl.trainer.loop import TrainConfig, Trainer
from gaussrl.trainer.warp_backend import WarpArrayAgent, build_warp_ppo, build_warp_sac

OBS, ACT = spaces.Box(-np.inf, np.inf, (3,), np.float32), spaces.Box(-1.0, 1.0, (2,), np.float32)
TOL = {"rtol": 2e-4, "atol": 2e-5}
"""float32 on both sides; one Adam step moves a parameter by about lr, so these bound the relative step error."""


def _copy(torch_model, warp_model):
    shapes = {k: v.shape for k, v in warp_model.state_dict().items()}
    load_arrays(warp_model, {k: v.detach().numpy().reshape(shapes[k]) for k, v in torch_model.state_dict().items()})


def _assert_same_parameters(torch_model, warp_model):
    arrays = warp_model.state_dict()
    for name, value in torch_model.state_dict().items():
        got = arrays[name].numpy().reshape(value.shape)
        np.testing.assert_allclose(got, value.detach().numpy(), **TOL, err_msg=name)


class _SameOrders:
    """The epochs' shuffles, given to both agents: torch.randperm's stand-in and the Warp agent's generator."""

    def __init__(self, count, epochs):
        rng = np.random.default_rng(5)
        self.orders = [rng.permutation(count) for _ in range(epochs)]
        self.torch_calls, self.warp_calls = 0, 0

    def randperm(self, count, device=None):
        self.torch_calls += 1
        return torch.tensor(self.orders[self.torch_calls - 1])

    def permutation(self, count):
        self.warp_calls += 1
        return self.orders[self.warp_calls - 1]


PPO_CASES = {
    "one minibatch, value clipping, entropy bonus": {
        "mini_batches": 1, "observation_normalization": False, "clip_predicted_values": True,
        "entropy_loss_scale": 0.01,
    },
    "four shuffled minibatches, observation normaliser": {"mini_batches": 4, "observation_normalization": True},
    # 100 rows: a partial tile of rows (Dense's row tile is 64)
    "one 100-row minibatch": {"rollouts": 50, "mini_batches": 1, "observation_normalization": True},
}  # fmt: skip


@pytest.mark.parametrize("case", PPO_CASES)
def test_one_ppo_update_matches_torch(monkeypatch, case):
    options = {"rollouts": 8, "learning_epochs": 3, "hidden_sizes": (16, 16), "learning_rate": 3e-3}
    config = PPOConfig(**{**options, **PPO_CASES[case]})
    num_envs = 2
    torch_agent = build_ppo(config, OBS, ACT, num_envs=num_envs, policy="mlp", device="cpu")
    warp_agent = build_warp_ppo(config, OBS, ACT, num_envs=num_envs, device="cpu")
    _copy(torch_agent.policy, warp_agent.policy)
    _copy(torch_agent.value, warp_agent.value)
    rng = np.random.default_rng(0)
    if config.observation_normalization:  # the same statistics on both sides, far from (0, 1)
        seen = rng.normal(2.0, 3.0, size=(50, 3)).astype(np.float32)
        torch_agent.obs_scaler.update(torch.tensor(seen))
        warp_agent.obs_scaler.update(seen)
    for step in range(config.rollouts):
        observations = rng.normal(size=(num_envs, 3)).astype(np.float32)
        actions = rng.normal(size=(num_envs, 2)).astype(np.float32)
        rewards = rng.normal(size=(num_envs, 1)).astype(np.float32)
        dones = np.array([[step == 4], [False]])
        with torch.no_grad():
            _, outputs = torch_agent.policy.act(
                {"observations": torch.tensor(observations), "taken_actions": torch.tensor(actions)}, role="policy"
            )
        data = {"observations": observations, "actions": actions, "log_prob": outputs["log_prob"].numpy()}
        data["mean_actions"] = outputs["mean_actions"].numpy()
        log_std = outputs["log_std"].expand(num_envs, 2)
        torch_agent.rollout.add(
            **{k: torch.tensor(v) for k, v in data.items()},
            log_std=log_std, rewards=torch.tensor(rewards), dones=torch.tensor(dones),
        )  # fmt: skip
        for name, value in {**data, "rewards": rewards, "dones": dones.astype(np.float32)}.items():
            warp_agent.rollout.write(name, value)
        warp_agent.rollout.advance()
        warp_agent.rollout_log_std.assign(log_std[0].numpy())
    next_observations = rng.normal(size=(num_envs, 3)).astype(np.float32)
    orders = _SameOrders(config.rollouts * num_envs, config.learning_epochs)
    monkeypatch.setattr(torch, "randperm", orders.randperm)
    monkeypatch.setattr(warp_agent, "rng", orders)
    want = torch_agent.update(torch.tensor(next_observations))
    got = warp_agent.update(wp.array(next_observations, dtype=wp.float32, device="cpu"))
    assert orders.torch_calls == orders.warp_calls == config.learning_epochs
    _assert_same_parameters(torch_agent.policy, warp_agent.policy)
    _assert_same_parameters(torch_agent.value, warp_agent.value)
    for key in ("policy_loss", "value_loss", "entropy", "kl", "learning_rate", "policy_std"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-6, err_msg=key)
    initial = build_warp_ppo(config, OBS, ACT, num_envs=num_envs, device="cpu")
    moved = warp_agent.policy.state_dict()["net.0.weight"].numpy() - initial.policy.state_dict()["net.0.weight"].numpy()
    assert np.abs(moved).max() > 1e-3  # the update did move the parameters


class _FixedDraws:
    """Stands in for the agent's generator: the replay rows torch draws, and seed 0 for the policy."""

    def __init__(self, index):
        self.index = index

    def integers(self, low, high, size=None):
        return self.index if size is not None else 0


@pytest.mark.parametrize("batch_size", [16, 100])  # 100: a partial tile of rows
def test_one_sac_update_matches_torch(monkeypatch, batch_size):
    config = SACConfig(
        batch_size=batch_size, memory_size=128, hidden_sizes=(16, 16), learning_starts=0, grad_norm_clip=1.0,
        initial_entropy_value=1e-6,
    )  # fmt: skip
    torch_agent = build_sac(config, OBS, ACT, num_envs=1, device="cpu")
    warp_agent = build_warp_sac(config, OBS, ACT, num_envs=1, device="cpu")
    # A log-std near -19 makes both policies' samples their (squashed) means to float32 precision, and a
    # temperature of 1e-6 scales the log-density terms (whose -z^2/2 part depends on the noise drawn)
    # down to 1e-6, so the two backends' different random streams cannot make the updates differ.
    with torch.no_grad():
        torch_agent.policy.net[-1].bias[2:] = -19.0
    _copy(torch_agent.policy, warp_agent.policy)
    for models in ("critics", "target_critics"):
        for torch_model, warp_model in zip(getattr(torch_agent, models), getattr(warp_agent, models), strict=True):
            _copy(torch_model, warp_model)
    rng = np.random.default_rng(1)
    for _ in range(40):
        row = {
            "observations": rng.normal(size=(1, 3)),
            "actions": rng.uniform(-1, 1, (1, 2)),
            "rewards": rng.normal(size=(1, 1)),
            "next_observations": rng.normal(size=(1, 3)),
            "terminated": (rng.random((1, 1)) < 0.2),
        }
        torch_agent.memory.add(**{k: torch.tensor(v, dtype=torch.float32) for k, v in row.items()})
        for name, value in row.items():
            warp_agent.memory.write(name, value.astype(np.float32))
        warp_agent.memory.advance()
    index = rng.integers(0, 40, config.batch_size)
    monkeypatch.setattr(torch, "randint", lambda *args, **kwargs: torch.tensor(index))
    monkeypatch.setattr(warp_agent, "rng", _FixedDraws(index))
    want = torch_agent.update()
    got = warp_agent.update()
    np.testing.assert_allclose(got, [float(want[k]) for k in ("critic_loss", "policy_loss", "alpha", "q_value")], **TOL)
    _assert_same_parameters(torch_agent.policy, warp_agent.policy)
    for models in ("critics", "target_critics"):
        for torch_model, warp_model in zip(getattr(torch_agent, models), getattr(warp_agent, models), strict=True):
            _assert_same_parameters(torch_model, warp_model)
    np.testing.assert_allclose(warp_agent.log_alpha.numpy()[0], torch_agent.log_entropy_coefficient.item(), **TOL)
    assert warp_agent.log_alpha.numpy()[0] != 0.0


TINY = {
    "ppo": PPOConfig(rollouts=100, learning_epochs=2, mini_batches=4, hidden_sizes=(16, 16)),
    "sac": SACConfig(batch_size=32, memory_size=1000, learning_starts=150, random_timesteps=150, hidden_sizes=(16, 16)),
}


def _config(tmp_path, name, **kwargs):
    base = {
        "backend": "warp",
        "out": str(tmp_path / name),
        "progress": False,
        "tensorboard": False,
        "eval_episodes": 2,
        "eval_interval": 0,
        "checkpoint_interval": 0,
        "ppo": TINY["ppo"],
        "sac": TINY["sac"],
    }
    return TrainConfig(**{**base, **kwargs})


def _train(config):
    trainer = Trainer(config)
    try:
        return trainer.run(), trainer.agent.state()
    finally:
        trainer.close()


def _assert_same_state(a, b, path=""):
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"differs at {path}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_same_state(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_state(x, y, f"{path}.{i}")
    else:
        assert a == b, path


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_resume_equals_uninterrupted(tmp_path, algo):
    steps = (400, 800)  # 2 envs x 200 steps: the checkpoint falls on Pendulum's episode boundary
    whole_summary, whole = _train(_config(tmp_path, "whole", algo=algo, num_envs=2, timesteps=steps[1]))
    _train(_config(tmp_path, "part", algo=algo, num_envs=2, timesteps=steps[0]))
    resumed = _config(tmp_path, "part", algo=algo, num_envs=2, timesteps=steps[1], resume=str(tmp_path / "part"))
    resumed_summary, resumed_state = _train(resumed)
    _assert_same_state(whole, resumed_state)
    assert resumed_summary["eval_return_mean"] == whole_summary["eval_return_mean"]
    assert whole_summary["backend"] == resumed_summary["backend"] == "warp"


def test_train_and_eval_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--backend", "warp", "--timesteps", "800", "--eval-episodes", "2", "--no-progress"]
    args += ["--ppo.rollouts", "100", "--ppo.hidden-sizes", "16", "16", "--out", str(run)]
    assert main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["backend"] == "warp" and summary["timesteps"] == 800 and np.isfinite(summary["eval_return_mean"])
    assert any((run / "checkpoints").glob("*.safetensors")) and (run / "metrics.jsonl").read_text().count("update")
    # Warp's banner and per-module load lines stay out of the run's output (its warnings still print).
    assert wp.config.log_level == wp.LOG_WARNING
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    assert f"{summary['eval_return_mean']:.2f}" in capsys.readouterr().out
    assert main(["train", "--backend", "torch", "--resume", str(run), "--no-progress"]) == 2
    message = capsys.readouterr().err
    assert "backend" in message and "'warp'" in message


def test_warp_backend_rejects_recurrent_policies():
    with pytest.raises(ValueError, match=r"policy=.gru. trains on the torch backend only"):
        dataclasses.replace(TrainConfig(), backend="warp", policy="gru")


class _Recorder:
    """A Warp agent stand-in that keeps the step it is given."""

    device = "cpu"

    def observe(self, step):
        self.step = step
        return {}


@pytest.mark.parametrize("ended", ["none", "truncated", "terminated"])
def test_the_agent_gets_the_final_observations(ended):
    recorder = _Recorder()
    observations = np.arange(6, dtype=np.float32).reshape(2, 3)
    final = observations.copy()
    if ended != "none":
        final[0] += 100.0  # environment 0's episode ended there; environment 1 goes on
    flags = {name: np.array([ended == name, False]) for name in ("terminated", "truncated")}
    step = SimpleNamespace(observations=observations, rewards=np.ones(2), final_observations=final, **flags)
    WarpArrayAgent(recorder).observe(step)
    np.testing.assert_array_equal(recorder.step.observations.numpy(), observations)
    np.testing.assert_array_equal(recorder.step.final_observations.numpy(), final)
