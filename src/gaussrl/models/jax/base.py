"""The JAX/Flax ``Model`` base class: spaces, devices, parameters, keys and files.

Flax modules are dataclasses that ``init()``/``apply()`` re-create by cloning. A gaussrl model
is built with an ordinary ``__init__`` (the specification's constructor), so ``Model`` records
the arguments of the outermost ``__init__`` call and ``clone()`` replays them: every option
given to the constructors survives cloning.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gaussrl.core.atomic import write_atomic
from gaussrl.core.checks import check_act_inputs
from gaussrl.core.errors import (
    MODEL_READY_ATTRIBUTE,
    NotReadyError,
    check_mixin_order,
    check_polyak,
    no_act_error,
)
from gaussrl.core.mixin import input_layout
from gaussrl.core.spaces import SpaceLike, action_bounds, space_size
from gaussrl.models.jax.functional import next_key_data

INIT_ARGS_ATTRIBUTE = "_gaussrl_init_args"
"""Where ``Model`` keeps the outermost ``__init__`` arguments, replayed by ``clone()``."""


KEY_IMPL = "philox4x32"
"""PRNG of the keys a model makes from int seeds (keys passed in keep their own).

On CPU, threefry lowers to a rolled loop whose many small steps push XLA:CPU into its
multi-threaded executor, which costs about 2x the whole ``act()`` at small batches; Philox is
counter-based, has a proper ``split`` and compiles to a few fused loops.
"""


@dataclass(slots=True)
class KeyStream:
    """A model's sampling key: each draw steps the words (:func:`next_key_data`), samples with them and keeps them.

    Attributes:
        data: Raw key words (``jax.random.key_data``) of the seed or of the last draw, shape (W,) uint32.
        impl: Their PRNG implementation (``jax.random.key_impl``).
    """

    data: jax.Array
    impl: Any

    @classmethod
    def start(cls, seed: int | jax.Array) -> KeyStream:
        """The stream of an int seed (a :data:`KEY_IMPL` key) or a PRNG key (raw uint32 keys: the default PRNG's)."""
        key = _as_key(seed)
        if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        return cls(jax.random.key_data(key), jax.random.key_impl(key))

    def advance(self, next_data: jax.Array) -> None:
        """Keep the next key words; a tracer (``act`` inside an outer ``jax.jit``) moves the stream on eagerly."""
        if isinstance(next_data, _TRACER):
            with jax.ensure_compile_time_eval():
                next_data = next_key_data(self.data)
        self.data = next_data


_NOT_GIVEN: Any = object()
_TRACER = jax.core.Tracer


class StateDict(flax.struct.PyTreeNode):  # type: ignore[no-untyped-call]  # flax declares no types here
    """A model's parameters: a pytree, so ``optax`` and ``jax.grad`` take it (or its ``params``) directly.

    Attributes:
        params: The variables returned by ``Module.init`` (``{"params": {...}}``).
    """

    params: Any


def resolve_device(device: str | jax.Device | None) -> jax.Device:
    """The device a model lives on: the one given, else JAX's default device.

    Args:
        device: A ``jax.Device``, a name such as ``"cpu"``, ``"cuda:0"`` or ``"gpu:1"``, or None.

    Returns:
        The device.
    """
    if device is None:
        return jax.devices()[0]
    if not isinstance(device, str):
        return device
    platform, _, index = device.partition(":")
    platform = "gpu" if platform == "cuda" else platform
    return jax.devices(platform)[int(index or 0)]


def _replayable(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a subclass ``__init__`` so that Flax's ``parent``/``name`` are accepted and the call is recorded."""

    @functools.wraps(init)
    def __init__(self: Model, *args: Any, parent: Any = _NOT_GIVEN, name: str | None = None, **kwargs: Any) -> None:
        if INIT_ARGS_ATTRIBUTE in vars(self):
            init(self, *args, **kwargs)
            return
        object.__setattr__(self, INIT_ARGS_ATTRIBUTE, (args, kwargs))
        init(self, *args, **kwargs)
        object.__setattr__(self, "parent", _UNSPECIFIED_PARENT if parent is _NOT_GIVEN else parent)
        object.__setattr__(self, "name", name)
        self.__post_init__()

    return __init__


class Model(nn.Module):
    """Base class of every gaussrl JAX/Flax model.

    Subclasses list a mixin first and ``Model`` last (``class Policy(GaussianMixin, Model)``), call
    ``Model.__init__`` before the mixin's ``__init__``, define the network in ``setup()`` or a
    ``@nn.compact`` ``__call__(inputs, role)``, and call :meth:`init_state_dict` once before use.
    Every constructor argument other than the spaces and device needs a default (Flax's rule).

    Args:
        observation_space: Observation space (a gymnasium space, an int size or a shape).
        state_space: State space, for models that see the environment's state.
        action_space: Action space.
        device: Device of the parameters; JAX's default device if None.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        own_init = cls.__dict__.get("__init__")
        inherited = next(base.__dict__["__init__"] for base in cls.__mro__[1:] if "__init__" in base.__dict__)
        super().__init_subclass__(**kwargs)
        check_mixin_order(cls, Model)
        cls.__init__ = _replayable(getattr(own_init or inherited, "__wrapped__", own_init or inherited))  # type: ignore[method-assign]

    def __init__(
        self,
        observation_space: SpaceLike = None,
        state_space: SpaceLike = None,
        action_space: SpaceLike = None,
        device: str | jax.Device | None = None,
    ) -> None:
        self.observation_space = observation_space
        self.state_space = state_space
        self.action_space = action_space
        self.num_observations = space_size(observation_space)
        self.num_states = space_size(state_space)
        self.num_actions = space_size(action_space)
        self.device = resolve_device(device)
        self.training = False
        self._input_layout = input_layout(self)
        self._frozen = False
        self._key: KeyStream | None = None
        self.state_dict: StateDict | None = None
        object.__setattr__(self, MODEL_READY_ATTRIBUTE, True)

    @nn.nowrap
    def clone(
        self, *, parent: Any = None, _deep_clone: Any = False, _reset_names: bool = False, **updates: Any
    ) -> Model:
        """Re-create this model by replaying its constructor call (``init``/``apply`` clone modules).

        Args:
            parent: Parent module or scope of the clone.
            _deep_clone: Flax's deep-clone flag; the constructor re-creates submodules anyway.
            _reset_names: Flax's flag for resetting submodule names.
            **updates: Only ``name`` may be updated; anything else raises ``TypeError``.

        Returns:
            A new instance built with the same constructor arguments.
        """
        if set(updates) - {"name"}:
            raise TypeError(
                f"{type(self).__name__}.clone() can only update 'name', not {sorted(set(updates) - {'name'})}: "
                f"gaussrl models are configured through their constructor."
            )
        args, kwargs = vars(self)[INIT_ARGS_ATTRIBUTE]
        model_class: Any = type(self)  # Flax's module transform adds the parent and name arguments
        clone: Model = model_class(*args, **kwargs, parent=parent, name=updates.get("name", self.name))
        object.__setattr__(clone, "training", self.training)
        return clone

    @nn.nowrap
    def check_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Check that observations and states are batched as ``(N, size)`` or ``(N, *space.shape)``.

        Args:
            inputs: Model inputs.

        Raises:
            ValueError: If an input has another shape.
        """
        check_act_inputs(
            inputs, self._input_layout, self.num_actions, array_types=(jax.Array, np.ndarray), backend="jax"
        )

    @nn.nowrap
    def act(self, inputs: Mapping[str, Any], *, role: str = "", params: Any = None) -> tuple[jax.Array, dict[str, Any]]:
        """Act in response to the inputs; provided by a mixin.

        Args:
            inputs: Model inputs.
            role: Role played by the model.
            params: Parameters to use instead of ``state_dict.params``.
        """
        raise no_act_error(type(self).__name__)

    @nn.nowrap
    def init_state_dict(
        self, *, role: str = "", inputs: Mapping[str, Any] | None = None, key: jax.Array | int | None = None
    ) -> None:
        """Create the parameters (``self.state_dict``) and the sampling key.

        Args:
            role: Role passed to ``__call__`` while initialising.
            inputs: Example inputs; zeros of shape (1, size) for the observation/state spaces if None.
            key: PRNG key or int seed; split into the parameter key and the sampling key. Seed 0 if None.
        """
        key = _as_key(0 if key is None else key)
        params_key, sample_key = jax.random.split(key)
        if inputs is None:
            inputs = {name: jnp.zeros((1, size)) for name, size, _ in self._input_layout}
        with jax.default_device(self.device):
            self.state_dict = StateDict(params=self.init(params_key, inputs, role))
        self._key = KeyStream.start(sample_key)

    @nn.nowrap
    def seed(self, seed: int | jax.Array) -> None:
        """Reset the sampling key, making the following samples reproducible.

        Args:
            seed: An int seed or a PRNG key.
        """
        self._key = KeyStream.start(seed)

    @nn.nowrap
    def ready_state_dict(self, method: str) -> StateDict:
        """``self.state_dict``, or a ``NotReadyError`` saying to call :meth:`init_state_dict` first.

        Args:
            method: The method that needs the parameters, for the message.
        """
        if self.state_dict is None or self._key is None:
            raise NotReadyError(
                f"{type(self).__name__}.{method}() was called before init_state_dict(); JAX models create "
                f"their parameters there. Call model.init_state_dict(role=...) once after constructing it."
            )
        return self.state_dict

    @nn.nowrap
    def advance_key(self, next_key: jax.Array) -> None:
        """Keep the raw key words a compiled call returned (:meth:`KeyStream.advance`)."""
        assert self._key is not None  # set with the state dict: callers check ready_state_dict() first
        self._key.advance(next_key)

    @nn.nowrap
    def random_act(
        self, inputs: Mapping[str, Any], *, role: str = "", params: Any = None
    ) -> tuple[jax.Array, dict[str, Any]]:
        """Uniformly random actions within a bounded Box (standard normal otherwise).

        Args:
            inputs: Model inputs; their batch size sets the number of actions.
            role: Role played by the model.
            params: Unused; accepted for the specification's signature.

        Returns:
            Actions of shape (N, num_actions) and an empty dict.
        """
        batch = next(np.shape(v)[0] for v in inputs.values() if np.ndim(v) > 0)
        shape = (batch, self.num_actions)
        try:
            bounds = action_bounds(self.action_space, "random_act()")
        except TypeError:
            bounds = None
        self.ready_state_dict("random_act")
        assert self._key is not None  # set with the state dict, which ready_state_dict() checked
        words = next_key_data(self._key.data)
        self.advance_key(words)
        key = jax.random.wrap_key_data(words, impl=self._key.impl)
        if bounds is not None and bounds.bounded:
            low, high = jnp.asarray(bounds.low, jnp.float32), jnp.asarray(bounds.high, jnp.float32)
            return jax.random.uniform(key, shape, jnp.float32, low, high), {}
        return jax.random.normal(key, shape), {}

    @nn.nowrap
    def get_specification(self) -> dict[str, Any]:
        """Describe what the model needs from the agent (e.g. RNN hidden-state sizes).

        Returns:
            An empty dict; recurrent models return ``{"rnn": {"sequence_length": L, "sizes": [...]}}``.
        """
        return {}

    @nn.nowrap
    def freeze_parameters(self, freeze: bool = True) -> None:
        """Stop (or restart) gradients flowing to the parameters through :meth:`act`.

        Args:
            freeze: True to freeze (``act`` wraps the parameters in ``stop_gradient``), False to unfreeze.
        """
        self._frozen = bool(freeze)

    @nn.nowrap
    def update_parameters(self, model: Model, *, polyak: float = 1.0) -> None:
        """Copy (``polyak=1``) or move towards (``0 < polyak < 1``) another model's parameters.

        ``theta <- polyak * theta_model + (1 - polyak) * theta``, as in soft target updates.

        Args:
            model: Source model with the same parameter structure and shapes (else ``ValueError``).
            polyak: Interpolation factor in [0, 1] (else ``ValueError``).
        """
        check_polyak(polyak)
        source = model.ready_state_dict("update_parameters").params
        own = self.ready_state_dict("update_parameters")
        target = own.params
        _check_same_tree(source, target, f"update_parameters({type(model).__name__})")
        self.state_dict = own.replace(params=_polyak(source, target, jnp.asarray(polyak)))

    @nn.nowrap
    def enable_training_mode(self, enabled: bool = True) -> None:
        """Switch training mode on or off (read it from ``self.training`` in ``__call__``; ``act`` retraces).

        Args:
            enabled: True for training mode, False for evaluation mode.
        """
        self.training = bool(enabled)

    @nn.nowrap
    def save(self, path: str | os.PathLike[str], state_dict: StateDict | None = None) -> None:
        """Write the parameters as Flax msgpack (arrays only, never code), atomically.

        Args:
            path: Destination file (conventionally ``*.msgpack``).
            state_dict: State dict to write; this model's if None.
        """
        params = (state_dict or self.ready_state_dict("save")).params
        data = flax.serialization.msgpack_serialize(flax.serialization.to_state_dict(jax.device_get(params)))
        write_atomic(path, lambda tmp: tmp.write_bytes(data))

    @nn.nowrap
    def load(self, path: str | os.PathLike[str]) -> None:
        """Load parameters written by :meth:`save` into this (initialised) model.

        Args:
            path: A file written by :meth:`save`; ``ValueError`` if its tree or shapes differ from this model's.
        """
        own = self.ready_state_dict("load")
        target = own.params
        restored = flax.serialization.msgpack_restore(Path(path).read_bytes())
        params = flax.serialization.from_state_dict(target, restored)
        _check_same_tree(params, target, f"load({str(path)!r})")
        self.state_dict = own.replace(params=jax.device_put(params, self.device))


_UNSPECIFIED_PARENT = Model.__dataclass_fields__["parent"].default


def _as_key(seed: int | jax.Array) -> jax.Array:
    if not isinstance(seed, int | np.integer):
        return seed
    try:
        return jax.random.key(int(seed), impl=KEY_IMPL)
    except ValueError:  # a JAX release without philox4x32: its default threefry
        return jax.random.key(int(seed))


def _check_same_tree(source: Any, target: Any, what: str) -> None:
    def signature(tree: Any) -> list[tuple[str, tuple[int, ...], str]]:
        flat = jax.tree_util.tree_flatten_with_path(tree)[0]
        return [(jax.tree_util.keystr(path), tuple(np.shape(x)), str(jnp.result_type(x))) for path, x in flat]

    got, want = signature(source), signature(target)
    if got != want:
        mismatch = next((pair for pair in zip(got, want, strict=False) if pair[0] != pair[1]), (got, want))
        raise ValueError(
            f"{what}: the parameters do not match this model's (first difference: {mismatch[0]} vs "
            f"{mismatch[1]}). Use a model built with the same architecture, spaces and dtype."
        )


@jax.jit
def _polyak(source: Any, target: Any, polyak: jax.Array) -> Any:
    return jax.tree_util.tree_map(lambda s, t: (polyak * s + (1.0 - polyak) * t).astype(t.dtype), source, target)
