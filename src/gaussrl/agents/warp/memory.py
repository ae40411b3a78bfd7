"""Storage of the Warp agents: running normalisation, the PPO rollout and the SAC replay buffer.

Arrays are float32 ``warp.array`` objects on the agent's device, one row per (step, env)
sample, flattened row-major (row ``t * N + j``). The normalisation statistics are float64
arrays on the device, updated there by :func:`gaussrl.agents.warp.kernels.fold_kernel` (the
update of :func:`gaussrl.core.running.merge_moments`), so that an update never reads back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import warp as wp

from gaussrl.agents.normalizer import STD_FLOOR
from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.agents.warp.kernels import denormalize_kernel, fold_kernel, gather_kernel, normalize_kernel

f32 = wp.float32
SEED_BOUND = 2**31 - 1
"""Model seeds are drawn in [0, 2**31 - 1), as ``gaussrl.models.warp.Model.next_seed`` draws its own."""


def reseed(model: Any, rng: np.random.Generator) -> None:
    """Seed a model's sampling from the agent's generator.

    The agents call this before each act and each update, so that every draw of the model
    follows from the agent's generator alone: a checkpoint of that generator's state resumes
    the exact stream, and evaluations (which draw from the model) do not shift it.

    Args:
        model: A Warp model.
        rng: The agent's generator.
    """
    model.seed(int(rng.integers(0, SEED_BOUND)))


@dataclass
class WarpStep:
    """One vector step for the Warp agents.

    Attributes:
        observations: Next observations (N, F) on the agent's device.
        rewards: Shape (N, 1), on the device.
        terminated: Shape (N,), bool, on the host: the episode reached a terminal state.
        truncated: Shape (N,), bool, on the host: the episode was cut (bootstrap).
        final_observations: The observations the episodes ended on (N, F), on the device.
    """

    observations: wp.array
    rewards: wp.array
    terminated: np.ndarray
    truncated: np.ndarray
    final_observations: wp.array


def column(values: np.ndarray, device: Any) -> wp.array:
    """Host values as a float32 (N, 1) device array.

    Args:
        values: Any shape with N elements.
        device: Warp device.

    Returns:
        The array.
    """
    return wp.array(np.asarray(values, np.float32).reshape(-1, 1), dtype=f32, device=device)


class Scaler:
    """Running mean and std of a stream of batches, kept and applied on the device.

    Args:
        size: Number of features.
        device: Warp device.
    """

    def __init__(self, size: int, device: Any) -> None:
        self.device = device
        self.mean = wp.zeros(size, dtype=wp.float64, device=device)
        self.var = wp.ones(size, dtype=wp.float64, device=device)
        self.count = wp.zeros(1, dtype=wp.float64, device=device)
        self.mean32 = wp.zeros(size, dtype=f32, device=device)
        self.std32 = wp.ones(size, dtype=f32, device=device)

    def update(self, batch: wp.array | np.ndarray) -> None:
        """Fold a batch (B, size) into the statistics, on the device.

        Args:
            batch: Shape (B, size): a device array, or host values (copied to the device).
        """
        if not isinstance(batch, wp.array):
            batch = wp.array(
                np.asarray(batch, np.float32).reshape(-1, self.mean.shape[0]), dtype=f32, device=self.device
            )
        outputs = [self.mean, self.var, self.count, self.mean32, self.std32]
        wp.launch(fold_kernel, 1, inputs=[batch], outputs=outputs, device=self.device)

    def normalize(self, x: wp.array, out: wp.array | None = None) -> wp.array:
        """``clip((x - mean) / std, -5, 5)`` into a fresh array or ``out``.

        Args:
            x: Shape (B, size).
            out: Array of x's shape to write into; None: a new one.

        Returns:
            The result (``out`` when given).
        """
        out = wp.empty(x.shape, dtype=f32, device=self.device) if out is None else out
        wp.launch(normalize_kernel, x.shape, inputs=[x, self.mean32, self.std32], outputs=[out], device=self.device)
        return out

    def denormalize(self, y: wp.array) -> wp.array:
        """``y * std + mean`` into a fresh array.

        Args:
            y: Shape (B, size).

        Returns:
            Same shape.
        """
        out = wp.empty(y.shape, dtype=f32, device=self.device)
        wp.launch(denormalize_kernel, y.shape, inputs=[y, self.mean32, self.std32], outputs=[out], device=self.device)
        return out

    def state(self) -> dict[str, np.ndarray]:
        """The statistics, for a checkpoint.

        Returns:
            ``{"mean", "var", "count"}``, float64 host copies (count 0-d).
        """
        return {
            "mean": self.mean.numpy().copy(),
            "var": self.var.numpy().copy(),
            "count": self.count.numpy().reshape(()).copy(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned.

        Args:
            state: ``{"mean", "var", "count"}``.
        """
        mean, var = (np.asarray(state[key], np.float64) for key in ("mean", "var"))
        self.mean.assign(mean)
        self.var.assign(var)
        self.count.assign(np.asarray(state["count"], np.float64).reshape(1))
        self.mean32.assign(mean.astype(np.float32))
        self.std32.assign(np.maximum(np.sqrt(var), STD_FLOOR).astype(np.float32))


