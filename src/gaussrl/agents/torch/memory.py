"""Storage of the torch agents: running normalisation, GAE, the PPO rollout and the SAC replay buffer."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gaussrl.agents.normalization import batch_moments
from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.core.running import NORMALIZED_CLIP, STD_FLOOR, merge_moments

NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class RunningStandardScaler:
    """Running mean and variance of a stream of batches (Chan et al.'s parallel update), in float64.

    The statistics live in NumPy (a few-element update costs about a microsecond per operation
    there, several in torch); ``mean``, ``var`` and ``count`` are float64 CPU tensors sharing
    their memory.

    Args:
        size: Number of features.
        device: Device of the normalised tensors.
    """

    def __init__(self, size: int, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self._mean = np.zeros(size)
        self._var = np.ones(size)
        self._count = np.zeros(())
        self.mean, self.var, self.count = (torch.from_numpy(a) for a in (self._mean, self._var, self._count))
        self._cache: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}
        self._numpy_cache: dict[type, tuple[np.ndarray, np.ndarray]] = {}

    def update(self, batch: torch.Tensor) -> None:
        """Fold a batch into the statistics.

        Args:
            batch: Shape (B, size).
        """
        data = batch.detach().cpu().numpy().reshape(-1, self._mean.shape[0]).astype(np.float64)
        mean, var, count = merge_moments((self._mean, self._var, float(self._count)), batch_moments(data))
        self._mean[:], self._var[:], self._count[...] = mean, var, count
        self._cache, self._numpy_cache = {}, {}

    def _numpy(self, numpy_dtype: type) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std (at least 1e-8) in ``numpy_dtype``."""
        cached = self._numpy_cache.get(numpy_dtype)
        if cached is None:
            std = np.maximum(np.sqrt(self._var), STD_FLOOR)
            cached = self._numpy_cache[numpy_dtype] = (self._mean.astype(numpy_dtype), std.astype(numpy_dtype))
        return cached

    def _float(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cached = self._cache.get(like.dtype)
        if cached is None:
            numpy_dtype = NUMPY_DTYPES.get(like.dtype)
            if numpy_dtype is None:
                std = torch.from_numpy(np.maximum(np.sqrt(self._var), STD_FLOOR))
                cached = (self.mean.to(self.device, like.dtype), std.to(self.device, like.dtype))
            else:  # converted in NumPy: no torch operation on CPU
                mean_np, std_np = self._numpy(numpy_dtype)
                cached = (torch.from_numpy(mean_np).to(self.device), torch.from_numpy(std_np).to(self.device))
            self._cache[like.dtype] = cached
        return cached

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std``, clipped to +-5.

        Args:
            x: Shape (..., size).

        Returns:
            Same shape and dtype.
        """
        numpy_dtype = NUMPY_DTYPES.get(x.dtype)
        if numpy_dtype is not None and self.device.type == x.device.type == "cpu" and not x.requires_grad:
            # The same float arithmetic in NumPy, several times cheaper per operation on a few elements.
            mean, std = self._numpy(numpy_dtype)
            out = np.subtract(x.numpy(), mean)
            np.divide(out, std, out=out)
            np.maximum(out, -NORMALIZED_CLIP, out=out)
            return torch.from_numpy(np.minimum(out, NORMALIZED_CLIP, out=out))
        mean_t, std_t = self._float(x)
        return ((x - mean_t) / std_t).clamp(-NORMALIZED_CLIP, NORMALIZED_CLIP)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """``y * std + mean``, the inverse of :meth:`normalize` inside the clip range.

        Args:
            y: Shape (..., size).

        Returns:
            Same shape and dtype.
        """
        mean, std = self._float(y)
        return y * std + mean

    def state(self) -> dict[str, torch.Tensor]:
        """The statistics, for a checkpoint.

        Returns:
            ``{"mean", "var", "count"}``, float64 CPU tensors (copies).
        """
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count.clone()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore statistics written by :meth:`state`.

        Args:
            state: ``{"mean", "var", "count"}``.
        """
        for key, array in (("mean", self._mean), ("var", self._var), ("count", self._count)):
            array[...] = state[key].detach().to("cpu", torch.float64).numpy()
        self._cache, self._numpy_cache = {}, {}


def policy_arrays(policy: torch.nn.Module, scaler: RunningStandardScaler | None) -> PolicyArrays:
    """A policy's parameters and its observation normaliser's statistics as NumPy copies.

    Args:
        policy: A torch policy.
        scaler: Its observation normaliser, or None.

    Returns:
        The arrays; mean and std are those :meth:`RunningStandardScaler.normalize` applies (float64 here).
    """
    arrays = {name: tensor.detach().cpu().numpy().copy() for name, tensor in policy.state_dict().items()}
    if scaler is None:
        return PolicyArrays(arrays, None, None)
    mean, var = scaler.mean.numpy().copy(), scaler.var.numpy()
    return PolicyArrays(arrays, mean, np.maximum(np.sqrt(var), STD_FLOOR))


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_values: torch.Tensor,
    *,
    discount_factor: float,
    gae_lambda: float,
) -> torch.Tensor:
    """Generalized advantage estimation (Schulman et al., 2016, eq. 16), backwards over time.

    ``delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t`` and ``A_t = delta_t + gamma lambda (1 - d_t) A_{t+1}``.
    Truncated episodes count as done here; their bootstrap value is already in ``r_t``.

    Args:
        rewards: Shape (T, N, 1).
        values: V(s_t), shape (T, N, 1).
        dones: Episode ended after step t, shape (T, N, 1), bool or float.
        last_values: V(s_T) of the observation after the rollout, shape (N, 1).
        discount_factor: gamma.
        gae_lambda: lambda.

    Returns:
        Advantages, shape (T, N, 1).
    """
    # The backward recursion runs in NumPy: each step is two element-wise operations on N numbers,
    # which cost about a microsecond there against several in torch. Same float32 arithmetic, same order.
    rewards_, values_, last_ = (t.detach().cpu().numpy() for t in (rewards, values, last_values))
    not_done = 1.0 - dones.detach().cpu().numpy().astype(values_.dtype)
    next_values = np.concatenate([values_[1:], last_[None]])
    deltas = rewards_ + discount_factor * not_done * next_values - values_
    decays = discount_factor * gae_lambda * not_done
    advantages = np.empty_like(values_)
    advantage = np.zeros_like(last_)
    for t in range(rewards_.shape[0] - 1, -1, -1):
        advantage = deltas[t] + decays[t] * advantage
        advantages[t] = advantage
    return torch.from_numpy(advantages).to(values.device)


class TensorStore:
    """Named tensors of a fixed leading capacity, with a write position (the base of both buffers).

    Args:
        capacity: Leading size of every tensor.
        num_envs: Second dimension of every tensor.
        specs: Name to trailing shape (``()`` adds no dimension) and dtype.
        device: Device.
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        specs: dict[str, tuple[tuple[int, ...], torch.dtype]],
        device: str | torch.device = "cpu",
    ) -> None:
        self.capacity = capacity
        self.tensors = {
            name: torch.zeros((capacity, num_envs, *shape), dtype=dtype, device=device)
            for name, (shape, dtype) in specs.items()
        }
        # On CPU, rows are written through NumPy views of the same memory: a NumPy row assignment costs
        # about a microsecond, torch's indexing plus copy_ several.
        on_cpu = torch.device(device).type == "cpu"
        self._arrays = {name: tensor.numpy() for name, tensor in self.tensors.items()} if on_cpu else None
        self.position = 0
        self.filled = False

    def add(self, **values: torch.Tensor) -> None:
        """Write one step of every tensor at the current position and advance it (wrapping around).

        Args:
            **values: One tensor per name, shape (N, ...).

        Raises:
            KeyError: If a name is missing or unknown.
        """
        if values.keys() != self.tensors.keys():
            raise KeyError(f"add() got {sorted(values)}; expected {sorted(self.tensors)}.")
        if self._arrays is None:
            for name, value in values.items():
                self.tensors[name][self.position].copy_(value)
        else:
            for name, value in values.items():
                self._arrays[name][self.position] = value.detach().cpu().numpy()
        self.position += 1
        if self.position == self.capacity:
            self.position, self.filled = 0, True

    def __len__(self) -> int:
        return self.capacity if self.filled else self.position

    def state(self) -> dict[str, Any]:
        """The written rows, position and fill flag, for a checkpoint.

        Returns:
            A nested dict of tensors and ints.
        """
        rows = len(self)
        return {
            "tensors": {k: v[:rows] for k, v in self.tensors.items()},
            "position": self.position,
            "filled": self.filled,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned.

        Args:
            state: As returned by :meth:`state`.

        Raises:
            ValueError: If the shapes differ from this buffer's.
        """
        for name, tensor in self.tensors.items():
            saved = state["tensors"][name]
            if saved.shape[1:] != tensor.shape[1:] or saved.shape[0] > tensor.shape[0]:
                raise ValueError(
                    f"checkpoint buffer {name!r} has shape {tuple(saved.shape)}; this run's is {tuple(tensor.shape)} "
                    f"(was the run started with other rollouts/memory_size/num_envs?)."
                )
            tensor[: saved.shape[0]].copy_(saved)
        self.position, self.filled = int(state["position"]), bool(state["filled"])

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        """Uniform random transitions (with replacement) from what has been written.

        Args:
            batch_size: Number of transitions.

        Returns:
            Name to tensor of shape (batch_size, ...).
        """
        first = next(iter(self.tensors.values()))
        flat = torch.randint(len(self) * first.shape[1], (batch_size,), device=first.device)
        # Row-major (step, env) flattening: index flat is step flat // num_envs of env flat % num_envs.
        if self._arrays is None:
            return {name: tensor.flatten(0, 1)[flat] for name, tensor in self.tensors.items()}
        index = flat.numpy()  # the same gather, through NumPy (a few times cheaper per tensor on CPU)
        return {
            name: torch.from_numpy(array.reshape(-1, *array.shape[2:])[index]) for name, array in self._arrays.items()
        }
