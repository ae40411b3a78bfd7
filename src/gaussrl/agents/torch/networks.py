"""The default networks of gaussrl's torch agents: MLP Gaussian policies, values and Q-functions.

All of them are ``Model`` subclasses with a mixin, so they follow the skrl model API. Inputs are
already-normalised observations; actions live in the normalised Box ``[-1, 1]^A`` (the
environment wrapper rescales them). The recurrent models are in
:mod:`gaussrl.agents.torch.recurrent`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gaussrl.agents.config import Initialization
from gaussrl.core.spaces import SpaceLike
from gaussrl.models.torch import DeterministicMixin, GaussianMixin, Model

Activation = Literal["tanh", "relu"]
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(
    num_inputs: int,
    hidden_sizes: Sequence[int],
    num_outputs: int,
    *,
    activation: Activation,
    output_gain: float,
    initialization: Initialization = "orthogonal",
) -> nn.Sequential:
    """An MLP with orthogonal initialisation (gain sqrt(2) hidden, ``output_gain`` last; zero biases).

    Orthogonal initialisation with a small policy-output gain follows Andrychowicz et al. (2021),
    "What matters in on-policy RL", which found it among the choices that matter most for PPO.
    ``initialization="uniform"`` draws every weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    instead (``nn.Linear``'s default distribution; the gains are not used).

    Args:
        num_inputs: Input features.
        hidden_sizes: Hidden layer widths.
        num_outputs: Output features.
        activation: ``"tanh"`` or ``"relu"`` between layers.
        output_gain: Orthogonal gain of the last layer.
        initialization: ``"orthogonal"`` or ``"uniform"``.

    Returns:
        The network.
    """
    layers: list[nn.Module] = []
    sizes = [num_inputs, *hidden_sizes]
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [_linear(fan_in, fan_out, math.sqrt(2.0), initialization), ACTIVATIONS[activation]()]
    layers.append(_linear(sizes[-1], num_outputs, output_gain, initialization))
    return MLP(*layers)


class MLP(nn.Sequential):
    """A ``Sequential`` of ``Linear`` layers and activations whose forward calls the functions directly.

    Same parameters and state-dict keys as ``nn.Sequential``; skipping each layer's
    ``Module.__call__`` (hooks included) saves several microseconds per layer, which is most of
    the cost of a forward pass of a small network on one CPU thread.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layers in order.

        Args:
            x: Input, shape (..., in_features).

        Returns:
            Output, shape (..., out_features).
        """
        # An activation right after a Linear runs in place on the Linear's fresh output (its backward
        # needs only its own result, and Linear's backward not its output): one buffer per layer instead
        # of two, so the activations stay in cache.
        fresh = False
        for layer in self:
            if isinstance(layer, nn.Linear):
                x, fresh = F.linear(x, layer.weight, layer.bias), True
                continue
            if isinstance(layer, nn.Tanh):
                x = torch.tanh_(x) if fresh else torch.tanh(x)
            elif isinstance(layer, nn.ReLU):
                x = torch.relu_(x) if fresh else torch.relu(x)
            else:
                x = layer(x)
            fresh = False
        return x


def _linear(fan_in: int, fan_out: int, gain: float, initialization: Initialization) -> nn.Linear:
    layer = nn.Linear(fan_in, fan_out)
    if initialization == "uniform":
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(layer.weight, -bound, bound)
        nn.init.uniform_(layer.bias, -bound, bound)
        return layer
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


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
        observation_space: SpaceLike,
        action_space: SpaceLike,
        *,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: Activation = "tanh",
        initialization: Initialization = "orthogonal",
        state_dependent_std: bool = False,
        initial_log_std: float = 0.0,
        squash_actions: bool = False,
        device: str | torch.device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        # SAC's state-dependent log-std is bounded as in SB3/CleanRL: [-20, 2] keeps exp() finite.
        GaussianMixin.__init__(self, squash_actions=squash_actions, min_log_std=-20.0, max_log_std=2.0)
        outputs = 2 * self.num_actions if state_dependent_std else self.num_actions
        self.net = mlp(
            self.num_observations,
            hidden_sizes,
            outputs,
            activation=activation,
            output_gain=0.01,
            initialization=initialization,
        )
        self.state_dependent_std, self.squash_actions = state_dependent_std, squash_actions
        self.log_std_parameter = nn.Parameter(torch.full((self.num_actions,), float(initial_log_std)))
        self.to(self.device)

    def compute(self, inputs: Mapping[str, Any], role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
        """Mean actions and log-std.

        Args:
            inputs: ``{"observations": (N, num_observations)}``.
            role: Unused.

        Returns:
            Mean (N, A) and ``{"log_std": (A,) or (N, A)}``.
        """
        output = self.net(inputs["observations"])
        if self.state_dependent_std:
            mean, log_std = output.chunk(2, dim=-1)
            return mean, {"log_std": log_std}
        return output, {"log_std": self.log_std_parameter}


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
        observation_space: SpaceLike,
        *,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: Activation = "tanh",
        initialization: Initialization = "orthogonal",
        device: str | torch.device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=1, device=device)
        DeterministicMixin.__init__(self)
        self.net = mlp(
            self.num_observations,
            hidden_sizes,
            1,
            activation=activation,
            output_gain=1.0,
            initialization=initialization,
        )
        self.to(self.device)

    def compute(self, inputs: Mapping[str, Any], role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
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
        device: Device.
    """

    def __init__(
        self,
        observation_space: SpaceLike,
        action_space: SpaceLike,
        *,
        hidden_sizes: Sequence[int] = (256, 256),
        device: str | torch.device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        DeterministicMixin.__init__(self)
        self.net = mlp(self.num_observations + self.num_actions, hidden_sizes, 1, activation="relu", output_gain=1.0)
        self.to(self.device)

    def compute(self, inputs: Mapping[str, Any], role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
        """Q-values.

        Args:
            inputs: ``{"observations": (N, num_observations), "taken_actions": (N, A)}``.
            role: Unused.

        Returns:
            Q-values (N, 1) and an empty dict.
        """
        return self.net(torch.cat([inputs["observations"], inputs["taken_actions"]], dim=-1)), {}
