"""gaussrl's JAX GaussianMixin against the bare jitted Flax network (tanh hidden layers, as common.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from benchmarks.cases.common import ACTIONS, LOG_STD, OBSERVATIONS, observations, weights
from gaussrl.models.jax import GaussianMixin, Model


class Policy(GaussianMixin, Model):
    def __init__(self, observation_space, state_space, action_space, device=None):
        Model.__init__(self, observation_space, state_space, action_space, device)
        GaussianMixin.__init__(self)

    @nn.compact
    def __call__(self, inputs, role):
        x = jnp.tanh(nn.Dense(64)(inputs["observations"]))
        x = jnp.tanh(nn.Dense(64)(x))
        log_std = self.param("log_std", nn.initializers.zeros, (ACTIONS,))
        return nn.Dense(ACTIONS)(x), {"log_std": log_std}


def _params(seed: int) -> dict[str, Any]:
    layers = {
        f"Dense_{i}": {"kernel": jnp.asarray(w), "bias": jnp.asarray(b)} for i, (w, b) in enumerate(weights(seed))
    }
    return {"params": {**layers, "log_std": jnp.asarray(LOG_STD)}}


def make_case(batch: int, seed: int = 0) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(run_act, run_forward): act() + get_entropy(), and the jitted bare network forward; both block."""
    policy = Policy(OBSERVATIONS, None, ACTIONS, device="cpu")
    policy.init_state_dict(role="policy", key=seed)
    params = _params(seed)
    policy.state_dict = policy.state_dict.replace(params=params)
    inputs = {"observations": jnp.asarray(observations(batch))}
    # The bare forward is the MLP's mean, as net(x) in the other cases: returning __call__'s log-std
    # parameter too would add an output buffer (a copy) that only this case's forward paid for.
    forward = jax.jit(lambda params, inputs: policy.apply(params, inputs, "policy")[0])

    def run_act():
        actions, outputs = policy.act(inputs, role="policy")
        entropy = policy.get_entropy(outputs["stddev"], role="policy")
        return jax.block_until_ready((actions, outputs["log_prob"], entropy))

    def run_forward():
        return jax.block_until_ready(forward(params, inputs))

    return run_act, run_forward
