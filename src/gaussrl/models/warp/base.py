"""The Warp ``Model`` base class: spaces, devices, parameters, randomness and files.

A model is a ``warp_nn`` module. As for any ``warp_nn`` module, its layers and parameters are
registered by ``self.__post_init__()`` at the end of ``__init__``; here that call also moves
them to the model's device (``act()`` makes it if it was forgotten).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import warp as wp
from warp_nn import initializers, nn
from warp_nn.modules.buffer import Buffer
from warp_nn.modules.parameter import Parameter

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
from gaussrl.models.warp.kernels import check_array, lerp_kernel, random_kernel

INITIALIZERS = {
    "constant": initializers.constant,
    "ones": initializers.ones,
    "zeros": initializers.zeros,
    "kaiming_uniform": initializers.kaiming_uniform,
    "kaiming_normal": initializers.kaiming_normal,
}
"""The ``warp_nn.initializers`` functions that ``init_parameters``/``init_weights``/``init_biases`` accept."""

SEED_BOUND = 2**31 - 1
"""Seeds are drawn in [0, 2**31 - 1): a Warp kernel's ``int`` argument is 32-bit signed."""


def _initialize(model: Model, method_name: str, kind: str, args: Any, kwargs: dict[str, Any]) -> None:
    """Apply an allow-listed initialiser to the parameters whose last name part starts with ``kind``."""
    if method_name not in INITIALIZERS:
        raise ValueError(
            f"unknown initialiser {method_name!r}; expected one of {sorted(INITIALIZERS)} (warp_nn.initializers)."
        )
    for name, array in named_arrays(model):
        if name.rsplit(".", 1)[-1].startswith(kind):
            INITIALIZERS[method_name](array, *args, **kwargs)


def resolve_device(device: str | wp.Device | None) -> wp.Device:
    """The device a model lives on: the one given, else Warp's default (``cuda:0`` when present).

    Args:
        device: A device or its name, or None.

    Returns:
        The device.

    Raises:
        ValueError: If Warp does not know the device.
    """
    try:
        return wp.get_device(device)
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"device={device!r} is not a Warp device ({error}); expected one of "
            f"{[str(d) for d in wp.get_devices()]}, or None for Warp's default."
        ) from None


def named_arrays(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, wp.array]]:
    """Every parameter of ``module`` and its sub-modules, with its dotted name.

    Args:
        module: A ``warp_nn`` module.
        prefix: Prepended to every name.

    Yields:
        ``(name, array)`` pairs in registration order.
    """
    for name, parameter in module.named_parameters():
        yield f"{prefix}{name}", parameter.data
    for name, child in module.named_modules():
        yield from named_arrays(child, f"{prefix}{name}.")


