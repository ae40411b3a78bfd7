"""Data-parallel collectives of the torch agents on torch.distributed; all of them are no-ops for one process.

A :class:`World` is the agents' view of a data-parallel run: every rank steps its own
environments and computes gradients on its own data, and the agents call

* :meth:`World.average_gradients` between ``backward()`` and gradient clipping, so that every rank
  clips and steps with the same gradient, the mean of the ranks' (equal-sized) minibatch gradients,
  which is the gradient of the mean loss over the union of the minibatches;
* :meth:`World.mean` for the KL that drives the adaptive learning rate and early stopping;
* :meth:`World.mean_std` for advantage standardisation over the union of the rollouts;
* :meth:`World.scaler` and :meth:`World.sync` for running normalisers whose statistics are merged
  across ranks exactly (Chan et al.'s pairwise update, in rank order, so that every rank ends with
  the same bits).

With one rank each method returns its input or does nothing, so single-process training is
bit-identical to training without a world.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from gaussrl.agents.torch.memory import RunningStandardScaler
from gaussrl.core.errors import GaussrlError


class DistributedError(GaussrlError, RuntimeError):
    """A collective that failed: another rank died, hung past the timeout, or disagrees on the data."""


@dataclass(frozen=True)
class World:
    """The ranks of a run. ``World()`` is a single process.

    Args:
        rank: This process's global rank.
        size: Number of ranks.
        local_rank: Rank within this node (selects the CUDA device).
        group: Process group of the gradient collectives (None: the default group).
        cpu_group: A gloo process group for CPU tensors (statistics, checkpoints); None: ``group``.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    group: Any = None
    cpu_group: Any = None

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the rank that evaluates, logs and writes files."""
        return self.rank == 0

    def _all_reduce(self, tensor: torch.Tensor, what: str, *, cpu: bool = False) -> None:
        group = self.cpu_group if cpu and self.cpu_group is not None else self.group
        try:
            dist.all_reduce(tensor, group=group)
        except (RuntimeError, ValueError) as error:
            raise lost_contact(self, what, error) from None

    def all_gather(self, tensor: torch.Tensor, what: str) -> list[torch.Tensor]:
        """Every rank's ``tensor`` (same shape and dtype on every rank), in rank order, over the CPU group.

        Args:
            tensor: A CPU tensor.
            what: What is being gathered, for the error message.

        Returns:
            ``size`` tensors.

        Raises:
            DistributedError: If the collective fails.
        """
        parts = [torch.empty_like(tensor) for _ in range(self.size)]
        group = self.cpu_group if self.cpu_group is not None else self.group
        try:
            dist.all_gather(parts, tensor, group=group)
        except (RuntimeError, ValueError) as error:
            raise lost_contact(self, what, error) from None
        return parts

    def average_gradients(self, parameters: Sequence[torch.Tensor]) -> None:
        """Replace each gradient by its mean over the ranks (one all-reduce of the concatenated gradients).

        Parameters without a gradient are skipped; every rank must have gradients for the same ones.

        Args:
            parameters: The parameters about to be stepped.

        Raises:
            DistributedError: If the collective fails.
        """
        if self.size == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        self._all_reduce(flat, "gradient averaging")
        flat.div_(self.size)
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over the ranks (``value`` itself for one rank).

        Args:
            value: A tensor of the same shape on every rank.

        Returns:
            A new tensor (or ``value``).
        """
        if self.size == 1:
            return value
        total = value.detach().clone()
        self._all_reduce(total, "metric averaging")
        return total / self.size

    def mean_std(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and unbiased standard deviation of the union of every rank's ``values``.

        Two passes (the mean, then the squared deviations from it), as ``Tensor.std`` computes.

        Args:
            values: This rank's values.

        Returns:
            0-d tensors; ``values.mean()`` and ``values.std()`` for one rank.
        """
        if self.size == 1:
            return values.mean(), values.std()
        sums = torch.stack([values.sum(), torch.tensor(float(values.numel()), device=values.device)])
        self._all_reduce(sums, "advantage standardisation")
        mean = sums[0] / sums[1]
        squares = ((values - mean) ** 2).sum()
        self._all_reduce(squares, "advantage standardisation")
        return mean, (squares / (sums[1] - 1.0)).sqrt()

    def scaler(self, size: int, device: str | torch.device) -> RunningStandardScaler:
        """A running normaliser; with several ranks one whose statistics :meth:`sync` merges.

        Args:
            size: Number of features.
            device: Device of the normalised tensors.

        Returns:
            The normaliser.
        """
        return RunningStandardScaler(size, device) if self.size == 1 else SyncedScaler(size, device)

    def sync(self, scaler: RunningStandardScaler | None) -> None:
        """Merge the statistics every rank gathered since the last sync into every rank's normaliser.

        Args:
            scaler: A normaliser made by :meth:`scaler`, or None (nothing to do).

        Raises:
            DistributedError: If the collective fails.
        """
        if isinstance(scaler, SyncedScaler):
            scaler.sync(self)


def lost_contact(world: World, what: str, error: Exception) -> DistributedError:
    """The error of a failed collective.

    Args:
        world: This rank's world.
        what: The collective's purpose.
        error: What torch.distributed raised.

    Returns:
        A one-line :class:`DistributedError`.
    """
    detail = " ".join(str(error).split())[:300]
    return DistributedError(
        f"rank {world.rank} of {world.size} lost contact with the other ranks during {what}: another rank died "
        f"or stopped responding within the timeout (--dist-timeout); see that rank's output above. ({detail})"
    )


def merge_moments(
    first: tuple[float, np.ndarray, np.ndarray], second: tuple[float, np.ndarray, np.ndarray]
) -> tuple[float, np.ndarray, np.ndarray]:
    """Merge the (count, mean, population variance) of two sets of samples (Chan, Golub and LeVeque, 1979).

    Args:
        first: Count, mean and variance of the first set.
        second: The same of the second set.

    Returns:
        The count, mean and variance of the union.
    """
    (n_a, mean_a, var_a), (n_b, mean_b, var_b) = first, second
    total = n_a + n_b
    if n_b == 0.0:
        return first
    if n_a == 0.0:
        return second
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / total)
    var = (var_a * n_a + var_b * n_b + delta * delta * (n_a * n_b / total)) / total
    return total, mean, var


class SyncedScaler(RunningStandardScaler):
    """A :class:`RunningStandardScaler` that also keeps the statistics since the last merge across ranks.

    Between syncs each rank normalises with the merged statistics folded with its own new samples;
    :meth:`sync` merges every rank's new samples, in rank order, into the merged statistics.

    Args:
        size: Number of features.
        device: Device of the normalised tensors.
    """

    def __init__(self, size: int, device: str | torch.device = "cpu") -> None:
        super().__init__(size, device)
        self.pending = RunningStandardScaler(size, "cpu")
        self.merged = RunningStandardScaler(size, "cpu")

    def update(self, batch: torch.Tensor) -> None:
        """Fold a batch into this rank's statistics and into its samples since the last sync.

        Args:
            batch: Shape (B, size).
        """
        super().update(batch)
        self.pending.update(batch)

    def sync(self, world: World) -> None:
        """Merge every rank's samples since the last sync; afterwards every rank holds the same statistics.

        Args:
            world: The ranks.
        """
        size = self.mean.shape[0]
        local = torch.cat([self.pending.count.reshape(1), self.pending.mean, self.pending.var])
        moments = (float(self.merged.count), self.merged.mean.numpy(), self.merged.var.numpy())
        for part in world.all_gather(local, "normaliser merging"):
            values = part.numpy()
            moments = merge_moments(moments, (float(values[0]), values[1 : 1 + size], values[1 + size :]))
        merged = {"count": torch.tensor(moments[0], dtype=torch.float64)}
        merged.update(mean=torch.from_numpy(np.array(moments[1])), var=torch.from_numpy(np.array(moments[2])))
        self.merged.load_state(merged)
        super().load_state(merged)
        self.pending = RunningStandardScaler(size, "cpu")

    def state(self) -> dict[str, Any]:
        """This rank's, the merged and the pending statistics, for a checkpoint.

        Returns:
            ``{"mean", "var", "count", "merged", "pending"}``.
        """
        return {**super().state(), "merged": self.merged.state(), "pending": self.pending.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` wrote (or a plain normaliser's state, taken as merged).

        Args:
            state: As returned by :meth:`state`.
        """
        super().load_state({k: state[k] for k in ("mean", "var", "count")})
        self.merged.load_state(state.get("merged", {k: state[k] for k in ("mean", "var", "count")}))
        if "pending" in state:
            self.pending.load_state(state["pending"])
