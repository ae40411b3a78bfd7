"""The JAX SAC against the torch SAC: one update on the same batch, parameters and noise (float32 tolerance)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")

from gymnasium import spaces  # noqa: E402

from gaussrl.agents.config import SACConfig  # noqa: E402
from gaussrl.agents.jax.sac import SAC, nets_optimizers, sac_update  # noqa: E402
from gaussrl.trainer.build import build_sac  # noqa: E402
from tests.jax.torch_params import assert_params_close, flax_params  # noqa: E402

OBS, ACT = spaces.Box(-1.0, 1.0, (3,)), spaces.Box(-1.0, 1.0, (2,))
CONFIG = SACConfig(batch_size=16, memory_size=64, hidden_sizes=(16, 16), learning_starts=0, random_timesteps=0)


@pytest.fixture
def agents():
    torch.manual_seed(0)
    torch_agent = build_sac(CONFIG, OBS, ACT, num_envs=1, device="cpu")
    jax_agent = SAC(OBS, ACT, config=CONFIG, num_envs=1, seed=0)
    critics = tuple(flax_params(c) for c in torch_agent.critics)
    jax_agent.learning = jax_agent.learning.replace(
        policy=flax_params(torch_agent.policy),
        critics=critics,
        target_critics=critics,
    )
    adams = nets_optimizers(CONFIG)
    jax_agent.learning = jax_agent.learning.replace(
        policy_opt=adams[0].init(jax_agent.learning.policy), critic_opt=adams[1].init(critics)
    )
    return torch_agent, jax_agent


def _batch(rng: np.random.Generator) -> dict[str, np.ndarray]:
    b = CONFIG.batch_size
    return {
        "observations": rng.normal(size=(b, 3)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(b, 2)).astype(np.float32),
        "rewards": rng.normal(size=(b, 1)).astype(np.float32),
        "next_observations": rng.normal(size=(b, 3)).astype(np.float32),
        "terminated": (rng.uniform(size=(b, 1)) < 0.2).astype(np.float32),
    }


def _noise_of(jax_agent: SAC, observations: np.ndarray, key: jax.Array) -> np.ndarray:
    """The standard-normal draw the JAX policy makes with ``key``: (pre_tanh - mean) / std."""
    policy, params = jax_agent.nets.policy, jax_agent.learning.policy
    _, outputs = policy.act({"observations": observations}, role="policy", params=params, key=key)
    mean, _ = policy.apply(params, {"observations": observations}, "policy")
    return np.asarray((outputs["pre_tanh"] - mean[..., :2]) / outputs["stddev"], dtype=np.float32)


def test_one_update_matches_torch(agents, monkeypatch):
    torch_agent, jax_agent = agents
    batch = _batch(np.random.default_rng(1))
    _, next_key, new_key = jax.random.split(jax_agent.learning.key, 3)
    noises = iter(
        [
            torch.from_numpy(_noise_of(jax_agent, batch["next_observations"], next_key).copy()),
            torch.from_numpy(_noise_of(jax_agent, batch["observations"], new_key).copy()),
        ]
    )
    monkeypatch.setattr(torch, "randn_like", lambda like: next(noises))
    monkeypatch.setattr(torch_agent.memory, "sample", lambda size: {k: torch.from_numpy(v) for k, v in batch.items()})
    want = {k: float(v) for k, v in torch_agent.update().items()}
    update = jax.jit(functools.partial(sac_update, jax_agent.nets))
    state, metrics = update(jax_agent.learning, {k: jax.numpy.asarray(v) for k, v in batch.items()})
    got = dict(zip(("critic_loss", "policy_loss", "alpha", "q_value"), np.asarray(metrics).tolist(), strict=True))
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-5, err_msg=name)
    tolerance = {"rtol": 1e-5, "atol": 2e-6}
    assert_params_close(state.policy, torch_agent.policy, **tolerance)
    for got_critic, critic in zip(state.critics, torch_agent.critics, strict=True):
        assert_params_close(got_critic, critic, **tolerance)
    for got_critic, critic in zip(state.target_critics, torch_agent.target_critics, strict=True):
        assert_params_close(got_critic, critic, **tolerance)
    np.testing.assert_allclose(
        float(state.log_entropy_coefficient), float(torch_agent.log_entropy_coefficient.detach()), rtol=1e-6, atol=1e-7
    )
    assert float(state.log_entropy_coefficient) != 0.0  # the temperature moved


def test_update_changes_every_learned_tree(agents):
    _, jax_agent = agents
    batch = {k: jax.numpy.asarray(v) for k, v in _batch(np.random.default_rng(2)).items()}
    state, _ = jax.jit(functools.partial(sac_update, jax_agent.nets))(jax_agent.learning, batch)
    for name in ("policy", "critics", "target_critics"):
        before = jax.tree_util.tree_leaves(getattr(jax_agent.learning, name))
        after = jax.tree_util.tree_leaves(getattr(state, name))
        assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True)), name
