"""Every Warp example runs on a small space; recurrent ones agree between rollout steps and training sequences."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import warp as wp
from gymnasium import spaces

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "warp"
OBS, ACT = spaces.Box(-1, 1, (3,), np.float32), spaces.Box(-1, 1, (2,), np.float32)


@pytest.fixture
def examples():
    """Load ``examples/warp/<name>.py`` under a unique module name (the torch examples use the same file names)."""

    def load(name):
        spec = importlib.util.spec_from_file_location(f"gaussrl_warp_example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def _array(x):
    return wp.array(np.asarray(x, np.float32), dtype=wp.float32, device="cpu")


def _backward_is_finite(model, inputs):
    tape = wp.Tape()
    with tape:
        _, outputs = model.act(inputs)
    tape.backward(grads={outputs["log_prob"]: wp.ones_like(outputs["log_prob"], requires_grad=False)})
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    tape.zero()
    assert all(np.all(np.isfinite(g)) for g in grads) and all(np.any(g != 0) for g in grads)


def test_mlp(examples, capsys):
    mlp = examples("mlp")
    policy = mlp.MLP(OBS, None, ACT, "cpu", clip_actions=True)
    inputs = {
        "observations": _array(np.random.default_rng(0).normal(size=(6, 3))),
        "taken_actions": _array(np.zeros((6, 2))),
    }
    actions, outputs = policy.act(inputs)
    assert actions.shape == (6, 2) and outputs["log_prob"].shape == (6, 1)
    assert np.all(np.abs(actions.numpy()) <= 1.0)
    _backward_is_finite(policy, inputs)
    mlp.main()
    assert "log_prob" in capsys.readouterr().out


def test_cnn(examples):
    cnn = examples("cnn")
    policy = cnn.CNN(spaces.Box(0, 1, (9, 9, 3), np.float32), None, ACT, "cpu")
    images = np.random.default_rng(1).random((2, 9, 9, 3))
    flat, _ = policy.act({"observations": _array(images.reshape(2, -1)), "taken_actions": _array(np.zeros((2, 2)))})
    _, outputs = policy.act({"observations": _array(images), "taken_actions": _array(np.zeros((2, 2)))})
    assert flat.shape == (2, 2) and outputs["log_prob"].shape == (2, 1)
    _backward_is_finite(policy, {"observations": _array(images), "taken_actions": _array(np.zeros((2, 2)))})


def _rollout(model, observations, reset_after=None):
    """Step by step: observations (N, L, F); returns mean actions (N, L, A) and the last hidden states."""
    length = observations.shape[1]
    hidden = [wp.zeros(size, dtype=wp.float32, device="cpu") for size in model.get_specification()["rnn"]["sizes"]]
    means = []
    model.train(False)
    for t in range(length):
        _, outputs = model.act({"observations": _array(observations[:, t]), "rnn": hidden})
        means.append(outputs["mean_actions"].numpy().copy())
        hidden = outputs["rnn"]
        if reset_after is not None and t == reset_after[1]:
            values = [h.numpy().copy() for h in hidden]
            for value in values:
                value[:, reset_after[0]] = 0.0
            hidden = [_array(v) for v in values]
    return np.stack(means, 1), [h.numpy().copy() for h in hidden]


@pytest.mark.parametrize(("name", "cls"), [("rnn", "RNN"), ("gru", "GRU"), ("lstm", "LSTM")])
def test_recurrent_rollout_and_training_agree(examples, name, cls):
    n, length, size = 2, 4, 8
    model = getattr(examples(name), cls)(OBS, None, ACT, "cpu", num_envs=n, hidden_size=size, sequence_length=length)
    spec = model.get_specification()["rnn"]
    assert spec["sequence_length"] == length and spec["sizes"][0] == (1, n, size)
    observations = np.random.default_rng(2).normal(size=(n, length, 3)).astype(np.float32)
    stored = [wp.zeros((1, n * length, size), dtype=wp.float32, device="cpu") for _ in spec["sizes"]]
    terminated = np.zeros((n, length), np.float32)
    terminated[1, 1] = 1.0  # env 1's episode ends after step 1: its state is reset before step 2
    for flags, reset in ((np.zeros_like(terminated), None), (terminated, (1, 1))):
        want, final = _rollout(model, observations, reset)
        model.train(True)
        inputs = {"observations": _array(observations.reshape(n * length, 3)), "rnn": stored}
        inputs["terminated"] = _array(flags.reshape(-1, 1))
        _, outputs = model.act(inputs)
        np.testing.assert_allclose(outputs["mean_actions"].numpy().reshape(n, length, 2), want, rtol=1e-5, atol=1e-6)
        for got, expected in zip(outputs["rnn"], final, strict=True):
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    inputs["taken_actions"] = _array(np.zeros((n * length, 2)))
    _backward_is_finite(model, inputs)
