"""The glue every backend's models share: the mixin's options, input layout and output checks.

Each backend's ``Model`` and ``GaussianMixin`` call these, so that the three backends accept
the same options, check the same things and raise the same errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gaussrl.core.errors import (
    Mixin,
    NotReadyError,
    check_model_ready,
    log_std_shape_error,
    mean_shape_error,
    missing_log_std_error,
    non_finite_error,
)
from gaussrl.core.spaces import ActionBounds, action_bounds, space_shape, space_size
from gaussrl.core.spec import DeterministicSpec, GaussianPlan, GaussianSpec, Reduction, make_plan

INPUT_SPACES = (("observations", "observation_space"), ("states", "state_space"))
"""The input keys a model checks, and the space attribute each is checked against."""

FINITE_CHECKED = ("mean_actions", "log_std")
"""The outputs of ``compute`` that ``check_finite=True`` checks, in this order."""

InputLayout = tuple[tuple[str, int, tuple[int, ...]], ...]
"""``(key, flat size, space shape)`` of each input the model has a space for."""


def input_layout(model: Any) -> InputLayout:
    """The inputs ``model`` has spaces for, with their flat sizes and shapes.

    Args:
        model: A model whose ``Model.__init__`` stored ``observation_space`` and ``state_space``.

    Returns:
        One entry per space that is not None.
    """
    return tuple(
        (key, space_size(getattr(model, attr)), tuple(space_shape(getattr(model, attr))))
        for key, attr in INPUT_SPACES
        if getattr(model, attr) is not None
    )


def log_std_output(outputs: Mapping[str, Any], role: str) -> Any:
    """The ``"log_std"`` that a Gaussian model's ``compute`` must return.

    Args:
        outputs: The dict ``compute`` returned.
        role: Role passed to ``compute``, for the message.

    Returns:
        The log-std.

    Raises:
        KeyError: If there is none.
    """
    log_std = outputs.get("log_std")
    if log_std is None:
        raise missing_log_std_error(role, list(outputs))
    return log_std


def check_output_shapes(mean_shape: Sequence[int], log_std_shape: Sequence[int], num_actions: int) -> None:
    """Check that the mean and the log-std have one entry per action dimension on their last axis.

    Args:
        mean_shape: Shape of the mean actions.
        log_std_shape: Shape of the log-std.
        num_actions: Size of the flattened action space.

    Raises:
        InputError: If either last axis is not ``num_actions`` long.
    """
    if tuple(log_std_shape)[-1:] != (num_actions,):
        raise log_std_shape_error(log_std_shape, num_actions)
    if tuple(mean_shape)[-1:] != (num_actions,):
        raise mean_shape_error(mean_shape, num_actions)


def check_finite_flags(flags: Iterable[Any], role: str) -> None:
    """Raise for the first of :data:`FINITE_CHECKED` whose flag says it held NaN or infinity.

    Args:
        flags: One truth value per name in :data:`FINITE_CHECKED` (True: all finite).
        role: Role passed to ``compute``, for the message.

    Raises:
        NonFiniteOutputError: For the first output that is not finite.
    """
    for name, finite in zip(FINITE_CHECKED, flags, strict=True):
        if not finite:
            raise non_finite_error(name, role)


def not_ready_error(method: str) -> NotReadyError:
    """Build the error for a method that describes the last ``act()`` call, called before any.

    Args:
        method: The method's name.

    Returns:
        The error to raise.
    """
    return NotReadyError(
        f"{method}() was called before any act(); it describes the distribution of the last act() "
        f"call. Call policy.act(inputs, role=...) first."
    )


class GaussianOptions(Mixin):
    """The options of every backend's ``GaussianMixin``, validated once.

    Args:
        clip_actions: Clip sampled actions to the Box bounds; the log-prob scores the clipped action.
        clip_mean_actions: Clip the mean to the Box bounds before sampling.
        clip_log_std: Clamp the log-std to ``[min_log_std, max_log_std]``.
        min_log_std: Lower log-std bound.
        max_log_std: Upper log-std bound.
        reduction: ``"sum"``, ``"mean"``, ``"prod"`` or ``"none"`` over the action axis.
        role: Role played by the model.
        squash_actions: ``True``: tanh onto the Box bounds; ``"tanh"``: onto (-1, 1). The log-prob is
            the exact density of the squashed action.
        check_finite: Raise if ``compute()`` returns NaN or infinity.

    Raises:
        ValueError: For an invalid option.
        ModelDefinitionError: If ``Model.__init__`` has not run.
        TypeError: If clipping needs a Box the model does not have.
    """

    def __init__(
        self,
        *,
        clip_actions: bool = False,
        clip_mean_actions: bool = False,
        clip_log_std: bool = True,
        min_log_std: float = -20,
        max_log_std: float = 2,
        reduction: Reduction = "sum",
        role: str = "",
        squash_actions: bool | str = False,
        check_finite: bool = False,
    ) -> None:
        check_model_ready(self, "GaussianMixin")
        spec = GaussianSpec(
            clip_actions=clip_actions,
            clip_mean_actions=clip_mean_actions,
            clip_log_std=clip_log_std,
            min_log_std=float(min_log_std),
            max_log_std=float(max_log_std),
            reduction=reduction,
            role=role,
            squash_actions=squash_actions,  # type: ignore[arg-type]
            check_finite=check_finite,
        )
        model: Any = self
        self._init_gaussian(make_plan(spec, model.action_space, model.num_actions))

    def _init_gaussian(self, plan: GaussianPlan) -> None:
        """Store the backend's state for ``plan``; each backend's mixin implements it.

        Args:
            plan: The resolved options.
        """
        raise NotImplementedError


class DeterministicOptions(Mixin):
    """The options of every backend's ``DeterministicMixin``, validated once.

    Args:
        clip_actions: Clip the output to the Box action bounds.
        role: Role played by the model.

    Raises:
        ModelDefinitionError: If ``Model.__init__`` has not run.
        TypeError: If ``clip_actions`` is set without a Box action space.
    """

    def __init__(self, *, clip_actions: bool = False, role: str = "") -> None:
        check_model_ready(self, "DeterministicMixin")
        spec = DeterministicSpec(clip_actions=clip_actions, role=role)
        model: Any = self
        bounds = action_bounds(model.action_space, "clip_actions=True") if spec.clip_actions else None
        self._init_deterministic(spec, bounds)

    def _init_deterministic(self, spec: DeterministicSpec, bounds: ActionBounds | None) -> None:
        """Store the backend's state; each backend's mixin implements it.

        Args:
            spec: The validated options.
            bounds: The clip bounds, or None when not clipping.
        """
        raise NotImplementedError
