"""Data-parallel collectives of the torch agents on torch.distributed; all of them are no-ops for one process.

A :class:`World` is the agents' view of a data-parallel run: every rank steps its own
environments and computes gradients on its own data, and the agents call

* :meth:`World.average_gradients` between ``backward()`` and gradient clipping, so that every rank
  clips and steps with the same gradient, the mean of the ranks' (equal-sized) minibatch gradients,
  which is the gradient of the mean loss over the union of the minibatches; a few more values
  (PPO's KLs) can travel in the same collective, and :meth:`World.start_gradient_average` lets
  the caller compute what does not read the gradients while they travel;
* :meth:`World.mean` for the KL that drives the adaptive learning rate and early stopping;
* :meth:`World.mean_std` for advantage standardisation over the union of the rollouts (and, in the
  same collective, the merge of a normaliser's statistics);
* :meth:`World.scaler`, :meth:`World.return_normalizer` and :meth:`World.sync` for running
  normalisers (observations, PPO's reward scale) whose statistics are merged across ranks exactly
  (Chan et al.'s pairwise update, in rank order, so that every rank ends with the same bits), all
  of them in one collective.

Each collective costs a rank a fraction of a millisecond of gloo's threads and at least the
round trip between the ranks, so the agents make as few as the algorithm allows: one per
optimizer step, plus a couple per PPO update (``benchmarks/collectives.py`` counts them).

With one rank each method returns its input or does nothing, so single-process training is
bit-identical to training without a world.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist

from gaussrl.agents.normalization import ReturnNormalizer, RunningMoments
from gaussrl.agents.torch.memory import RunningStandardScaler
from gaussrl.core.errors import DistributedError
from gaussrl.core.running import merge_moments as fold_moments

EXCHANGE_MAX_RANKS = 4
"""Up to this many ranks, CPU gradients are averaged by an exchange: every rank sends its buffer to
every other and sums all of them in rank order (one round of messages), instead of gloo's ring
all-reduce (2 (P - 1) rounds). With 2 ranks on a 2-core machine that halves both the CPU time of
gloo's threads and the latency per average (``benchmarks/collectives.py``); beyond a few ranks the
ring's smaller traffic wins."""


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

    def average_gradients(
        self, parameters: Sequence[torch.Tensor], also: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Replace each gradient by its mean over the ranks (one all-reduce of the concatenated gradients).

        Parameters without a gradient are skipped; every rank must have gradients for the same ones.

        Args:
            parameters: The parameters about to be stepped.
            also: Float values of the gradients' dtype to average over the ranks in the same collective.

        Returns:
            The mean of ``also`` over the ranks (``also`` itself for one rank), or None.

        Raises:
            DistributedError: If the collective fails.
        """
        return self.start_gradient_average(parameters, also).wait()

    def start_gradient_average(
        self, parameters: Sequence[torch.Tensor], also: torch.Tensor | None = None
    ) -> PendingAverage:
        """Start :meth:`average_gradients` (``async_op``); its ``wait()`` finishes it.

        Until then the gradients must be neither read nor written; work that touches neither can run.

        Args:
            parameters: The parameters about to be stepped.
            also: As for :meth:`average_gradients`.

        Returns:
            The collective in flight (a finished one for one rank).
        """
        grads = [p for p in parameters if p.grad is not None]
        if self.size == 1 or not (grads or also is not None):
            return PendingAverage(self, [], [], [], also)
        pieces = [p.grad.reshape(-1) for p in grads if p.grad is not None]
        flat = torch.cat(pieces if also is None else [*pieces, also.reshape(-1)])
        try:
            if flat.device.type == "cpu" and self.size <= EXCHANGE_MAX_RANKS:
                return PendingAverage(self, *self._exchange(flat), grads, also)
            return PendingAverage(self, [dist.all_reduce(flat, group=self.group, async_op=True)], [flat], grads, also)
        except (RuntimeError, ValueError) as error:
            raise lost_contact(self, "gradient averaging", error) from None

    def _exchange(self, flat: torch.Tensor) -> tuple[list[Any], list[torch.Tensor]]:
        """Send ``flat`` to every other rank and receive theirs (started, not awaited); the buffers in rank order."""
        parts = [flat if rank == self.rank else torch.empty_like(flat) for rank in range(self.size)]
        peers = [rank for rank in range(self.size) if rank != self.rank]
        works = [dist.isend(flat, rank, group=self.group) for rank in peers]
        works += [dist.irecv(parts[rank], rank, group=self.group) for rank in peers]
        return works, parts

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

    def mean_std(
        self, values: torch.Tensor, scaler: RunningStandardScaler | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and unbiased standard deviation of the union of every rank's ``values``.

        Each rank's (count, mean, variance) in float64, merged in rank order (Chan et al.), so that every
        rank gets the same bits; a :class:`SyncedScaler` passed as ``scaler`` is merged in the same collective.

        Args:
            values: This rank's values.
            scaler: A normaliser made by :meth:`scaler` to :meth:`sync` alongside, or None.

        Returns:
            0-d tensors of ``values``' dtype; ``values.mean()`` and ``values.std()`` for one rank.

        Raises:
            DistributedError: If the collective fails.
        """
        if self.size == 1:
            return values.mean(), values.std()
        local = values.detach().to("cpu", torch.float64).reshape(-1)
        mean = local.mean()
        head = torch.stack(
            [torch.tensor(float(local.numel()), dtype=torch.float64), mean, ((local - mean) ** 2).mean()]
        )
        synced = scaler if isinstance(scaler, SyncedScaler) else None
        parts = self.all_gather(
            head if synced is None else torch.cat([head, synced.pending_moments()]), "advantage standardisation"
        )
        moments = (0.0, np.zeros(()), np.zeros(()))
        for part in parts:
            count, part_mean, var = part[:3].numpy()
            moments = merge_moments(moments, (float(count), part_mean, var))
        if synced is not None:
            synced.merge([part[3:] for part in parts])
        count, total_mean, total_var = moments
        std = np.sqrt(total_var * (count / (count - 1.0)))
        return (
            torch.tensor(float(total_mean), dtype=values.dtype, device=values.device),
            torch.tensor(float(std), dtype=values.dtype, device=values.device),
        )

    def scaler(self, size: int, device: str | torch.device) -> RunningStandardScaler:
        """A running normaliser; with several ranks one whose statistics :meth:`sync` merges.

        Args:
            size: Number of features.
            device: Device of the normalised tensors.

        Returns:
            The normaliser.
        """
        return RunningStandardScaler(size, device) if self.size == 1 else SyncedScaler(size, device)

    def return_normalizer(self, num_envs: int, discount_factor: float) -> ReturnNormalizer:
        """PPO's reward scale; with several ranks one whose return statistics :meth:`sync` merges.

        Args:
            num_envs: This rank's environments.
            discount_factor: The agent's discount.

        Returns:
            The normaliser.
        """
        if self.size == 1:
            return ReturnNormalizer(num_envs, discount_factor)
        return SyncedReturnNormalizer(num_envs, discount_factor)

    def sync(self, *normalizers: RunningStandardScaler | ReturnNormalizer | None) -> None:
        """Merge the statistics every rank gathered since the last sync into every rank's normalisers.

        One collective for all of them: each rank's pending moments, concatenated in argument order.

        Args:
            normalizers: Normalisers made by :meth:`scaler` or :meth:`return_normalizer`; None and plain
                (one-rank) normalisers are skipped.

        Raises:
            DistributedError: If the collective fails.
        """
        synced = [n for n in normalizers if isinstance(n, SyncedScaler | SyncedReturnNormalizer)]
        if not synced:
            return
        pending = [n.pending_moments() for n in synced]
        parts = self.all_gather(torch.cat(pending), "normaliser merging")
        start = 0
        for normalizer, own in zip(synced, pending, strict=True):
            normalizer.merge([part[start : start + own.numel()] for part in parts])
            start += own.numel()


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

    :func:`gaussrl.core.running.merge_moments`, which also accepts empty sets on either side.

    Args:
        first: Count, mean and variance of the first set.
        second: The same of the second set.

    Returns:
        The count, mean and variance of the union.
    """
    if second[0] == 0.0:
        return first
    if first[0] == 0.0:
        return second
    mean, var, count = fold_moments((first[1], first[2], first[0]), (second[1], second[2], second[0]))
    return count, mean, var


class PendingAverage:
    """A gradient average in flight (:meth:`World.start_gradient_average`).

    Args:
        world: The ranks.
        works: The handles of the all-reduce or of the exchange's sends and receives; empty when nothing travels.
        parts: The all-reduced buffer, or every rank's buffer in rank order (the exchange).
        parameters: The parameters whose gradients travel, in order.
        also: The extra values, or None.
    """

    def __init__(
        self,
        world: World,
        works: list[Any],
        parts: list[torch.Tensor],
        parameters: list[torch.Tensor],
        also: torch.Tensor | None,
    ) -> None:
        self.world, self.works, self.parts, self.parameters, self.also = world, works, parts, parameters, also

    def wait(self) -> torch.Tensor | None:
        """Finish: every gradient becomes the mean over the ranks (a view of one buffer).

        Returns:
            The mean of the extra values over the ranks (themselves for one rank), or None.

        Raises:
            DistributedError: If the collective fails.
        """
        if not self.works:
            return self.also
        try:
            for work in self.works:
                work.wait()
        except (RuntimeError, ValueError) as error:
            raise lost_contact(self.world, "gradient averaging", error) from None
        flat = self.parts[0]
        if len(self.parts) > 1:  # the exchange: every rank sums the same buffers in the same (rank) order
            flat = self.parts[0] + self.parts[1]
            for part in self.parts[2:]:
                flat += part
        flat.div_(self.world.size)
        offset = 0
        for parameter in self.parameters:
            grad = cast(torch.Tensor, parameter.grad)
            # The averaged bits replace the gradient by reference (no copy); the next zero_grad drops them.
            parameter.grad = flat[offset : offset + grad.numel()].view_as(grad)
            offset += grad.numel()
        return None if self.also is None else flat[offset:].view_as(self.also)


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
        self.merge(world.all_gather(self.pending_moments(), "normaliser merging"))

    def pending_moments(self) -> torch.Tensor:
        """This rank's samples since the last sync: count, mean and variance in one float64 tensor.

        Returns:
            Shape (1 + 2 * size,).
        """
        return torch.cat([self.pending.count.reshape(1), self.pending.mean, self.pending.var])

    def merge(self, parts: Sequence[torch.Tensor]) -> None:
        """Merge every rank's :meth:`pending_moments`, in rank order, into the merged statistics.

        Args:
            parts: Each rank's :meth:`pending_moments`, in rank order.
        """
        size = self.mean.shape[0]
        moments = (float(self.merged.count), self.merged.mean.numpy(), self.merged.var.numpy())
        for part in parts:
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


class SyncedReturnNormalizer(ReturnNormalizer):
    """A :class:`ReturnNormalizer` whose return statistics are merged across ranks, as :class:`SyncedScaler`'s.

    Between syncs each rank scales its rewards with the merged statistics folded with its own new
    returns; :meth:`World.sync` merges every rank's new returns, in rank order, so that every rank
    then divides by the same std. The discounted returns in progress stay per rank (they follow
    that rank's environments).

    Args:
        num_envs: This rank's environments.
        discount_factor: The agent's discount.
    """

    def __init__(self, num_envs: int, discount_factor: float) -> None:
        super().__init__(num_envs, discount_factor)
        self.pending = RunningMoments(1)
        self.merged = RunningMoments(1)

    def fold(self, returns: np.ndarray) -> None:
        """Fold the returns into this rank's statistics and into its returns since the last sync.

        Args:
            returns: Shape (N, 1), float64.
        """
        super().fold(returns)
        self.pending.update(returns)

    def pending_moments(self) -> torch.Tensor:
        """This rank's returns since the last sync: count, mean and variance in one float64 tensor.

        Returns:
            Shape (3,).
        """
        return torch.tensor([self.pending.count, self.pending.mean[0], self.pending.var[0]], dtype=torch.float64)

    def merge(self, parts: Sequence[torch.Tensor]) -> None:
        """Merge every rank's :meth:`pending_moments`, in rank order, into the merged statistics.

        Args:
            parts: Each rank's :meth:`pending_moments`, in rank order.
        """
        moments = (self.merged.count, self.merged.mean, self.merged.var)
        for part in parts:
            values = part.numpy()
            moments = merge_moments(moments, (float(values[0]), values[1:2], values[2:3]))
        merged = {"count": np.asarray(moments[0]), "mean": np.array(moments[1]), "var": np.array(moments[2])}
        self.merged.load_state(merged)
        self.moments.load_state(merged)
        self.pending = RunningMoments(1)

    def state(self) -> dict[str, np.ndarray]:
        """The returns in progress and this rank's, the merged and the pending statistics, for a checkpoint.

        Returns:
            :meth:`ReturnNormalizer.state`'s arrays and ``merged_*`` and ``pending_*`` ones (flat, float64).
        """
        state = super().state()
        for name, moments in (("merged", self.merged), ("pending", self.pending)):
            state.update({f"{name}_{key}": value for key, value in moments.state().items()})
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` wrote (or a one-rank normaliser's state, taken as merged).

        Args:
            state: As returned by :meth:`state`.
        """
        super().load_state(state)
        keys = ("mean", "var", "count")
        merged = {k: state[f"merged_{k}"] for k in keys} if "merged_count" in state else {k: state[k] for k in keys}
        self.merged.load_state(merged)
        self.pending = RunningMoments(1)
        if "pending_count" in state:
            self.pending.load_state({k: state[f"pending_{k}"] for k in keys})
