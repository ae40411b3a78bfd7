"""Error types and the checks that every backend shares.

Each message says what was wrong, what was expected and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class GaussrlError(Exception):
    """Base of every error gaussrl raises for something the user can fix.

    The CLI prints these as one line; any other exception is a bug and keeps its traceback.
    Each subclass also derives from the built-in class that fits (``ValueError``, ``TypeError``,
    ...), so ``except ValueError`` keeps working.
    """

    exit_status = 2
    """The CLI's exit status for this error."""


class ConfigError(GaussrlError, ValueError):
    """An option or configuration value that is out of range, of the wrong type, or inconsistent."""


class ConfigTypeError(ConfigError, TypeError):
    """An option of the wrong type (e.g. a number where True or False is expected); also a ``TypeError``."""


class InputError(GaussrlError, ValueError):
    """Inputs to a model (or outputs of a user's ``compute()``) of the wrong shape, dtype or kind."""


class InputTypeError(InputError, TypeError):
    """Inputs to a model of the wrong kind (not a mapping, not the backend's array type).

    It is both an :class:`InputError` and a ``TypeError``.
    """


class MissingOutputError(GaussrlError, KeyError):
    """A user's ``compute()`` returned outputs without a key the model needs (e.g. ``"log_std"``)."""

    def __str__(self) -> str:
        """The message as given (``KeyError`` would quote it)."""
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(GaussrlError, ImportError):
    """An optional package that a feature needs is not installed; the message names the extra to install."""


class EnvError(GaussrlError, ValueError):
    """An environment that cannot be made or trained on (unknown id, action space not a Box, bad observations)."""


class MissingRunFileError(GaussrlError, FileNotFoundError):
    """A file a command reads from a run directory (``metrics.jsonl``, ``config.json``) is missing."""


class NotSupportedError(GaussrlError, NotImplementedError):
    """A valid request that gaussrl does not support yet (e.g. exporting a recurrent policy)."""


class ModelDefinitionError(GaussrlError, TypeError):
    """A model class or instance put together in a way gaussrl cannot use (base order, init order)."""


class NotReadyError(GaussrlError, RuntimeError):
    """A method needs state that an earlier call creates (e.g. ``get_entropy()`` before ``act()``)."""


LOST_CONTACT_STATUS = 3
"""Exit status of a rank that stopped because it lost contact with the other ranks of its run."""


class DistributedError(GaussrlError, RuntimeError):
    """A collective failed: another rank died or stopped answering within the timeout.

    The CLI exits with :data:`LOST_CONTACT_STATUS`, so the launcher can tell the ranks that stopped
    because of another from the rank that failed first.
    """

    exit_status = LOST_CONTACT_STATUS


class NonFiniteOutputError(GaussrlError, FloatingPointError):
    """``compute()`` returned NaN or infinity while finite-value checks were switched on."""


MODEL_READY_ATTRIBUTE = "_gaussrl_model_ready"
"""Set by every backend's ``Model.__init__``; the mixins check it to enforce the initialisation order."""


def check_mixin_order(cls: type, model_class: type) -> None:
    """Reject class definitions that list a gaussrl mixin after ``Model`` in their bases.

    Args:
        cls: The class being defined.
        model_class: The backend's ``Model``.

    Raises:
        ModelDefinitionError: If a mixin follows ``Model`` in the method resolution order, where
            ``Model.act`` would shadow the mixin's ``act``.
    """
    mro = cls.__mro__
    if model_class not in mro:
        return
    for mixin in mro:
        if mixin is not Mixin and issubclass(mixin, Mixin) and mro.index(mixin) > mro.index(model_class):
            raise ModelDefinitionError(
                f"class {cls.__name__} lists {mixin.__name__} after Model in its bases, so Model.act would "
                f"shadow {mixin.__name__}.act. Put the mixin first and Model at the end: "
                f"class {cls.__name__}({mixin.__name__}, Model)."
            )


def check_model_ready(obj: Any, mixin_name: str) -> None:
    """Reject a mixin ``__init__`` that runs before ``Model.__init__``.

    Args:
        obj: The model instance being initialised.
        mixin_name: Name of the mixin, for the message.

    Raises:
        ModelDefinitionError: If ``Model.__init__`` has not run on ``obj`` yet.
    """
    if not vars(obj).get(MODEL_READY_ATTRIBUTE, False):
        raise ModelDefinitionError(
            f"{mixin_name}.__init__ ran before Model.__init__ on {type(obj).__name__}. The mixin needs the "
            f"action space that Model stores: call Model.__init__(self, observation_space=..., "
            f"action_space=..., ...) first, then {mixin_name}.__init__(self, ...)."
        )


