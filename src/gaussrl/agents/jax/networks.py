"""The default networks of gaussrl's JAX agents: MLP Gaussian policies, values and Q-functions.

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

from gaussrl.agents.config import Initialization
from gaussrl.core.spaces import SpaceLike
from gaussrl.models.jax import DeterministicMixin, GaussianMixin, Model

Activation = Literal["tanh", "relu"]
ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


def mlp(
    x: jax.Array,
    hidden_sizes: Sequence[int],
    num_outputs: int,
    activation: Activation,
    gain: float,
    *,
    initialization: Initialization = "orthogonal",
) -> jax.Array:
    """Apply an MLP (inside a compact ``__call__``): orthogonal init, gain sqrt(2) hidden and ``gain`` last.

    Orthogonal initialisation with a small policy-output gain follows Andrychowicz et al. (2021).
    ``initialization="uniform"`` draws every weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    instead (the gains are not used), as :func:`gaussrl.agents.torch.networks.mlp`.

    Args:
        x: Inputs, shape (N, F).
        hidden_sizes: Hidden layer widths.
        num_outputs: Output features.
        activation: ``"tanh"`` or ``"relu"`` between layers.
        gain: Orthogonal gain of the last layer.
        initialization: ``"orthogonal"`` or ``"uniform"``.

    Returns:
        Shape (N, num_outputs).
    """
    for size in hidden_sizes:
        x = ACTIVATIONS[activation](_dense(size, x.shape[-1], math.sqrt(2.0), initialization)(x))
    return _dense(num_outputs, x.shape[-1], gain, initialization)(x)


def _dense(features: int, fan_in: int, gain: float, initialization: Initialization) -> nn.Dense:
    if initialization == "uniform":
        bound = 1.0 / math.sqrt(fan_in)
        uniform = _symmetric_uniform(bound)
        return nn.Dense(features, kernel_init=uniform, bias_init=uniform)
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(gain))


def _symmetric_uniform(bound: float) -> Any:
    """A Flax initializer drawing from U(-bound, bound)."""

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class GaussianMLPPolicy(GaussianMixin, Model):
    """Diagonal Gaussian policy with an MLP mean.

    Args:
        observation_space: Observation space.
        action_space: Action space (the normalised Box).
        hidden_sizes: Hidden layer widths.
        activation: Hidden activation.
        initialization: ``"orthogonal"`` or ``"uniform"`` (see :func:`mlp`).
        state_dependent_std: Predict the log-std from the observation (SAC) instead of a free
            parameter (PPO).
        initial_log_std: Initial value of the free log-std parameter.
        squash_actions: Passed to ``GaussianMixin`` (``True`` for SAC's tanh-squashed policy).
        device: Device.
    """

    def __init__(
        self,
        observation_space: SpaceLike = None,
        action_space: SpaceLike = None,
        *,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: Activation = "tanh",
        initialization: Initialization = "orthogonal",
        state_dependent_std: bool = False,
        initial_log_std: float = 0.0,
        squash_actions: bool = False,
        device: str | jax.Device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        # SAC's state-dependent log-std is bounded as in SB3/CleanRL: [-20, 2] keeps exp() finite.
        GaussianMixin.__init__(self, squash_actions=squash_actions, min_log_std=-20.0, max_log_std=2.0)
        self.hidden_sizes, self.activation, self.initialization = tuple(hidden_sizes), activation, initialization
        self.state_dependent_std, self.initial_log_std = state_dependent_std, float(initial_log_std)

    @nn.compact
    def __call__(self, inputs: Mapping[str, Any], role: str = "") -> tuple[jax.Array, dict[str, Any]]:
        """Mean actions (N, A) and ``{"log_std": (A,) or (N, A)}``.

        Args:
            inputs: ``{"observations": (N, num_observations)}``.
            role: Unused.

        Returns:
            Mean actions and the log-std (the parameter, or predicted with ``state_dependent_std``).
        """
        outputs = 2 * self.num_actions if self.state_dependent_std else self.num_actions
        output = mlp(
            inputs["observations"],
            self.hidden_sizes,
            outputs,
            self.activation,
            0.01,
            initialization=self.initialization,
        )
        # Created in both cases, as the torch twin's log_std_parameter is (unused with state_dependent_std).
        log_std = self.param("log_std", nn.initializers.constant(self.initial_log_std), (self.num_actions,))
        if self.state_dependent_std:
            mean, predicted = jnp.split(output, 2, axis=-1)
            return mean, {"log_std": predicted}
        return output, {"log_std": log_std}


class ValueMLP(DeterministicMixin, Model):
    """State-value function V(s).

    Args:
        observation_space: Observation space.
        hidden_sizes: Hidden layer widths.
        activation: Hidden activation.
        initialization: ``"orthogonal"`` or ``"uniform"`` (see :func:`mlp`).
        device: Device.
    """

    def __init__(
        self,
        observation_space: SpaceLike = None,
        *,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: Activation = "tanh",
        initialization: Initialization = "orthogonal",
        device: str | jax.Device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=1, device=device)
        DeterministicMixin.__init__(self)
        self.hidden_sizes, self.activation, self.initialization = tuple(hidden_sizes), activation, initialization

    @nn.compact
    def __call__(self, inputs: Mapping[str, Any], role: str = "") -> tuple[jax.Array, dict[str, Any]]:
        """Values (N, 1).

        Args:
            inputs: ``{"observations": (N, num_observations)}``.
            role: Unused.

        Returns:
            Values and an empty dict.
        """
        return mlp(
            inputs["observations"], self.hidden_sizes, 1, self.activation, 1.0, initialization=self.initialization
        ), {}


class QMLP(DeterministicMixin, Model):
    """Action-value function Q(s, a) on the concatenation of observation and action (SAC's critics).

    Args:
        observation_space: Observation space.
        action_space: Action space.
        hidden_sizes: Hidden layer widths.
        device: Device.
    """

    def __init__(
        self,
        observation_space: SpaceLike = None,
        action_space: SpaceLike = None,
        *,
        hidden_sizes: Sequence[int] = (256, 256),
        device: str | jax.Device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        DeterministicMixin.__init__(self)
        self.hidden_sizes = tuple(hidden_sizes)

    @nn.compact
    def __call__(self, inputs: Mapping[str, Any], role: str = "") -> tuple[jax.Array, dict[str, Any]]:
        """Q-values (N, 1).

        Args:
            inputs: ``{"observations": (N, num_observations), "taken_actions": (N, A)}``.
            role: Unused.

        Returns:
            Q-values and an empty dict.
        """
        x = jnp.concatenate([inputs["observations"], inputs["taken_actions"]], axis=-1)
        return mlp(x, self.hidden_sizes, 1, "relu", 1.0), {}


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


def params_to_torch(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The ``state_dict`` of an MLP network's torch twin from its Flax parameters (:func:`params_from_torch` inverted).

    Args:
        params: ``{"params": {"Dense_i": {"kernel", "bias"}, ["log_std"]}}``.

    Returns:
        ``net.{2 i}.weight`` (out, in) and ``net.{2 i}.bias`` for ``Dense_i`` (the torch ``Sequential``
        puts an activation between two layers), and ``log_std_parameter`` where there is one; NumPy copies.
    """
    layers = params["params"]
    arrays: dict[str, np.ndarray] = {}
    for i in range(sum(name.startswith("Dense_") for name in layers)):
        arrays[f"net.{2 * i}.weight"] = np.array(layers[f"Dense_{i}"]["kernel"]).T.copy()
        arrays[f"net.{2 * i}.bias"] = np.array(layers[f"Dense_{i}"]["bias"])
    if "log_std" in layers:
        arrays["log_std_parameter"] = np.array(layers["log_std"])
    return arrays
