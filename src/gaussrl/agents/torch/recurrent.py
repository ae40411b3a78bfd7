"""Recurrent (RNN/GRU/LSTM) Gaussian policies and values, after the specification's skrl examples.

Hidden states travel through ``inputs["rnn"]`` (a list: ``[h]`` for RNN/GRU, ``[h, c]`` for
LSTM, each of shape (num_layers, B, hidden_size)) and come back in ``outputs["rnn"]``.
``get_specification()`` returns ``{"rnn": {"sequence_length": L, "sizes": [...]}}``; the
hidden-state helpers of the agents (:func:`rnn_sizes`, :func:`zero_states`, :func:`reset_states`)
read it.

With B hidden states and ``B * L`` observations the model runs B sequences of length L
(training); with ``L = 1`` it takes one step of B environments (rollout). ``inputs["terminated"]``
(shape (B * L, 1), episode ended after that step) resets the hidden state inside a sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from gaussrl.agents.config import Initialization
from gaussrl.agents.torch.networks import Activation, mlp
from gaussrl.core.errors import ConfigError
from gaussrl.core.spaces import SpaceLike
from gaussrl.models.torch import DeterministicMixin, GaussianMixin, Model
from gaussrl.models.torch.recurrent import run_sequences

Cell = Literal["rnn", "gru", "lstm"]
CELLS: dict[str, Callable[..., nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def rnn_sizes(model: Model) -> list[tuple[int, int, int]]:
    """Hidden-state shapes from a model's specification (empty for feed-forward models).

    Args:
        model: A model.

    Returns:
        ``[(num_layers, num_envs, hidden_size), ...]``.
    """
    return [(int(a), int(b), int(c)) for a, b, c in model.get_specification().get("rnn", {}).get("sizes", [])]


def zero_states(model: Model, batch: int) -> list[torch.Tensor]:
    """Zero hidden states of a recurrent model for ``batch`` environments (empty list otherwise).

    Args:
        model: A model.
        batch: Number of environments.

    Returns:
        One tensor of shape (num_layers, batch, hidden_size) per state.
    """
    return [torch.zeros((layers, batch, size), device=model.device) for layers, _, size in rnn_sizes(model)]


def reset_states(states: list[torch.Tensor], dones: torch.Tensor) -> list[torch.Tensor]:
    """Zero the hidden states of environments whose episode ended.

    Args:
        states: Each of shape (num_layers, N, hidden_size).
        dones: Shape (N, 1), bool.

    Returns:
        The states with ended environments zeroed.
    """
    if not states:
        return states
    keep = (~dones).to(torch.float32).view(1, -1, 1)
    return [s * keep for s in states]


class RecurrentCore(nn.Module):
    """A recurrent layer stack that runs rollout steps or training sequences with resets.

    Args:
        num_inputs: Input features.
        cell: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        hidden_size: Hidden features.
        num_layers: Stacked layers.

    Raises:
        ValueError: For an unknown cell.
    """

    def __init__(self, num_inputs: int, cell: Cell, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ConfigError(f"cell={cell!r} must be one of {sorted(CELLS)}.")
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.rnn = CELLS[cell](num_inputs, hidden_size, num_layers, batch_first=True)

    def sizes(self, batch: int) -> list[tuple[int, int, int]]:
        """Shapes of the hidden-state tensors for ``batch`` environments.

        Args:
            batch: Number of environments.

        Returns:
            One shape per tensor (two for LSTM).
        """
        return [(self.num_layers, batch, self.hidden_size)] * (2 if self.cell == "lstm" else 1)

    def forward(
        self, observations: torch.Tensor, states: Sequence[torch.Tensor], terminated: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run ``B`` sequences of ``L = len(observations) / B`` steps.

        Args:
            observations: Shape (B * L, num_inputs), sequence-major.
            states: Initial hidden states, each (num_layers, B, hidden_size).
            terminated: Optional, shape (B * L, 1): reset the state after these steps.

        Returns:
            Features (B * L, hidden_size) and the final hidden states.
        """
        batch = states[0].shape[1]
        length = observations.shape[0] // batch
        done = None if terminated is None else terminated.reshape(batch, length).bool()
        sequences = observations.reshape(batch, length, -1)
        out, final = run_sequences(self.rnn, sequences, [s.contiguous() for s in states], done)
        return out.reshape(batch * length, -1), final


