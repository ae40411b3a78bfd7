"""warp-nn matrix-product tiles for the Warp agents' networks on Warp's CPU device.

warp-nn builds each layer's kernels for one tile (``warp_nn.utils.kernel_config``), chosen for
CUDA. On the CPU device the best tile depends on the batch: the gradient steps' batches (128-256
rows) run faster on a large tile, a rollout step's act (1-4 rows) on a small one. A network
trained with the large tile therefore gets a copy of its layers with a small tile, sharing its
parameters, for the small calls (:class:`SmallBatchNet`). Measurements: benchmarks/results/tried.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import warp as wp
from warp_nn import nn
from warp_nn.utils import kernel_config

CPU_TILE_2D = (64, 64)
"""Tile of the warp-nn matrix products on Warp's CPU device for batches of at least ``CPU_TILE_MIN_BATCH``.

warp-nn's default (16, 64) tile is chosen for CUDA; on the CPU device, a 256-row forward and
backward pass of a 4-128-128-1 MLP takes about 1.4x less time with (64, 64), and PPO's 128-row
minibatches through 64-wide layers about 1.3x less (one thread, benchmarks/results/tried.md).
Smaller batches (a rollout step's act) go to a copy with a small tile (:func:`small_batch_tile`).
"""
CPU_TILE_MIN_BATCH = 64
SMALL_TILE_COLUMNS = 64
"""Output columns of the tile of the small-batch copy of a network (:func:`small_batch_tile`)."""
Tile = tuple[int, int]


def matmul_tile(device: str | wp.Device | None, batch_size: int) -> Tile | None:
    """The warp-nn tile for networks trained on batches of ``batch_size`` rows on ``device``.

    Args:
        device: Warp device of the networks.
        batch_size: Rows of the batches their gradient steps run on.

    Returns:
        ``CPU_TILE_2D`` on the CPU device for large batches; None (warp-nn's default) otherwise.
    """
    large = batch_size >= CPU_TILE_MIN_BATCH
    return CPU_TILE_2D if large and wp.get_device(device).is_cpu else None


def small_batch_tile(device: str | wp.Device | None, batch_size: int, rows: int) -> Tile | None:
    """The tile of a network's calls on fewer than ``CPU_TILE_MIN_BATCH`` rows, when its own tile is the large one.

    A (64, 64) tile computes 64 rows whatever the batch: a rollout step's act on 4 rows costs
    about 2.5x (PPO's 64-wide networks) to 4x (SAC's 128-wide ones, on 1 row) what a tile of 4
    (or 1) rows costs (one thread, benchmarks/results/tried.md). Such calls go to a copy of the
    network's layers that shares its parameters (:class:`SmallBatchNet`).

    Args:
        device: Warp device of the networks.
        batch_size: Rows of the batches their gradient steps run on (what picks their own tile).
        rows: Rows of their small calls (the number of environments).

    Returns:
        ``(r, SMALL_TILE_COLUMNS)``, ``r`` the power of two ``>= rows`` up to 16, when ``matmul_tile``
        gives the large tile and ``rows < CPU_TILE_MIN_BATCH``; None otherwise (no copy).
    """
    if matmul_tile(device, batch_size) is None or rows >= CPU_TILE_MIN_BATCH:
        return None
    return min(16, 1 << max(0, rows - 1).bit_length()), SMALL_TILE_COLUMNS


@contextlib.contextmanager
def tile(tile_2d: Tile | None) -> Iterator[None]:
    """warp-nn's kernel configuration for the layers built inside (its default when None)."""
    if tile_2d is None:
        yield
    else:
        with kernel_config(tile_2d=tile_2d):
            yield


def retiled(net: nn.Sequential, tile_2d: Tile) -> nn.Sequential:
    """The layers of an MLP again, with another tile, reading ``net``'s parameters.

    Each new ``Linear`` is given ``net``'s ``weight`` and ``bias`` parameters (the same objects), so
    it computes with their current values and a tape through it writes their gradients.

    Args:
        net: A ``Sequential`` of ``Linear``, ``Tanh`` and ``ReLU`` layers (what ``networks.mlp`` builds).
        tile_2d: The tile of the copy.

    Returns:
        The copy (not registered anywhere: it owns no parameter that a state dict should list).

    Raises:
        TypeError: If ``net`` holds another kind of layer.
    """
    layers: list[nn.Module] = []
    with wp.ScopedDevice(net.device), kernel_config(tile_2d=tile_2d):
        for layer in net.modules():
            twin: nn.Module
            if isinstance(layer, nn.Linear):
                bias = layer.bias is not None
                twin = nn.Linear(layer.in_features, layer.out_features, bias=bias, initialize_parameters=False)
                twin.weight, twin.bias = layer.weight, layer.bias
            elif isinstance(layer, nn.Tanh | nn.ReLU):
                twin = type(layer)()
            else:
                raise TypeError(
                    f"retiled() copies the Linear, Tanh and ReLU layers of an MLP; got {type(layer).__name__}. "
                    f"Build the network from those layers, or pass no small tile."
                )
            layers.append(twin)
    return nn.Sequential(*layers)


class SmallBatchNet:
    """Calls a network, through a copy with a small tile for batches under ``CPU_TILE_MIN_BATCH`` rows.

    Not a ``warp_nn`` module, so that a model holding one registers and saves only ``net``.

    Args:
        net: A ``Sequential`` of ``Linear``, ``Tanh`` and ``ReLU`` layers.
        tile_2d: The copy's tile (see :func:`small_batch_tile`); None: every call goes to ``net``.
    """

    def __init__(self, net: nn.Sequential, tile_2d: Tile | None) -> None:
        self.net = net
        self.small = None if tile_2d is None else retiled(net, tile_2d)

    def __call__(self, x: wp.array) -> wp.array:
        """``net(x)``, computed by the small-tile copy when ``x`` has fewer than ``CPU_TILE_MIN_BATCH`` rows.

        Args:
            x: Input (N, features).

        Returns:
            The output of the network (an array its layers reuse per shape, as warp_nn's do).
        """
        small = self.small
        if small is None or x.shape[0] >= CPU_TILE_MIN_BATCH:
            output: wp.array = self.net(x)
            return output
        if small.device != self.net.device:  # the model was moved: its parameters now live there
            small.to(self.net.device)
        output = small(x)
        return output
