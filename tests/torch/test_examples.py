"""Every torch example from the specification's usage list, on a small space."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.examples_loader import load_example

OBS = gym.spaces.Box(-1.0, 1.0, (5,), np.float32)
ACT = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)


@pytest.mark.parametrize("name", ["MLP", "FunctionalMLP"])
def test_mlp_examples_act_and_learn(name):
    cls = getattr(load_example("torch", "mlp"), name)
    policy = cls(OBS, None, ACT, "cpu", clip_actions=True)
    observations = torch.rand(16, 5) * 2 - 1
    actions, outputs = policy.act({"observations": observations}, role="policy")
    assert actions.shape == (16, 2) and outputs["log_prob"].shape == (16, 1)
    assert torch.all(actions.abs() <= 2.0)
    loss = -(outputs["log_prob"].mean() + policy.get_entropy(role="policy").mean())
    loss.backward()
    assert policy.log_std_parameter.grad is not None and torch.isfinite(policy.log_std_parameter.grad).all()


def test_specification_example_runs_with_the_package_renamed(capsys):
    load_example("torch", "mlp").main()
    assert "log_prob" in capsys.readouterr().out


def test_cnn_example_accepts_images_and_flat_observations():
    images = gym.spaces.Box(0.0, 1.0, (16, 16, 3), np.float32)
    policy = load_example("torch", "cnn").CNN(images, None, ACT, "cpu")
    batch = torch.rand(4, 16, 16, 3)
    torch.manual_seed(0)
    flat_actions, flat = policy.act({"observations": batch.reshape(4, -1)})
    torch.manual_seed(0)
    image_actions, image = policy.act({"observations": batch})
    torch.testing.assert_close(flat_actions, image_actions)
    torch.testing.assert_close(flat["log_prob"], image["log_prob"])


def _recurrent(name, cls_name, **kwargs):
    return getattr(load_example("torch", name), cls_name)(OBS, None, ACT, "cpu", **kwargs)


def _zeros_hidden(policy, batch):
    return [torch.zeros(layers, batch, size) for layers, _, size in policy.get_specification()["rnn"]["sizes"]]


@pytest.mark.parametrize("name, cls_name, states", [("rnn", "RNN", 1), ("gru", "GRU", 1), ("lstm", "LSTM", 2)])
def test_recurrent_examples_specification_and_rollout(name, cls_name, states):
    policy = _recurrent(name, cls_name, num_envs=3, num_layers=2, hidden_size=8, sequence_length=4)
    spec = policy.get_specification()["rnn"]
    assert spec["sequence_length"] == 4 and spec["sizes"] == [(2, 3, 8)] * states
    policy.train(False)
    hidden = _zeros_hidden(policy, 3)
    _, outputs = policy.act({"observations": torch.rand(3, 5), "rnn": hidden})
    assert len(outputs["rnn"]) == states and outputs["rnn"][0].shape == (2, 3, 8)
    assert not torch.equal(outputs["rnn"][0], hidden[0])


@pytest.mark.parametrize("name, cls_name", [("rnn", "RNN"), ("gru", "GRU"), ("lstm", "LSTM")])
def test_training_sequences_match_step_by_step_rollout_with_resets(name, cls_name):
    """Training on stored sequences must reproduce the rollout, including a reset mid-sequence."""
    torch.manual_seed(0)
    policy = _recurrent(name, cls_name, num_envs=2, hidden_size=6, sequence_length=5)
    observations = torch.rand(2, 5, 5)
    terminated = torch.zeros(2, 5, dtype=torch.bool)
    terminated[0, 1] = True  # episode of environment 0 ends after step 1
    policy.train(False)
    hidden, stored, means = _zeros_hidden(policy, 2), [], []
    for t in range(5):
        stored.append([h.clone() for h in hidden])
        _, outputs = policy.act({"observations": observations[:, t], "rnn": hidden})
        means.append(outputs["mean_actions"])
        hidden = [h * (~terminated[:, t]).float().view(1, -1, 1) for h in outputs["rnn"]]
    policy.train(True)
    # Stored per-step hidden states, laid out as (layers, N * L, H) in sequence order.
    per_step = [torch.stack([s[i] for s in stored], dim=2).flatten(1, 2) for i in range(len(hidden))]
    _, outputs = policy.act(
        {
            "observations": observations.reshape(10, 5),
            "rnn": per_step,
            "terminated": terminated.reshape(10, 1),
        }
    )
    torch.testing.assert_close(outputs["mean_actions"], torch.stack(means, dim=1).reshape(10, 2))
