"""Torch and JAX agree on log-prob and entropy for the same mean, log-std and taken actions."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

pytest.importorskip("flax")
pytest.importorskip("torch")

from tests.contract.adapters.jax_adapter import ADAPTER as JAX
from tests.contract.adapters.torch_adapter import ADAPTER as TORCH
from tests.contract.helpers import REDUCTIONS, RTOL, atol_for, draw

SPACE = spaces.Box(low=np.array([-2.0, 0.0, -1.0, -1.0], np.float32), high=np.array([3.0, 1.0, 1.0, 2.0], np.float32))


@pytest.mark.parametrize("squash_actions", [False, True])
@pytest.mark.parametrize("state_dependent", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_torch_and_jax_agree(reduction, state_dependent, squash_actions):
    mean = draw(0, n=128, scale=0.8)
    log_std = draw(1, n=128, scale=0.4) if state_dependent else np.array([-0.7, -0.1, 0.2, 0.6], np.float32)
    if squash_actions:
        inside = 0.9 * np.tanh(draw(2, n=128))
        taken = ((SPACE.low + SPACE.high) / 2 + (SPACE.high - SPACE.low) / 2 * inside).astype(np.float32)
    else:
        taken = draw(2, n=128, scale=1.5)
    options = {"reduction": reduction, "state_dependent": state_dependent, "squash_actions": squash_actions}
    results = {}
    for backend in (TORCH, JAX):
        policy = backend.policy(SPACE, **options)
        _, outputs = backend.act(policy, mean, log_std, taken_actions=taken)
        results[backend.name] = (outputs["log_prob"], outputs["mean_actions"], outputs["log_std"])
    for torch_value, jax_value in zip(results["torch"], results["jax"], strict=True):
        np.testing.assert_allclose(jax_value, torch_value, rtol=RTOL, atol=atol_for(reduction, 4))


@pytest.mark.parametrize("state_dependent", [False, True])
def test_entropy_agrees(state_dependent):
    mean = draw(3, n=64)
    log_std = draw(4, n=64, scale=0.5) if state_dependent else np.array([-2.0, -0.5, 0.0, 1.5], np.float32)
    entropies = []
    for backend in (TORCH, JAX):
        policy = backend.policy(SPACE, state_dependent=state_dependent)
        backend.act(policy, mean, log_std)
        entropies.append(backend.entropy(policy))
    np.testing.assert_allclose(entropies[1], entropies[0], rtol=RTOL, atol=RTOL)
