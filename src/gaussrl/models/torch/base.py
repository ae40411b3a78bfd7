"""The PyTorch ``Model`` base class: spaces, devices, parameters and files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from gaussrl.core.atomic import write_atomic
from gaussrl.core.checks import check_act_inputs
from gaussrl.core.errors import (
    MODEL_READY_ATTRIBUTE,
    check_mixin_order,
    check_polyak,
    missing_compute_error,
    no_act_error,
)
from gaussrl.core.mixin import input_layout
from gaussrl.core.spaces import SpaceLike, space_size

INITIALIZERS = {
    "uniform_": nn.init.uniform_,
    "normal_": nn.init.normal_,
    "trunc_normal_": nn.init.trunc_normal_,
    "constant_": nn.init.constant_,
    "ones_": nn.init.ones_,
    "zeros_": nn.init.zeros_,
    "eye_": nn.init.eye_,
    "dirac_": nn.init.dirac_,
    "xavier_uniform_": nn.init.xavier_uniform_,
    "xavier_normal_": nn.init.xavier_normal_,
    "kaiming_uniform_": nn.init.kaiming_uniform_,
    "kaiming_normal_": nn.init.kaiming_normal_,
    "orthogonal_": nn.init.orthogonal_,
    "sparse_": nn.init.sparse_,
}
"""The ``torch.nn.init`` functions that ``init_parameters``/``init_weights``/``init_biases`` accept."""


def _initializer(method_name: str) -> Any:
    try:
        return INITIALIZERS[method_name]
    except KeyError:
        raise ValueError(
            f"unknown initialiser {method_name!r}; expected one of {sorted(INITIALIZERS)} (torch.nn.init "
            f"functions, named with their trailing underscore)."
        ) from None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device a model lives on: the one given, else ``cuda:0`` when available, else CPU.

    Args:
        device: A device or its name, or None.

    Returns:
        The device.
    """
    if device is None:
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Model(nn.Module):
    """Base class of every gaussrl PyTorch model.

    Subclasses list a mixin first and ``Model`` last (``class Policy(GaussianMixin, Model)``),
    call ``Model.__init__`` before the mixin's ``__init__``, and implement ``compute``.

    Args:
        observation_space: Observation space (a gymnasium space, an int size or a shape).
        state_space: State space, for models that see the environment's state.
        action_space: Action space.
        device: Device of the model; ``cuda:0`` when available, else CPU, if None.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_mixin_order(cls, Model)

    def __init__(
        self,
        observation_space: SpaceLike = None,
        state_space: SpaceLike = None,
        action_space: SpaceLike = None,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.state_space = state_space
        self.action_space = action_space
        self.num_observations = space_size(observation_space)
        self.num_states = space_size(state_space)
        self.num_actions = space_size(action_space)
        self.device = resolve_device(device)
        self._input_layout = input_layout(self)
        self._generator: torch.Generator | None = None
        """The generator of ``act()``'s noise after :meth:`seed`; None: torch's global generator."""
        setattr(self, MODEL_READY_ATTRIBUTE, True)

    def seed(self, seed: int | None) -> None:
        """Make the model's samples reproducible: ``act()`` draws its noise from a generator seeded here.

        Without a call (or after ``seed(None)``) the noise comes from torch's global generator
        (``torch.manual_seed``). A seeded model cannot sample under ``torch.func.vmap``, which
        supports only the global generator.

        Args:
            seed: Seed of the model's own generator, or None for torch's global one.
        """
        self._generator = None if seed is None else torch.Generator(self.device).manual_seed(seed)

    def check_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Check that observations and states are batched as ``(N, size)`` or ``(N, *space.shape)``.

        Args:
            inputs: Model inputs.

        Raises:
            ValueError: If an input has another shape.
        """
        # The parameters' dtype is looked up (~6 us) only for observations not in torch's default dtype.
        observations = inputs.get("observations") if isinstance(inputs, Mapping) else None
        default = getattr(observations, "dtype", None) in (None, torch.get_default_dtype())
        dtype = None if default else next((p.dtype for p in self.parameters()), None)
        check_act_inputs(
            inputs, self._input_layout, self.num_actions, array_types=(torch.Tensor,), backend="torch", dtype=dtype
        )

    def compute(self, inputs: Mapping[str, Any], role: str = "") -> tuple[Any, dict[str, Any]]:
        """Run the network; subclasses implement it.

        Args:
            inputs: Model inputs (``"observations"``, ``"states"``, ``"taken_actions"``, ...).
            role: Role played by the model.

        Returns:
            The network output and a dict of extra outputs.
        """
        raise missing_compute_error(type(self).__name__)

    def act(self, inputs: Mapping[str, Any], *, role: str = "") -> tuple[Any, dict[str, Any]]:
        """Act in response to the inputs; provided by a mixin.

        Args:
            inputs: Model inputs.
            role: Role played by the model.

        Returns:
            Actions and extra outputs.
        """
        raise no_act_error(type(self).__name__)

    def forward(self, inputs: Mapping[str, Any], role: str = "") -> tuple[Any, dict[str, Any]]:
        """Same as :meth:`act`, so that ``model(inputs)`` works.

        Args:
            inputs: Model inputs.
            role: Role played by the model.

        Returns:
            Actions and extra outputs.
        """
        return self.act(inputs, role=role)

    def init_state_dict(self, *, role: str = "", inputs: Mapping[str, Any] | None = None) -> None:
        """Materialise lazily-shaped parameters by running one forward pass on zeros.

        Models without lazy modules need no call; it is harmless for them.

        Args:
            role: Role played by the model.
            inputs: Example inputs; zeros of the observation/state space if None.
        """
        if not any(isinstance(module, nn.modules.lazy.LazyModuleMixin) for module in self.modules()):
            return
        if inputs is None:
            inputs = {key: torch.zeros((1, size), device=self.device) for key, size, _ in self._input_layout}
        with torch.no_grad():
            self.act(inputs, role=role)

    def random_act(self, inputs: Mapping[str, Any], *, role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
        """Uniformly random actions within a Box's bounds (standard normal where unbounded).

        Args:
            inputs: Model inputs; their batch size sets the number of actions.
            role: Role played by the model.

        Returns:
            Actions of shape (N, num_actions) and an empty dict.
        """
        batch = next(iter(v for v in inputs.values() if hasattr(v, "shape"))).shape[0]
        shape = (batch, self.num_actions)
        if isinstance(self.action_space, gymnasium.spaces.Box) and self.action_space.is_bounded():
            low = torch.as_tensor(np.asarray(self.action_space.low).reshape(-1), device=self.device)
            high = torch.as_tensor(np.asarray(self.action_space.high).reshape(-1), device=self.device)
            return low + (high - low) * torch.rand(shape, device=self.device, dtype=low.dtype), {}
        return torch.randn(shape, device=self.device), {}

    def get_specification(self) -> dict[str, Any]:
        """Describe what the model needs from the agent (e.g. RNN hidden-state sizes).

        Returns:
            An empty dict; recurrent models return ``{"rnn": {"sequence_length": L, "sizes": [...]}}``.
        """
        return {}

    def init_parameters(self, method_name: str = "normal_", *args: Any, **kwargs: Any) -> None:
        """Initialise every parameter with a ``torch.nn.init`` function from the allow-list.

        Args:
            method_name: Name in :data:`INITIALIZERS`.
            *args: Passed to the initialiser after the tensor.
            **kwargs: Passed to the initialiser.
        """
        initializer = _initializer(method_name)
        with torch.no_grad():
            for parameter in self.parameters():
                initializer(parameter, *args, **kwargs)

    def init_weights(self, method_name: str = "orthogonal_", *args: Any, **kwargs: Any) -> None:
        """Initialise the weights (parameters named ``weight``) of every submodule.

        Args:
            method_name: Name in :data:`INITIALIZERS`.
            *args: Passed to the initialiser after the tensor.
            **kwargs: Passed to the initialiser.
        """
        initializer = _initializer(method_name)
        with torch.no_grad():
            for name, parameter in self.named_parameters():
                if name.rsplit(".", 1)[-1].startswith("weight"):
                    initializer(parameter, *args, **kwargs)

    def init_biases(self, method_name: str = "constant_", *args: Any, **kwargs: Any) -> None:
        """Initialise the biases (parameters named ``bias``) of every submodule.

        Args:
            method_name: Name in :data:`INITIALIZERS`.
            *args: Passed to the initialiser after the tensor (e.g. the constant).
            **kwargs: Passed to the initialiser.
        """
        initializer = _initializer(method_name)
        if method_name == "constant_" and not args and "val" not in kwargs:
            args = (0.0,)
        with torch.no_grad():
            for name, parameter in self.named_parameters():
                if name.rsplit(".", 1)[-1].startswith("bias"):
                    initializer(parameter, *args, **kwargs)

    def freeze_parameters(self, freeze: bool = True) -> None:
        """Stop (or restart) gradient tracking for every parameter.

        Args:
            freeze: True to freeze, False to unfreeze.
        """
        for parameter in self.parameters():
            parameter.requires_grad_(not freeze)

    def update_parameters(self, model: nn.Module, *, polyak: float = 1.0) -> None:
        """Copy (``polyak=1``) or move towards (``0 < polyak < 1``) another model's parameters.

        ``theta <- polyak * theta_model + (1 - polyak) * theta``, as in soft target updates.

        Args:
            model: Source model with the same parameter names and shapes.
            polyak: Interpolation factor in [0, 1].

        Raises:
            ValueError: If ``polyak`` is outside [0, 1].
        """
        check_polyak(polyak)
        with torch.no_grad():
            for target, source in zip(self.parameters(), model.parameters(), strict=True):
                if polyak == 1.0:
                    target.copy_(source)
                else:
                    target.lerp_(source, polyak)

    def enable_training_mode(self, enabled: bool = True) -> None:
        """Switch training mode (dropout, batch norm) on or off.

        Args:
            enabled: True for training mode, False for evaluation mode.
        """
        self.train(enabled)

    def save(self, path: str | os.PathLike[str], state_dict: Mapping[str, torch.Tensor] | None = None) -> None:
        """Write the parameters to a safetensors file, atomically.

        Args:
            path: Destination file (conventionally ``*.safetensors``).
            state_dict: Tensors to write; this model's ``state_dict()`` if None.
        """
        tensors = {k: v.detach().contiguous().clone() for k, v in (state_dict or self.state_dict()).items()}
        write_atomic(path, lambda tmp: save_file(tensors, str(tmp)))

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load parameters written by :meth:`save` (or a ``.pt`` file of plain tensors).

        Never unpickles code: safetensors holds tensors only, and ``.pt`` files are read with
        ``torch.load(..., weights_only=True)``.

        Args:
            path: A ``.safetensors`` or ``.pt`` file.
        """
        if Path(path).suffix == ".safetensors":
            state_dict = load_file(str(path), device=str(self.device))
        else:
            state_dict = torch.load(path, map_location=self.device, weights_only=True)
        self.load_state_dict(state_dict)
