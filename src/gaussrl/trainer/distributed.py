"""Data-parallel training across processes: torch.distributed, launched by torchrun or ``gaussrl train --nproc``.

``torchrun --standalone --nproc_per_node N -m gaussrl train ...`` (or ``gaussrl train --nproc N``,
which starts the same workers through torch's elastic launcher API) runs one trainer per rank:

* every rank steps its own environments: the sub-environments are numbered globally
  (rank r's copies are ``r * num_envs ... r * num_envs + num_envs - 1``), so each episode seed is
  that of a one-process run with ``N * num_envs`` environments; ranks above 0 reseed torch with
  :func:`rank_seed` after the networks are built;
* the networks are built from the same seed and broadcast from rank 0 (:func:`broadcast_agent`),
  and the agents average gradients and merge normaliser statistics every update
  (``gaussrl.agents.torch.distributed``), so the parameters stay identical on every rank;
* rank 0 alone evaluates, logs and writes files; a checkpoint holds every rank's state
  (:func:`gather_to_main`), and a resumed run hands each rank its own (:func:`scatter_from_main`).

States travel between ranks as bytes, a JSON skeleton and a safetensors payload (the checkpoint
format, never pickle), over a gloo group.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from gaussrl.agents.torch.distributed import World, lost_contact
from gaussrl.agents.torch.ppo import PPO
from gaussrl.agents.torch.sac import SAC
from gaussrl.core.errors import LOST_CONTACT_STATUS, DistributedError, GaussrlError
from gaussrl.io.checkpoint import flatten_state, unflatten_state

LAUNCHER_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""Environment variables torchrun (and the elastic agent) set for every worker."""
HEADER_BYTES = 8
T = TypeVar("T")


def launched() -> bool:
    """Whether this process is a worker started by torchrun or the elastic launcher.

    Returns:
        True when every variable of :data:`LAUNCHER_VARIABLES` is set.
    """
    return all(name in os.environ for name in LAUNCHER_VARIABLES)


def start_world(device: str, timeout_s: float) -> tuple[World, str]:
    """Join the process group of a torchrun worker (gloo on CPU, NCCL on CUDA); ``World()`` otherwise.

    Args:
        device: The configured torch device (``"cuda"`` becomes this rank's ``cuda:<local rank>``).
        timeout_s: Seconds a collective waits for the other ranks before it fails.

    Returns:
        The world and this rank's device.
    """
    if not launched() or int(os.environ["WORLD_SIZE"]) == 1:
        return World(), device
    local_rank = int(os.environ["LOCAL_RANK"])
    cuda = torch.device(device).type == "cuda"
    if cuda:
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    timeout = timedelta(seconds=timeout_s)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    cpu_group = dist.new_group(backend="gloo", timeout=timeout) if cuda else None
    world = World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local_rank, cpu_group=cpu_group)
    return world, device


