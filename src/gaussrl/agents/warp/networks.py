"""The default networks of gaussrl's Warp agents: MLP Gaussian policies, values and Q-functions.

The Warp counterparts of :mod:`gaussrl.agents.torch.networks`, with the same layers, shapes and
initialisation scheme (orthogonal, gain sqrt(2) hidden, zero biases), built from the layers of
:mod:`gaussrl.agents.warp.dense` (``Dense``: a ``warp_nn`` ``Linear`` with our kernels; ``Tanh``,
``ReLU``) on the ``gaussrl.models.warp`` mixins. Inputs are already-normalised observations;
actions live in the normalised Box ``[-1, 1]^A``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import warp as wp
from warp_nn import nn

from gaussrl.agents.config import Initialization
from gaussrl.agents.warp.dense import Dense, ReLU, Tanh
from gaussrl.agents.warp.kernels import concat_kernel, split_kernel
from gaussrl.core.spaces import SpaceLike
from gaussrl.models.warp import DeterministicMixin, GaussianMixin, Model

Activation = Literal["tanh", "relu"]
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": Tanh, "relu": ReLU}
__all__ = ["QMLP", "GaussianMLPPolicy", "ValueMLP", "mlp", "orthogonal"]


def orthogonal(rng: np.random.Generator, rows: int, cols: int, gain: float) -> np.ndarray:
    """A (rows, cols) matrix with orthonormal rows or columns, times ``gain`` (Saxe et al., 2014).

    Args:
        rng: Source of the Gaussian matrix that is orthogonalised.
        rows: Output features.
        cols: Input features.
        gain: Scale.

    Returns:
        Float32 array.
    """
    q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
    q = q * np.sign(np.diag(r))  # the sign fix makes the distribution uniform (Mezzadri, 2007)
    return (gain * (q if rows >= cols else q.T)).astype(np.float32)


def mlp(
    num_inputs: int,
    hidden_sizes: Sequence[int],
    num_outputs: int,
    *,
    activation: Activation,
    output_gain: float,
    rng: np.random.Generator,
    initialization: Initialization = "orthogonal",
) -> nn.Sequential:
    """An MLP of :class:`Dense` layers and our activations, initialised as the torch agents' ``mlp``.

    Args:
        num_inputs: Input features.
        hidden_sizes: Hidden layer widths.
        num_outputs: Output features.
        activation: ``"tanh"`` or ``"relu"`` between layers.
        output_gain: Orthogonal gain of the last layer.
        rng: Source of the initial weights.
        initialization: ``"orthogonal"`` or ``"uniform"`` (weights and biases in +-1/sqrt(fan_in); gains unused).

    Returns:
        The network.
    """
    sizes = [num_inputs, *hidden_sizes, num_outputs]
    layers: list[nn.Module] = []
    for index in range(len(sizes) - 1):
        layer = Dense(sizes[index], sizes[index + 1])
        fan_in, fan_out = sizes[index], sizes[index + 1]
        if initialization == "uniform":
            bound = 1.0 / math.sqrt(fan_in)
            layer.weight.data.assign(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
            layer.bias.data.assign(rng.uniform(-bound, bound, fan_out).astype(np.float32))
        else:
            gain = output_gain if index == len(sizes) - 2 else math.sqrt(2.0)
            layer.weight.data.assign(orthogonal(rng, fan_out, fan_in, gain))
            layer.bias.data.zero_()
        layers.append(layer)
        if index < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _fresh(shape: tuple[int, ...], like: wp.array) -> wp.array:
    return wp.empty(shape, dtype=like.dtype, device=like.device, requires_grad=like.requires_grad)


class GaussianMLPPolicy(GaussianMixin, Model):
    """Diagonal Gaussian policy with an MLP mean (see :class:`gaussrl.agents.torch.networks.GaussianMLPPolicy`).

    Args:
        observation_space: Observation space.
        action_space: Action space (the normalised Box).
        hidden_sizes: Hidden layer widths.
        activation: Hidden activation.
        initialization: ``"orthogonal"`` or ``"uniform"`` (see :func:`mlp`).
        state_dependent_std: Predict the log-std from the observation (SAC) instead of a free parameter (PPO).
        initial_log_std: Initial value of the free log-std parameter.
        squash_actions: Passed to ``GaussianMixin`` (``True`` for SAC's tanh-squashed policy).
        device: Warp device.
        seed: Seed of the initial weights and of the sampling.
    """

    def __init__(
        self,
        observation_space: SpaceLike,
        action_space: SpaceLike,
        *,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: Activation = "tanh",
        initialization: Initialization = "orthogonal",
        state_dependent_std: bool = False,
        initial_log_std: float = 0.0,
        squash_actions: bool = False,
        device: str | wp.Device | None = None,
        seed: int = 0,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        GaussianMixin.__init__(self, squash_actions=squash_actions, min_log_std=-20.0, max_log_std=2.0)
        rng = np.random.default_rng(seed)
        outputs = 2 * self.num_actions if state_dependent_std else self.num_actions
        with wp.ScopedDevice(self.device):
            size = (self.num_observations, hidden_sizes, outputs)
            self.net = mlp(*size, activation=activation, output_gain=0.01, rng=rng, initialization=initialization)
            log_std = np.full(self.num_actions, initial_log_std, np.float32)
            self.log_std_parameter = nn.Parameter(wp.array(log_std, dtype=wp.float32, device=self.device))
        self.state_dependent_std = state_dependent_std
        self.seed(seed)
        self.__post_init__()

    def compute(self, inputs: Mapping[str, Any], role: str = "") -> tuple[wp.array, dict[str, Any]]:
        """Mean actions and log-std.

        Args:
            inputs: ``{"observations": (N, num_observations)}``.
            role: Unused.

        Returns:
            Mean (N, A) and ``{"log_std": (A,) or (N, A)}``.
        """
        output = self.net(inputs["observations"])
        if not self.state_dependent_std:
            return output, {"log_std": self.log_std_parameter.data}
        shape = (output.shape[0], self.num_actions)
        mean, log_std = _fresh(shape, output), _fresh(shape, output)
        wp.launch(split_kernel, dim=shape, inputs=[output], outputs=[mean, log_std], device=output.device)
        return mean, {"log_std": log_std}


class ValueMLP(DeterministicMixin, Model):
    """State-value function V(s).

    Args:
        observation_space: Observation space.
        hidden_sizes: Hidden layer widths.
        activation: Hidden activation.
        initialization: ``"orthogonal"`` or ``"uniform"`` (see :func:`mlp`).
        device: Warp device.
        seed: Seed of the initial weights.
    """

    def __init__(
        self,
        observation_space: SpaceLike,
        *,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: Activation = "tanh",
        initialization: Initialization = "orthogonal",
        device: str | wp.Device | None = None,
        seed: int = 0,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=1, device=device)
        DeterministicMixin.__init__(self)
        with wp.ScopedDevice(self.device):
            rng = np.random.default_rng(seed)
            size = (self.num_observations, hidden_sizes, 1)
            self.net = mlp(*size, activation=activation, output_gain=1.0, rng=rng, initialization=initialization)
        self.__post_init__()

    def compute(self, inputs: Mapping[str, Any], role: str = "") -> tuple[wp.array, dict[str, Any]]:
        """Values.

        Args:
            inputs: ``{"observations": (N, num_observations)}``.
            role: Unused.

        Returns:
            Values (N, 1) and an empty dict.
        """
        return self.net(inputs["observations"]), {}


class QMLP(DeterministicMixin, Model):
    """Action-value function Q(s, a) on the concatenation of observation and action.

    Args:
        observation_space: Observation space.
        action_space: Action space.
        hidden_sizes: Hidden layer widths.
        device: Warp device.
        seed: Seed of the initial weights.
    """

    def __init__(
        self,
        observation_space: SpaceLike,
        action_space: SpaceLike,
        *,
        hidden_sizes: Sequence[int] = (256, 256),
        device: str | wp.Device | None = None,
        seed: int = 0,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        DeterministicMixin.__init__(self)
        with wp.ScopedDevice(self.device):
            rng = np.random.default_rng(seed)
            inputs = self.num_observations + self.num_actions
            self.net = mlp(inputs, hidden_sizes, 1, activation="relu", output_gain=1.0, rng=rng)
        self.__post_init__()

    def compute(self, inputs: Mapping[str, Any], role: str = "") -> tuple[wp.array, dict[str, Any]]:
        """Q-values.

        Args:
            inputs: ``{"observations": (N, num_observations), "taken_actions": (N, A)}``.
            role: Unused.

        Returns:
            Q-values (N, 1) and an empty dict.
        """
        observations, actions = inputs["observations"], inputs["taken_actions"]
        grad = observations.requires_grad or actions.requires_grad
        joined = wp.empty(
            (observations.shape[0], observations.shape[1] + actions.shape[1]),
            dtype=observations.dtype,
            device=observations.device,
            requires_grad=grad,
        )
        inputs_ = [observations, actions]
        wp.launch(concat_kernel, dim=joined.shape, inputs=inputs_, outputs=[joined], device=joined.device)
        return self.net(joined), {}