class Model(nn.Module):
    """Base class of every gaussrl Warp model.

    Subclasses list a mixin first and ``Model`` last (``class Policy(GaussianMixin, Model)``),
    call ``Model.__init__`` before the mixin's ``__init__``, build ``warp_nn`` layers, call
    ``self.__post_init__()`` last, and implement ``compute``.

    Args:
        observation_space: Observation space (a gymnasium space, an int size or a shape).
        state_space: State space, for models that see the environment's state.
        action_space: Action space.
        device: Warp device of the model; Warp's default device if None.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_mixin_order(cls, Model)

    def __init__(
        self,
        observation_space: SpaceLike = None,
        state_space: SpaceLike = None,
        action_space: SpaceLike = None,
        device: str | wp.Device | None = None,
    ) -> None:
        self._device = resolve_device(device)
        super().__init__()
        self.observation_space = observation_space
        self.state_space = state_space
        self.action_space = action_space
        self.num_observations = space_size(observation_space)
        self.num_states = space_size(state_space)
        self.num_actions = space_size(action_space)
        self._input_layout = input_layout(self)
        self._rng = np.random.default_rng()
        self._registered = False
        setattr(self, MODEL_READY_ATTRIBUTE, True)

    def __post_init__(self) -> None:
        """Register the layers and parameters assigned as attributes and move them to the model's device."""
        registries = ((nn.Module, self._modules), (Parameter, self._parameters), (Buffer, self._buffers))
        for name, value in list(vars(self).items()):
            for kind, registry in registries:
                if isinstance(value, kind) and name not in registry:
                    registry[name] = value
        self.to(self._device)
        self._registered = True

    def seed(self, seed: int | None) -> None:
        """Make the model's random draws (``act``, ``random_act``) reproducible.

        Each launch gets a fresh 31-bit seed drawn from a NumPy generator seeded here; the
        kernels combine it with the flat element index.

        Args:
            seed: Seed of the generator; None draws one from the operating system.
        """
        self._rng = np.random.default_rng(seed)

    def next_seed(self) -> int:
        """A fresh seed for one kernel launch.

        Returns:
            An int in [0, 2**31 - 1).
        """
        return int(self._rng.integers(0, SEED_BOUND))

    def check_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Check that observations and states are Warp arrays on this device, batched as (N, size) or (N, *shape).

        Args:
            inputs: Model inputs.

        Raises:
            TypeError: If an input is not a Warp array.
            ValueError: If it is on another device or has another shape.
        """
        if not self._registered:
            self.__post_init__()
        # The parameters' dtype only for observations that are not float32 (listing them costs ~16 us).
        observations = inputs.get("observations") if isinstance(inputs, Mapping) else None
        dtype, parameters = None, [] if getattr(observations, "dtype", wp.float32) is wp.float32 else self.parameters()
        if parameters:
            dtype = parameters[0].dtype
        check_act_inputs(
            inputs, self._input_layout, self.num_actions, array_types=(wp.array,), backend="warp", dtype=dtype
        )
        for key, _, _ in self._input_layout:
            if inputs.get(key) is not None:
                check_array(f'inputs["{key}"]', inputs[key], self._device)

    def compute(self, inputs: Mapping[str, Any], role: str = "") -> tuple[Any, dict[str, Any]]:
        """Run the network; subclasses implement it.

        Args:
            inputs: Model inputs (``"observations"``, ``"states"``, ``"taken_actions"``, ...).
            role: Role played by the model.

        Returns:
            The network output (a ``warp.array``) and a dict of extra outputs.
        """
        raise missing_compute_error(type(self).__name__)

    def act(
        self, inputs: Mapping[str, Any], *, role: str = "", requires_grad: bool = True
    ) -> tuple[Any, dict[str, Any]]:
        """Act in response to the inputs; provided by a mixin.

        Args:
            inputs: Model inputs.
            role: Role played by the model.
            requires_grad: False for a call that no ``wp.Tape`` records: new outputs get no gradient arrays.

        Returns:
            Actions and extra outputs.
        """
        raise no_act_error(type(self).__name__)

    def __call__(self, inputs: Mapping[str, Any], role: str = "") -> tuple[Any, dict[str, Any]]:
        """Same as :meth:`act`, so that ``model(inputs)`` works.

        Args:
            inputs: Model inputs.
            role: Role played by the model.

        Returns:
            Actions and extra outputs.
        """
        return self.act(inputs, role=role)

    def init_state_dict(self, *, role: str = "", inputs: Mapping[str, Any] | None = None) -> None:
        """Materialise lazily-shaped parameters (``LazyLinear``) by running ``act`` once on zeros.

        Models without lazy modules need no call; it is harmless for them.

        Args:
            role: Role played by the model.
            inputs: Example inputs; zeros of the observation/state space if None.
        """
        if not self._registered:
            self.__post_init__()
        if not any(isinstance(module, nn.LazyLinear) for module in _walk(self)):
            return
        if inputs is None:
            inputs = {
                key: wp.zeros((1, size), dtype=wp.float32, device=self._device) for key, size, _ in self._input_layout
            }
        self.act(inputs, role=role)

    def random_act(self, inputs: Mapping[str, Any], *, role: str = "") -> tuple[wp.array, dict[str, Any]]:
        """Uniformly random actions within a Box's bounds (standard normal where unbounded); one launch.

        Args:
            inputs: Model inputs; their batch size sets the number of actions.
            role: Role played by the model.

        Returns:
            Float32 actions of shape (N, num_actions) and an empty dict.
        """
        batch = next(v for v in inputs.values() if isinstance(v, wp.array)).shape[0]
        space: Any = self.action_space
        bounded = isinstance(space, gymnasium.spaces.Box) and bool(space.is_bounded())
        bounds = np.zeros((2, self.num_actions), np.float32)
        if bounded:
            bounds[0] = np.asarray(space.low).reshape(-1)
            bounds[1] = np.asarray(space.high).reshape(-1)
        out = wp.empty((batch, self.num_actions), dtype=wp.float32, device=self._device)
        inputs_ = [wp.array(bounds, dtype=wp.float32, device=self._device), int(bounded), self.next_seed()]
        wp.launch(random_kernel(wp.float32), dim=out.shape, inputs=inputs_, outputs=[out], device=self._device)
        return out, {}

    def get_specification(self) -> dict[str, Any]:
        """Describe what the model needs from the agent (e.g. RNN hidden-state sizes).

        Returns:
            An empty dict; recurrent models return ``{"rnn": {"sequence_length": L, "sizes": [...]}}``.
        """
        return {}

    def init_parameters(self, method_name: str = "kaiming_uniform", *args: Any, **kwargs: Any) -> None:
        """Initialise every parameter in place with a ``warp_nn.initializers`` function from the allow-list.

        Args:
            method_name: Name in :data:`INITIALIZERS`.
            *args: Passed to the initialiser after the array.
            **kwargs: Passed to the initialiser (e.g. ``value=`` for ``constant``).
        """
        _initialize(self, method_name, "", args, kwargs)

    def init_weights(self, method_name: str = "kaiming_uniform", *args: Any, **kwargs: Any) -> None:
        """Initialise the weights (parameters named ``weight*``) of every sub-module.

        Args:
            method_name: Name in :data:`INITIALIZERS`.
            *args: Passed to the initialiser after the array.
            **kwargs: Passed to the initialiser.
        """
        _initialize(self, method_name, "weight", args, kwargs)

    def init_biases(self, method_name: str = "constant", *args: Any, **kwargs: Any) -> None:
        """Initialise the biases (parameters named ``bias*``) of every sub-module.

        Args:
            method_name: Name in :data:`INITIALIZERS`.
            *args: Passed to the initialiser after the array.
            **kwargs: Passed to the initialiser (``constant`` defaults to ``value=0``).
        """
        defaults = {"value": 0.0} if method_name == "constant" else {}
        _initialize(self, method_name, "bias", args, {**defaults, **kwargs})

    def freeze_parameters(self, freeze: bool = True) -> None:
        """Stop (or restart) gradient tracking for every parameter.

        Unfreezing allocates fresh gradient arrays: build optimizers after the last unfreeze.

        Args:
            freeze: True to freeze, False to unfreeze.
        """
        for _, array in named_arrays(self):
            array.requires_grad = not freeze

    def update_parameters(self, model: nn.Module, *, polyak: float = 1.0) -> None:
        """Copy (``polyak=1``) or move towards (``0 < polyak < 1``) another model's parameters.

        ``theta <- polyak * theta_model + (1 - polyak) * theta``, as in soft target updates.

        Args:
            model: Source model with the same parameter names and shapes.
            polyak: Interpolation factor in [0, 1].

        Raises:
            ValueError: If ``polyak`` is outside [0, 1], or the models' parameters differ.
        """
        check_polyak(polyak)
        targets, sources = dict(named_arrays(self)), dict(named_arrays(model))
        if {k: v.shape for k, v in targets.items()} != {k: v.shape for k, v in sources.items()}:
            raise ValueError(
                f"update_parameters(): the source model's parameters {sorted(sources)} do not match this model's "
                f"{sorted(targets)} in names or shapes; both models must have the same architecture."
            )
        for name, target in targets.items():
            source = sources[name].to(target.device)
            if polyak == 1.0:
                wp.copy(target, source)
            else:
                flat = (target.flatten(), source.flatten(), float(polyak))
                wp.launch(lerp_kernel(target.dtype), dim=target.size, inputs=flat, device=target.device)

    def enable_training_mode(self, enabled: bool = True) -> None:
        """Switch training mode (dropout, batch norm) on or off.

        Args:
            enabled: True for training mode, False for evaluation mode.
        """
        self.train(enabled)

    def save(self, path: str | os.PathLike[str], state_dict: Mapping[str, wp.array] | None = None) -> None:
        """Write the parameters and buffers atomically: safetensors, or ``.npz`` by suffix.

        Args:
            path: Destination file (``*.safetensors``, or ``*.npz``).
            state_dict: Arrays to write; this model's ``state_dict()`` if None.
        """
        arrays = {k: np.ascontiguousarray(v.numpy()).copy() for k, v in (state_dict or self.state_dict()).items()}
        if Path(path).suffix == ".npz":
            write_atomic(path, lambda tmp: _write_npz(tmp, arrays))
        else:
            from safetensors.numpy import save_file  # noqa: PLC0415 (optional: the warp extra needs only numpy)

            write_atomic(path, lambda tmp: save_file(arrays, str(tmp)))

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load arrays written by :meth:`save`; never unpickles (``.npz`` is read with ``allow_pickle=False``).

        Args:
            path: A ``.safetensors`` or ``.npz`` file.

        Raises:
            ValueError: If the file's names or shapes differ from this model's.
        """
        if Path(path).suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        else:
            from safetensors.numpy import load_file  # noqa: PLC0415 (optional: the warp extra needs only numpy)

            arrays = load_file(str(path))
        own = self.state_dict()
        if {k: tuple(v.shape) for k, v in own.items()} != {k: tuple(v.shape) for k, v in arrays.items()}:
            raise ValueError(
                f"{path} holds {sorted(arrays)} with shapes that do not match this model's {sorted(own)}; "
                f"load a file saved from the same architecture."
            )
        self.load_state_dict(arrays)


def _walk(module: nn.Module) -> Iterator[nn.Module]:
    for child in module.modules():
        yield child
        yield from _walk(child)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # A file handle, because np.savez appends ".npz" to a path that lacks it.
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # NumPy's stub types **kwds as allow_pickle