def stop_world(world: World) -> None:
    """Leave the process group (nothing for one process).

    Args:
        world: The world of :func:`start_world`.
    """
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The torch seed of rank ``rank`` > 0 (rank 0 keeps the run's seed, as a one-process run).

    Args:
        seed: The run's seed.
        rank: The rank.

    Returns:
        A 63-bit seed, independent across seeds and ranks (``numpy.random.SeedSequence``).
    """
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0] >> 1)


def shared_modules(agent: PPO | SAC) -> list[torch.nn.Module]:
    """The networks every rank must hold identically.

    Args:
        agent: PPO or SAC.

    Returns:
        The modules.
    """
    if isinstance(agent, PPO):
        return [agent.policy, agent.value]
    return [agent.policy, *agent.critics, *agent.target_critics]


def broadcast_agent(world: World, agent: PPO | SAC) -> None:
    """Copy rank 0's parameters and buffers (and SAC's temperature) to every rank.

    Args:
        world: The ranks.
        agent: This rank's agent.

    Raises:
        DistributedError: If the broadcast fails.
    """
    if world.size == 1:
        return
    tensors = [t for module in shared_modules(agent) for t in module.state_dict().values()]
    if isinstance(agent, SAC):
        tensors.append(agent.log_entropy_coefficient)
    with torch.no_grad():
        for tensor in tensors:
            try:
                dist.broadcast(tensor, src=0)
            except (RuntimeError, ValueError) as error:
                raise lost_contact(world, "the initial broadcast of the parameters", error) from None


def pack(state: Any) -> torch.Tensor:
    """Serialise a nested state of tensors and JSON values into bytes (no pickle).

    Args:
        state: As :func:`gaussrl.io.checkpoint.flatten_state` takes it.

    Returns:
        A uint8 tensor: an 8-byte length, the JSON skeleton, then the tensors as safetensors.
    """
    skeleton, tensors = flatten_state(state)
    text = json.dumps(skeleton).encode("utf-8")
    data = len(text).to_bytes(HEADER_BYTES, "little") + text + save_tensors(tensors)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def unpack(data: torch.Tensor) -> Any:
    """Rebuild the state :func:`pack` serialised.

    Args:
        data: The uint8 tensor.

    Returns:
        The nested state.
    """
    raw = data.numpy().tobytes()
    length = int.from_bytes(raw[:HEADER_BYTES], "little")
    skeleton = json.loads(raw[HEADER_BYTES : HEADER_BYTES + length].decode("utf-8"))
    return unflatten_state(skeleton, load_tensors(raw[HEADER_BYTES + length :]))


def _group(world: World) -> Any:
    return world.cpu_group if world.cpu_group is not None else world.group


def _send(world: World, data: torch.Tensor, dst: int, what: str) -> None:
    try:
        dist.send(torch.tensor([data.numel()], dtype=torch.int64), dst, group=_group(world))
        dist.send(data, dst, group=_group(world))
    except (RuntimeError, ValueError) as error:
        raise lost_contact(world, what, error) from None


def _recv(world: World, src: int, what: str) -> torch.Tensor:
    try:
        size = torch.zeros(1, dtype=torch.int64)
        dist.recv(size, src, group=_group(world))
        data = torch.empty(int(size[0]), dtype=torch.uint8)
        dist.recv(data, src, group=_group(world))
    except (RuntimeError, ValueError) as error:
        raise lost_contact(world, what, error) from None
    return data


def gather_to_main(world: World, state: Any) -> list[Any] | None:
    """Every rank's ``state``, in rank order, on rank 0 (None on the other ranks).

    Args:
        world: The ranks.
        state: This rank's state (tensors and JSON values).

    Returns:
        The states on rank 0, else None.
    """
    if world.size == 1:
        return [state]
    if not world.is_main:
        _send(world, pack(state), 0, "checkpoint gathering")
        return None
    return [state] + [unpack(_recv(world, rank, "checkpoint gathering")) for rank in range(1, world.size)]


def scatter_from_main(world: World, load: Callable[[], Sequence[T]], error_type: type[GaussrlError]) -> T:
    """On rank 0, call ``load`` for one item per rank and send each rank its own; return this rank's.

    If ``load`` raises a :class:`GaussrlError` on rank 0, every rank raises ``error_type`` with its message.

    Args:
        world: The ranks.
        load: Called on rank 0 only; returns ``size`` items of tensors and JSON values.
        error_type: The error the other ranks raise when rank 0 fails.

    Returns:
        This rank's item.

    Raises:
        GaussrlError: What ``load`` raised (rank 0) or ``error_type`` (other ranks).
    """
    if not world.is_main:
        item = unpack(_recv(world, 0, "resuming"))
        if "error" in item:
            raise error_type(item["error"])
        return item["item"]  # type: ignore[no-any-return]
    try:
        items = load()
    except GaussrlError as error:
        for rank in range(1, world.size):
            _send(world, pack({"error": str(error)}), rank, "resuming")
        raise
    for rank in range(1, world.size):
        _send(world, pack({"item": items[rank]}), rank, "resuming")
    return items[0]


def describe_failures(failures: Mapping[int, Any]) -> str:
    """Which ranks failed first and which stopped after them, in one line.

    A rank stops after another either when the launcher sends it SIGTERM or when it finds that it
    lost contact with the others (exit status :data:`~gaussrl.core.errors.LOST_CONTACT_STATUS`);
    whichever the race, the rank that failed first comes first.

    Args:
        failures: The elastic agent's ``ChildFailedError.failures``: rank to ``ProcessFailure``.

    Returns:
        E.g. ``"rank 1 exited with signal SIGKILL; the launcher then stopped rank 0."``.
    """

    def how(failure: Any) -> str:
        return f"signal {failure.signal_name()}" if failure.exitcode < 0 else f"status {failure.exitcode}"

    def ranks(group: Sequence[int]) -> str:
        return f"rank{'s' if len(group) > 1 else ''} {', '.join(map(str, group))}"

    # A rank stopped by the launcher's SIGTERM either dies of it or exits 143 after gaussrl's own handler.
    stopped = {rank for rank, f in failures.items() if f.exitcode in (-signal.SIGTERM, 128 + signal.SIGTERM)}
    lost = {rank for rank, f in failures.items() if f.exitcode == LOST_CONTACT_STATUS}
    causes = sorted(set(failures) - stopped - lost) or sorted(lost) or sorted(stopped)
    parts = [", ".join(f"rank {rank} exited with {how(failures[rank])}" for rank in causes)]
    if lost_after := sorted(lost - set(causes)):
        parts.append(f"{ranks(lost_after)} then lost contact and stopped")
    if stopped_after := sorted(stopped - set(causes)):
        parts.append(f"the launcher then stopped {ranks(stopped_after)}")
    return "; ".join(parts) + "."


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m gaussrl <argv>`` in ``nproc`` workers on this node via torch's elastic launcher API.

    The same as ``torchrun --standalone --nproc_per_node <nproc> -m gaussrl <argv>``: a private
    c10d rendezvous on a free local port, no restarts; when a worker fails the launcher stops the
    others.

    Args:
        nproc: Number of workers (ranks).
        argv: The command line without the program name.

    Returns:
        The exit status: 0, or 1 after printing which ranks failed.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError  # noqa: PLC0415
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch  # noqa: PLC0415

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
    )
    try:
        elastic_launch(config, sys.executable)("-m", "gaussrl", *argv)
    except ChildFailedError as error:
        print(f"gaussrl: error: the run stopped: {describe_failures(error.failures)}", file=sys.stderr)
        return 1
    return 0


__all__ = [
    "DistributedError",
    "World",
    "broadcast_agent",
    "gather_to_main",
    "launch",
    "launched",
    "pack",
    "rank_seed",
    "scatter_from_main",
    "start_world",
    "stop_world",
    "unpack",
]
