"""Every JAX example runs, in both Flax styles, and its two styles agree on shapes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flax")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "jax"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"gaussrl_example_jax_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, prefix", [("mlp", "MLP"), ("cnn", "CNN")])
def test_feedforward_examples(name, prefix):
    results = _load(name).main(batch=5)
    assert set(results) == {f"{prefix}Setup", f"{prefix}Compact"}
    for actions, outputs in results.values():
        assert actions.shape == (5, 2) and outputs["log_prob"].shape == (5, 1)
        assert np.all(np.isfinite(actions)) and np.all(np.isfinite(outputs["log_prob"]))


@pytest.mark.parametrize("name, prefix, states", [("rnn", "RNN", 1), ("gru", "GRU", 1), ("lstm", "LSTM", 2)])
def test_recurrent_examples(name, prefix, states):
    module = _load(name)
    results = module.main(num_envs=3)
    assert set(results) == {f"{prefix}Setup", f"{prefix}Compact"}
    for result in results.values():
        assert result["actions"].shape == (3, 2)
        assert result["rnn"].shape == (1, 3, 16)
        assert result["training_log_prob"].shape == (12, 1)
    policy = getattr(module, f"{prefix}Setup")(5, None, 2, num_envs=3)
    assert policy.get_specification() == {"rnn": {"sequence_length": 4, "sizes": [(1, 3, 16)] * states}}


def test_recurrent_state_is_carried_and_reset():
    module = _load("gru")
    policy = module.GRUCompact(2, None, 1, num_envs=2, sequence_length=3, hidden_size=4)
    policy.init_state_dict(key=1)
    hidden = [np.zeros((1, 2, 4), np.float32)]
    _, first = policy.act({"observations": np.ones((2, 2), np.float32), "rnn": hidden})
    _, second = policy.act({"observations": np.ones((2, 2), np.float32), "rnn": first["rnn"]})
    assert not np.allclose(first["rnn"][0], second["rnn"][0])
    policy.enable_training_mode(True)
    observations = np.ones((6, 2), np.float32)
    zeros = [np.zeros((1, 6, 4), np.float32)]
    # Two arrays, not one changed in place: on CPU, JAX may read a NumPy input after act() returns.
    _, plain = policy.act({"observations": observations, "rnn": zeros, "terminated": np.zeros((6, 1), bool)})
    terminated = np.zeros((6, 1), bool)
    terminated[1] = True
    _, reset = policy.act({"observations": observations, "rnn": zeros, "terminated": terminated})
    # A reset after the second step of the first sequence makes its last state that of one fresh step.
    np.testing.assert_allclose(reset["rnn"][0][0, 0], first["rnn"][0][0, 0], rtol=1e-5)
    assert not np.allclose(plain["rnn"][0][0, 0], reset["rnn"][0][0, 0])
    np.testing.assert_allclose(plain["rnn"][0][0, 1], reset["rnn"][0][0, 1], rtol=1e-6)


@pytest.mark.parametrize(
    "name, cls_name", [("rnn", "RNNCompact"), ("gru", "GRUSetup"), ("lstm", "LSTMSetup"), ("lstm", "LSTMCompact")]
)
def test_training_sequences_match_step_by_step_rollout_with_resets(name, cls_name):
    """Training on stored sequences reproduces the rollout, including a reset mid-sequence."""
    policy = getattr(_load(name), cls_name)(5, None, 2, num_envs=2, sequence_length=5, hidden_size=6)
    policy.init_state_dict(key=0)
    observations = np.random.default_rng(0).uniform(-1, 1, (2, 5, 5)).astype(np.float32)
    terminated = np.zeros((2, 5), bool)
    terminated[0, 1] = True  # the episode of environment 0 ends after step 1
    sizes = policy.get_specification()["rnn"]["sizes"]
    hidden, stored, means = [np.zeros(size, np.float32) for size in sizes], [], []
    for t in range(5):
        stored.append([np.array(h) for h in hidden])
        _, outputs = policy.act({"observations": observations[:, t].copy(), "rnn": hidden})
        means.append(np.asarray(outputs["mean_actions"]))
        keep = (~terminated[:, t]).astype(np.float32)[None, :, None]
        hidden = [np.asarray(h) * keep for h in outputs["rnn"]]
    policy.enable_training_mode(True)
    per_step = [np.stack([s[i] for s in stored], axis=2).reshape(1, 10, -1) for i in range(len(sizes))]
    _, outputs = policy.act(
        {"observations": observations.reshape(10, 5), "rnn": per_step, "terminated": terminated.reshape(10, 1)}
    )
    np.testing.assert_allclose(outputs["mean_actions"], np.stack(means, axis=1).reshape(10, 2), rtol=1e-5, atol=1e-6)
