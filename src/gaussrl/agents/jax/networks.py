"""The default networks of gaussrl's JAX agents: an MLP Gaussian policy and an MLP value.

The same architectures and initialisation as :mod:`gaussrl.agents.torch.networks` (orthogonal
weights, gain sqrt(2) hidden, zero biases), written as Flax modules on ``gaussrl.models.jax``.
A torch ``Linear`` at ``net.{2i}`` corresponds to ``Dense_{i}`` here, its weight transposed
(:func:`params_from_torch`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gaussrl.core.spaces import SpaceLike
from gaussrl.models.jax import DeterministicMixin, GaussianMixin, Model

Activation = Literal["tanh", "relu"]
ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


def mlp(x: jax.Array, hidden_sizes: Sequence[int], num_outputs: int, activation: Activation, gain: float) -> jax.Array:
    """Apply an MLP (inside a compact ``__call__``): orthogonal init, gain sqrt(2) hidden and ``gain`` last.

    Orthogonal initialisation with a small policy-output gain follows Andrychowicz et al. (2021).

    Args:
        x: Inputs, shape (N, F).
        hidden_sizes: Hidden layer widths.
        num_outputs: Output features.
        activation: ``"tanh"`` or ``"relu"`` between layers.
        gain: Orthogonal gain of the last layer.

    Returns:
        Shape (N, num_outputs).
    """
    for size in hidden_sizes:
        x = ACTIVATIONS[activation](nn.Dense(size, kernel_init=nn.initializers.orthogonal(math.sqrt(2.0)))(x))
    return nn.Dense(num_outputs, kernel_init=nn.initializers.orthogonal(gain))(x)


class GaussianMLPPolicy(GaussianMixin, Model):
    """Diagonal Gaussian policy with an MLP mean and a free log-std parameter (PPO's policy).

    Args:
        observation_space: Observation space.
        action_space: Action space (the normalised Box).
        hidden_sizes: Hidden layer widths.
        activation: Hidden activation.
        initial_log_std: Initial value of the log-std parameter.
        device: Device.
    """

    def __init__(
        self,
        observation_space: SpaceLike = None,
        action_space: SpaceLike = None,
        *,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: Activation = "tanh",
        initial_log_std: float = 0.0,
        device: str | jax.Device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        GaussianMixin.__init__(self, min_log_std=-20.0, max_log_std=2.0)
        self.hidden_sizes, self.activation = tuple(hidden_sizes), activation
        self.initial_log_std = float(initial_log_std)

    @nn.compact
    def __call__(self, inputs: Mapping[str, Any], role: str = "") -> tuple[jax.Array, dict[str, Any]]:
        """Mean actions (N, A) and ``{"log_std": (A,)}``.

        Args:
            inputs: ``{"observations": (N, num_observations)}``.
            role: Unused.

        Returns:
            Mean actions and the log-std parameter.
        """
        mean = mlp(inputs["observations"], self.hidden_sizes, self.num_actions, self.activation, 0.01)
        log_std = self.param("log_std", nn.initializers.constant(self.initial_log_std), (self.num_actions,))
        return mean, {"log_std": log_std}


class ValueMLP(DeterministicMixin, Model):
    """State-value function V(s).

    Args:
        observation_space: Observation space.
        hidden_sizes: Hidden layer widths.
        activation: Hidden activation.
        device: Device.
    """

    def __init__(
        self,
        observation_space: SpaceLike = None,
        *,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: Activation = "tanh",
        device: str | jax.Device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=1, device=device)
        DeterministicMixin.__init__(self)
        self.hidden_sizes, self.activation = tuple(hidden_sizes), activation

    @nn.compact
    def __call__(self, inputs: Mapping[str, Any], role: str = "") -> tuple[jax.Array, dict[str, Any]]:
        """Values (N, 1).

        Args:
            inputs: ``{"observations": (N, num_observations)}``.
            role: Unused.

        Returns:
            Values and an empty dict.
        """
        return mlp(inputs["observations"], self.hidden_sizes, 1, self.activation, 1.0), {}


def params_from_torch(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Flax parameters of an MLP network from the ``state_dict`` of its torch twin.

    Args:
        state_dict: A torch ``GaussianMLPPolicy``/``ValueMLP`` state dict (``net.{k}.weight``/``.bias``,
            optionally ``log_std_parameter``); tensors or arrays.

    Returns:
        ``{"params": {"Dense_i": {"kernel", "bias"}, ["log_std"]}}``.
    """
    arrays = {
        name: np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        for name, value in state_dict.items()
    }
    layers = sorted({int(name.split(".")[1]) for name in arrays if name.startswith("net.")})
    params: dict[str, Any] = {
        f"Dense_{i}": {"kernel": jnp.asarray(arrays[f"net.{k}.weight"].T), "bias": jnp.asarray(arrays[f"net.{k}.bias"])}
        for i, k in enumerate(layers)
    }
    if "log_std_parameter" in arrays:
        params["log_std"] = jnp.asarray(arrays["log_std_parameter"])
    return {"params": params}