def missing_log_std_error(role: str, keys: Sequence[str]) -> MissingOutputError:
    """Build the error for a ``compute()`` whose outputs carry no ``"log_std"``.

    Args:
        role: Role passed to ``compute()``.
        keys: The keys ``compute()`` did return.

    Returns:
        The error to raise.
    """
    return MissingOutputError(
        f"compute(inputs, role={role!r}) returned outputs with keys {sorted(keys)}; a Gaussian model needs "
        f'"log_std". Return it as the second element: return mean_actions, {{"log_std": log_std}}.'
    )


def log_std_shape_error(shape: Sequence[int], num_actions: int) -> InputError:
    """Build the error for a log-std whose last dimension is not the number of actions.

    Args:
        shape: Shape of the log-std that ``compute()`` returned.
        num_actions: Size of the flattened action space.

    Returns:
        The error to raise.
    """
    return InputError(
        f"compute() returned log_std of shape {tuple(shape)}; expected (..., {num_actions}) for this action "
        f"space. Return one log-std per action dimension, e.g. a parameter of shape ({num_actions},)."
    )


def mean_shape_error(shape: Sequence[int], num_actions: int) -> InputError:
    """Build the error for mean actions whose last dimension is not the number of actions.

    Args:
        shape: Shape of the mean actions that ``compute()`` returned.
        num_actions: Size of the flattened action space.

    Returns:
        The error to raise.
    """
    return InputError(
        f"compute() returned mean actions of shape {tuple(shape)}; expected (N, {num_actions}) for this "
        f"action space. Make the network's last layer output {num_actions} features."
    )


def observation_shape_error(name: str, shape: Sequence[int], size: int, space_shape: Sequence[int]) -> InputError:
    """Build the error for observations that fit neither the flat nor the space's own shape.

    Args:
        name: Input key (``"observations"`` or ``"states"``).
        shape: Shape that was passed.
        size: Flattened size of the space.
        space_shape: The space's own shape.

    Returns:
        The error to raise.
    """
    return InputError(
        f'inputs["{name}"] has shape {tuple(shape)}; expected (N, {size}) or (N, *{tuple(space_shape)}) for '
        f"this {name[:-1]} space. Add the batch axis (e.g. x[None]) or reshape the batch to (N, {size})."
    )


def non_finite_error(output: str, role: str) -> NonFiniteOutputError:
    """Build the error for NaN or infinity in an output of ``compute()``.

    Args:
        output: Which output holds the bad values (``"mean_actions"`` or ``"log_std"``).
        role: Role passed to ``compute()``.

    Returns:
        The error to raise.
    """
    return NonFiniteOutputError(
        f"compute(inputs, role={role!r}) returned NaN or infinity in {output}. Check the network's inputs "
        f"(observation normalisation) and learning rate; these checks run because check_finite=True."
    )


class Mixin:
    """Marker base of every gaussrl mixin, so that ``Model`` can check the order of the bases."""


def check_input_shape(name: str, shape: Sequence[int], size: int, space_shape: Sequence[int]) -> None:
    """Accept ``(N, size)`` or ``(N, *space_shape)``; raise the shared error otherwise.

    Args:
        name: Input key (``"observations"`` or ``"states"``).
        shape: Shape that was passed.
        size: Flattened size of the space.
        space_shape: The space's own shape.

    Raises:
        InputError: If ``shape`` is neither.
    """
    rest = tuple(shape[1:])
    if rest != (size,) and rest != tuple(space_shape):
        raise observation_shape_error(name, shape, size, space_shape)


def check_polyak(polyak: float) -> None:
    """Accept a soft-update factor in [0, 1].

    Args:
        polyak: ``theta <- polyak * theta_source + (1 - polyak) * theta``.

    Raises:
        ConfigError: If ``polyak`` is outside [0, 1].
    """
    if not 0.0 <= polyak <= 1.0:
        raise ConfigError(f"polyak={polyak} is outside [0, 1]; use 1 for a hard copy, ~0.005 for soft updates.")


def missing_compute_error(class_name: str) -> NotImplementedError:
    """Build the error for a model that does not implement ``compute``.

    Args:
        class_name: Name of the model's class.

    Returns:
        The error to raise.
    """
    return NotImplementedError(
        f"{class_name} does not implement compute(inputs, role); define it to return the "
        f"network output and a dict of extra outputs."
    )


def no_act_error(class_name: str) -> NotImplementedError:
    """Build the error for a ``Model`` used without a mixin that provides ``act``.

    Args:
        class_name: Name of the model's class.

    Returns:
        The error to raise.
    """
    return NotImplementedError(
        f"{class_name} has no act(): combine it with a mixin, e.g. class {class_name}(GaussianMixin, Model)."
    )