class RecurrentGaussianPolicy(GaussianMixin, Model):
    """Gaussian policy whose mean is an MLP on a recurrent core's features.

    Args:
        observation_space: Observation space.
        action_space: Action space (the normalised Box).
        num_envs: Number of environments whose hidden states the agent keeps.
        cell: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        hidden_size: Recurrent hidden size.
        num_layers: Recurrent layers.
        sequence_length: Training sequence length L.
        hidden_sizes: MLP widths after the core.
        activation: Activation between the MLP's layers.
        initialization: ``"orthogonal"`` or ``"uniform"`` (see :func:`~gaussrl.agents.torch.networks.mlp`).
        initial_log_std: Initial log-std.
        device: Device.
    """

    def __init__(
        self,
        observation_space: SpaceLike,
        action_space: SpaceLike,
        *,
        num_envs: int,
        cell: Cell = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        sequence_length: int = 16,
        hidden_sizes: Sequence[int] = (64,),
        activation: Activation = "tanh",
        initialization: Initialization = "orthogonal",
        initial_log_std: float = 0.0,
        device: str | torch.device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=action_space, device=device)
        GaussianMixin.__init__(self)
        self.num_envs = num_envs
        self.sequence_length = sequence_length
        self.core = RecurrentCore(self.num_observations, cell, hidden_size, num_layers)
        self.net = mlp(
            hidden_size,
            hidden_sizes,
            self.num_actions,
            activation=activation,
            output_gain=0.01,
            initialization=initialization,
        )
        self.log_std_parameter = nn.Parameter(torch.full((self.num_actions,), float(initial_log_std)))
        self.to(self.device)

    def get_specification(self) -> dict[str, Any]:
        """The hidden states the agent must keep.

        Returns:
            ``{"rnn": {"sequence_length": L, "sizes": [(num_layers, num_envs, hidden_size), ...]}}``.
        """
        return {"rnn": {"sequence_length": self.sequence_length, "sizes": self.core.sizes(self.num_envs)}}

    def compute(self, inputs: Mapping[str, Any], role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
        """Mean actions, log-std and next hidden states.

        Args:
            inputs: ``"observations"``, ``"rnn"`` and optionally ``"terminated"``.
            role: Unused.

        Returns:
            Mean (B * L, A) and ``{"log_std", "rnn"}``.
        """
        features, states = self.core(inputs["observations"], inputs["rnn"], inputs.get("terminated"))
        return self.net(features), {"log_std": self.log_std_parameter, "rnn": states}


class RecurrentValue(DeterministicMixin, Model):
    """State-value function on a recurrent core's features.

    Args:
        observation_space: Observation space.
        num_envs: Number of environments whose hidden states the agent keeps.
        cell: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        hidden_size: Recurrent hidden size.
        num_layers: Recurrent layers.
        sequence_length: Training sequence length L.
        hidden_sizes: MLP widths after the core.
        activation: Activation between the MLP's layers.
        initialization: ``"orthogonal"`` or ``"uniform"`` (see :func:`~gaussrl.agents.torch.networks.mlp`).
        device: Device.
    """

    def __init__(
        self,
        observation_space: SpaceLike,
        *,
        num_envs: int,
        cell: Cell = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        sequence_length: int = 16,
        hidden_sizes: Sequence[int] = (64,),
        activation: Activation = "tanh",
        initialization: Initialization = "orthogonal",
        device: str | torch.device | None = None,
    ) -> None:
        Model.__init__(self, observation_space=observation_space, action_space=1, device=device)
        DeterministicMixin.__init__(self)
        self.num_envs = num_envs
        self.sequence_length = sequence_length
        self.core = RecurrentCore(self.num_observations, cell, hidden_size, num_layers)
        self.net = mlp(
            hidden_size, hidden_sizes, 1, activation=activation, output_gain=1.0, initialization=initialization
        )
        self.to(self.device)

    def get_specification(self) -> dict[str, Any]:
        """The hidden states the agent must keep.

        Returns:
            ``{"rnn": {"sequence_length": L, "sizes": [(num_layers, num_envs, hidden_size), ...]}}``.
        """
        return {"rnn": {"sequence_length": self.sequence_length, "sizes": self.core.sizes(self.num_envs)}}

    def compute(self, inputs: Mapping[str, Any], role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
        """Values and next hidden states.

        Args:
            inputs: ``"observations"``, ``"rnn"`` and optionally ``"terminated"``.
            role: Unused.

        Returns:
            Values (B * L, 1) and ``{"rnn"}``.
        """
        features, states = self.core(inputs["observations"], inputs["rnn"], inputs.get("terminated"))
        return self.net(features), {"rnn": states}
