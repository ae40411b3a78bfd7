"""The default networks of gaussrl's JAX agents: MLP Gaussian policies, values and Q-functions.

The same architectures, initialisation and names as :mod:`gaussrl.agents.torch.networks`, as
Flax modules with the JAX mixins, so they follow the skrl model API (``act(..., params=, key=)``).
Inputs are already-normalised observations; actions live in the normalised Box ``[-1, 1]^A``.
The layers are ``Dense_0``, ``Dense_1``, ...: torch's ``net.{2 i}`` (a Flax kernel is the
transpose of a torch weight).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from gaussrl.core.spaces import SpaceLike
from gaussrl.models.jax import DeterministicMixin, GaussianMixin, Model

Activation = Literal["tanh", "relu"]
ACTIVATIONS = {"tanh": jnp.tanh, "relu": nn.relu}


def mlp_apply(
    x: jax.Array, hidden_sizes: Sequence[int], num_outputs: int, *, activation: Activation, output_gain: float
) -> jax.Array:
    """An MLP with orthogonal initialisation (gain sqrt(2) hidden, ``output_gain`` last; zero biases).

    Called inside a compact ``__call__``; see :func:`gaussrl.agents.torch.networks.mlp` for the choice.

    Args:
        x: Input, shape (N, num_inputs).
        hidden_sizes: Hidden layer widths.
        num_outputs: Output features.
        activation: ``"tanh"`` or ``"relu"`` between layers.
        output_gain: Orthogonal gain of the last layer.

    Returns:
        Output, shape (N, num_outputs).
    """
    hidden_init = nn.initializers.orthogonal(math.sqrt(2.0))
    for width in hidden_sizes:
        x = ACTIVATIONS[activation](nn.Dense(width, kernel_init=hidden_init, bias_init=nn.initializers.zeros)(x))
    output_init = nn.initializers.orthogonal(output_gain)
    return nn.Dense(num_outputs, kernel_init=output_init, bias_init=nn.initializers.zeros)(x)


class GaussianMLPPolicy(GaussianMixin, Model):
    """Diagonal Gaussian policy with an MLP mean.

    Args:
        observation_space: Observation space.
        action_space: Action space (the normalised Box).
        hidden_sizes: Hidden layer widths.
        activation: Hidden activation.
        state_dependent_std: Predict the log-std from the observation (SAC) instead of a free
            parameter (PPO).
        initial_log_std: Initial value of the free log-std parameter.
        squash_actions: Passed to ``GaussianMixin`` (``True`` for SAC's tanh-squashed policy).
        device: Device.
    """

    def __init__(
        self,
        observation_space: SpaceLike,
        action_space: SpaceLike,
        *,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: Activation = "tanh",
        state_dependent_std: bool = False,
        initial_log_std: float = 0.0,
        squash_actions: bool = False,
        device: str | jax.Device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        GaussianMixin.__init__(self, squash_actions=squash_actions, min_log_std=-20.0, max_log_std=2.0)
        self.hidden_sizes, self.activation = tuple(hidden_sizes), activation
        self.state_dependent_std, self.initial_log_std = state_dependent_std, float(initial_log_std)

    @nn.compact
    def __call__(self, inputs: Mapping[str, Any], role: str = "") -> tuple[jax.Array, dict[str, Any]]:
        """Mean actions and log-std.

        Args:
            inputs: ``{"observations": (N, num_observations)}``.
            role: Unused.

        Returns:
            Mean (N, A) and ``{"log_std": (A,) or (N, A)}``.
        """
        outputs = 2 * self.num_actions if self.state_dependent_std else self.num_actions
        output = mlp_apply(
            inputs["observations"], self.hidden_sizes, outputs, activation=self.activation, output_gain=0.01
        )
        log_std = self.param("log_std_parameter", nn.initializers.constant(self.initial_log_std), (self.num_actions,))
        if self.state_dependent_std:
            mean, state_log_std = jnp.split(output, 2, axis=-1)
            return mean, {"log_std": state_log_std}
        return output, {"log_std": log_std}


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
        observation_space: SpaceLike,
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
        """Values.

        Args:
            inputs: ``{"observations": (N, num_observations)}``.
            role: Unused.

        Returns:
            Values (N, 1) and an empty dict.
        """
        return mlp_apply(inputs["observations"], self.hidden_sizes, 1, activation=self.activation, output_gain=1.0), {}


class QMLP(DeterministicMixin, Model):
    """Action-value function Q(s, a) on the concatenation of observation and action.

    Args:
        observation_space: Observation space.
        action_space: Action space.
        hidden_sizes: Hidden layer widths.
        device: Device.
    """

    def __init__(
        self,
        observation_space: SpaceLike,
        action_space: SpaceLike,
        *,
        hidden_sizes: Sequence[int] = (256, 256),
        device: str | jax.Device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        DeterministicMixin.__init__(self)
        self.hidden_sizes = tuple(hidden_sizes)

    @nn.compact
    def __call__(self, inputs: Mapping[str, Any], role: str = "") -> tuple[jax.Array, dict[str, Any]]:
        """Q-values.

        Args:
            inputs: ``{"observations": (N, num_observations), "taken_actions": (N, A)}``.
            role: Unused.

        Returns:
            Q-values (N, 1) and an empty dict.
        """
        x = jnp.concatenate([inputs["observations"], inputs["taken_actions"]], axis=-1)
        return mlp_apply(x, self.hidden_sizes, 1, activation="relu", output_gain=1.0), {}