class ArrayStore:
    """Named float32 arrays of ``capacity * num_envs`` rows, written one vector step at a time.

    Args:
        capacity: Steps held.
        num_envs: Rows per step.
        widths: Name to number of columns.
        device: Warp device.
    """

    def __init__(self, capacity: int, num_envs: int, widths: dict[str, int], device: Any) -> None:
        self.capacity, self.num_envs, self.device = capacity, num_envs, device
        self.arrays = {k: wp.zeros((capacity * num_envs, w), dtype=f32, device=device) for k, w in widths.items()}
        self.position = 0
        self.filled = False

    def row(self, name: str) -> wp.array:
        """The current step's rows of one array (a view), shape (num_envs, width).

        Args:
            name: Array name.

        Returns:
            The view.
        """
        start = self.position * self.num_envs
        view: wp.array = self.arrays[name][start : start + self.num_envs]
        return view

    def write(self, name: str, value: wp.array | np.ndarray) -> None:
        """Copy a device array or host values into the current step's rows.

        Args:
            name: Array name.
            value: Shape (num_envs, width).
        """
        if isinstance(value, wp.array):
            wp.copy(self.row(name), value)
        else:
            self.row(name).assign(np.asarray(value, np.float32).reshape(self.num_envs, -1))

    def advance(self) -> None:
        """Move to the next step, wrapping around (and marking the store filled)."""
        self.position += 1
        if self.position == self.capacity:
            self.position, self.filled = 0, True

    def __len__(self) -> int:
        return self.capacity if self.filled else self.position

    def gather(
        self, names: list[str] | tuple[str, ...], index: wp.array, out: dict[str, wp.array] | None = None
    ) -> dict[str, wp.array]:
        """Rows ``index`` of the named arrays, into fresh arrays or ``out``'s.

        Args:
            names: Array names.
            index: Row indices, int32, on the device.
            out: Name to (len(index), width) array to write into; None: new arrays.

        Returns:
            Name to array of shape (len(index), width).
        """
        return gather({name: self.arrays[name] for name in names}, index, out)

    def state(self) -> dict[str, Any]:
        """The written rows, position and fill flag, for a checkpoint.

        Returns:
            A nested dict of NumPy arrays and ints.
        """
        rows = len(self) * self.num_envs
        return {
            "arrays": {k: v.numpy()[:rows].copy() for k, v in self.arrays.items()},
            "position": self.position,
            "filled": self.filled,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned.

        Args:
            state: As returned by :meth:`state`.

        Raises:
            ValueError: If the shapes differ from this store's.
        """
        for name, array in self.arrays.items():
            saved = np.asarray(state["arrays"][name], np.float32)
            if saved.shape[1:] != array.shape[1:] or saved.shape[0] > array.shape[0]:
                raise ValueError(
                    f"checkpoint buffer {name!r} has shape {saved.shape}; this run's is {array.shape} "
                    f"(was the run started with other rollouts/memory_size/num_envs?)."
                )
            if saved.shape[0]:
                array[: saved.shape[0]].assign(saved)
        self.position, self.filled = int(state["position"]), bool(state["filled"])


def gather(arrays: dict[str, wp.array], index: wp.array, out: dict[str, wp.array] | None = None) -> dict[str, wp.array]:
    """Rows ``index`` of each array, into fresh arrays or ``out``'s (one launch per array).

    Args:
        arrays: Name to (R, width) float32 array.
        index: Row indices, int32, on the arrays' device.
        out: Name to (len(index), width) array to write into; None: new arrays.

    Returns:
        Name to array of shape (len(index), width).
    """
    result = {}
    for name, source in arrays.items():
        shape = (index.shape[0], source.shape[1])
        target = wp.empty(shape, dtype=f32, device=source.device) if out is None else out[name]
        wp.launch(gather_kernel, shape, inputs=[source, index], outputs=[target], device=source.device)
        result[name] = target
    return result


def model_arrays(model: Any) -> dict[str, np.ndarray]:
    """A model's parameters and buffers as NumPy copies, by ``state_dict()`` name.

    Args:
        model: A Warp model.

    Returns:
        Name to array.
    """
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def policy_arrays(policy: Any, scaler: Scaler | None) -> PolicyArrays:
    """A policy's parameters under its torch twin's names and shapes, and the normaliser's statistics.

    Args:
        policy: A Warp MLP policy (its ``state_dict`` names are the torch twin's; biases are (out, 1) here).
        scaler: Its observation normaliser, or None.

    Returns:
        The arrays; mean and std are the float32 ones :meth:`Scaler.normalize` applies.
    """
    arrays = {k: v.reshape(-1) if k.endswith(".bias") else v for k, v in model_arrays(policy).items()}
    if scaler is None:
        return PolicyArrays(arrays, None, None)
    return PolicyArrays(arrays, scaler.mean32.numpy().copy(), scaler.std32.numpy().copy())


def load_arrays(model: Any, arrays: dict[str, Any]) -> None:
    """Copy saved arrays into a model's parameters in place (optimizers keep pointing at them).

    Args:
        model: A Warp model.
        arrays: Name to array, as ``state_dict()`` names them.

    Raises:
        ValueError: If the names or shapes differ.
    """
    own = model.state_dict()
    if {k: tuple(v.shape) for k, v in own.items()} != {k: tuple(np.shape(v)) for k, v in arrays.items()}:
        raise ValueError(
            f"checkpoint arrays {sorted(arrays)} do not match the model's {sorted(own)} in names or shapes; "
            f"resume with the network sizes the run was started with."
        )
    for name, array in own.items():
        array.assign(np.asarray(arrays[name], np.float32))
