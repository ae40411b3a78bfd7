"""Checks of what a caller passes to ``act()``, shared by the torch, JAX and Warp models.

The functions are pure and backend-neutral: they read only ``isinstance``, ``.shape`` and
``.dtype`` of the arrays, so every backend calls the same code with its own array types. Each
raises an :class:`~gaussrl.core.errors.InputError` (or :class:`~gaussrl.core.errors.InputTypeError`)
whose message says what was wrong, what was expected and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gaussrl.core.errors import EnvError, InputError, InputTypeError, check_input_shape

InputLayout = Sequence[tuple[str, int, tuple[int, ...]]]
"""``(key, flattened size, space shape)`` of each input a model reads (``"observations"``, ``"states"``)."""

BACKEND_ARRAYS = {
    "torch": ("PyTorch", "torch.Tensor", "torch.as_tensor(x, dtype=torch.float32, device=model.device)"),
    "jax": ("JAX", "jax.Array (or numpy.ndarray)", "jnp.asarray(x, dtype=jnp.float32)"),
    "warp": ("Warp", "warp.array", "wp.array(x, dtype=wp.float32, device=model.device)"),
}
"""Per backend, for the messages: its name, the array it expects and how to build one."""


def dtype_name(dtype: Any) -> str:
    """A short name of a torch, NumPy, JAX or Warp dtype (``"float32"``).

    Args:
        dtype: The dtype.

    Returns:
        Its name without a ``torch.`` prefix.
    """
    name = dtype.__name__ if isinstance(dtype, type) else str(dtype)
    return name.removeprefix("torch.")


def _check_array(what: str, value: Any, array_types: tuple[type, ...], backend: str) -> None:
    if not isinstance(value, array_types):
        name, expected, conversion = BACKEND_ARRAYS[backend]
        raise InputTypeError(
            f"{what} is a {type(value).__name__}; the {name} backend expects a {expected}. "
            f"Convert it first, e.g. {conversion}."
        )


def _check_dtype(what: str, value: Any, dtype: Any) -> None:
    if dtype is not None and value.dtype != dtype:
        got, want = dtype_name(value.dtype), dtype_name(dtype)
        raise InputTypeError(
            f"{what} has dtype {got}; expected {want}, the dtype of the network's parameters. Convert the "
            f"inputs to {want} (or the model to {got}) before act()."
        )


def check_act_inputs(
    inputs: object,
    layout: InputLayout,
    num_actions: int,
    *,
    array_types: tuple[type, ...],
    backend: str,
    dtype: Any = None,
) -> None:
    """Check the ``inputs`` of ``act()`` before the network runs.

    ``inputs`` must be a mapping with ``"observations"`` (when the model has an observation
    space); each observation/state input must be an array of the backend's type, batched as
    ``(N, size)`` or ``(N, *space.shape)``, and of the network's dtype when ``dtype`` is given;
    ``"taken_actions"``, when given, must be ``(N, num_actions)`` with the observations' ``N``.

    Args:
        inputs: What the caller passed to ``act()``.
        layout: ``(key, size, space shape)`` of each input the model reads.
        num_actions: Size of the flattened action space.
        array_types: The array classes the backend accepts.
        backend: ``"torch"``, ``"jax"`` or ``"warp"``, for the messages.
        dtype: The network's dtype, or None to accept any (JAX converts on its own).

    Raises:
        InputTypeError: If ``inputs`` is not a mapping, or an input is not a backend array or has another dtype.
        InputError: If ``"observations"`` is missing, or an input has the wrong shape.
    """
    if not isinstance(inputs, Mapping):
        raise InputTypeError(
            f'act() takes a mapping of inputs, got a {type(inputs).__name__}; call act({{"observations": x}}).'
        )
    batch = None
    for key, size, shape in layout:
        value = inputs.get(key)
        if value is None:
            if key == "observations":
                raise InputError(
                    f'act() inputs have no "observations" (keys: {sorted(map(str, inputs))}); '
                    f'pass act({{"observations": x}}) with x of shape (N, {size}).'
                )
            continue
        what = f'inputs["{key}"]'
        _check_array(what, value, array_types, backend)
        value_shape = value.shape
        if len(value_shape) != 2 or value_shape[1] != size:  # the flat layout passes without building tuples
            check_input_shape(key, value_shape, size, shape)
        _check_dtype(what, value, dtype)
        batch = value_shape[0] if batch is None else batch
    taken = inputs.get("taken_actions")
    if taken is not None:
        check_taken_actions(taken, batch, num_actions, array_types=array_types, backend=backend)


def check_taken_actions(
    taken: Any, batch: int | None, num_actions: int, *, array_types: tuple[type, ...], backend: str
) -> None:
    """Check ``inputs["taken_actions"]``: None, or an array of shape ``(batch, num_actions)``.

    Args:
        taken: The taken actions, or None.
        batch: The observations' batch size, or None if unknown.
        num_actions: Size of the flattened action space.
        array_types: The array classes the backend accepts.
        backend: ``"torch"``, ``"jax"`` or ``"warp"``, for the messages.

    Raises:
        InputTypeError: If ``taken`` is not a backend array.
        InputError: If its shape is not ``(batch, num_actions)`` (it would broadcast or fail later).
    """
    if taken is None:
        return
    what = 'inputs["taken_actions"]'
    _check_array(what, taken, array_types, backend)
    shape = tuple(taken.shape)
    rows = batch if batch is not None else (shape[0] if shape else 0)
    if shape != (rows, num_actions):
        raise InputError(
            f"{what} has shape {shape}; expected ({rows}, {num_actions}): one row of {num_actions} action "
            f"values per observation. Pass the actions that were taken for these observations, reshaped to "
            f"(N, {num_actions})."
        )


def check_env_observations(env_id: str, shape: Sequence[int], num_envs: int, space_shape: Sequence[int]) -> None:
    """Check a vector environment's batch of observations against its single observation space.

    Args:
        env_id: The environment, for the message.
        shape: Shape of the batch the environment returned.
        num_envs: Number of sub-environments.
        space_shape: Shape of the single observation space.

    Raises:
        EnvError: If the batch is not ``(num_envs, *space_shape)``.
    """
    expected = (num_envs, *space_shape)
    if tuple(shape) != expected:
        raise EnvError(
            f"environment {env_id!r} returned observations of shape {tuple(shape)}, but its observation space "
            f"has shape {tuple(space_shape)} (expected {expected} for {num_envs} environments); fix the "
            f"environment's observation_space or the observations it returns."
        )
