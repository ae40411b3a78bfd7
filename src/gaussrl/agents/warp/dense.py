"""Dense layers and activations with hand-written backward passes, and the tape that runs them.

A :class:`Dense` layer is a ``warp_nn`` ``Linear`` (the same ``weight`` (out, in) and ``bias``
(out, 1) parameters, so state dicts, optimizers and ``Sequential`` treat it as one) whose
forward pass is one tiled matrix product of ours, with a tile picked per call from the shapes
(:func:`tiles`: on the CPU device a rollout step's 1-4 rows get a small tile, a minibatch of 64 rows
or more a 64 x 64 one). :class:`Tanh` and :class:`ReLU` stand where ``warp_nn``'s would.

Their backward passes depend on the tape that records them:

* inside a :class:`Tape` (what gaussrl's Warp agents use), each call records a backward function
  (``wp.Tape.record_func``) that launches kernels of ours: for ``Dense`` the input gradient
  ``dX += dY W``, the weight gradient ``dW += dY^T X`` and the bias gradient, each skipped when
  nothing wants it (an input without gradient, parameters the tape was told are ``frozen``, such as
  the critics' in SAC's policy step); for the activations ``dX += dY f'(X)`` with ``f'`` read from
  the output. On Warp's CPU device a 256 x 128 -> 128 ``Dense`` forward and backward take about
  two thirds of the time of ``warp_nn``'s ``Linear`` (``benchmarks/results/tried.md``);
* under a plain ``wp.Tape``, or none, the forward kernels are launched as any other and the tape
  differentiates them with Warp's own adjoint (about as fast for ``Dense``, faster on narrow inputs;
  it cannot skip frozen parameters): right under any tape.

Every call returns a new output array (no reuse per shape, unlike ``warp_nn``'s layers), so one
layer may run several times inside one tape.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import warp as wp
from warp_nn import nn
from warp_nn.utils import get_kernel_config

from gaussrl.agents.warp.kernels import DenseKernels, activation_kernels, dense_kernels

ROW_TILE = 64
"""Largest tile of rows (batch) of a product; a call on fewer rows gets the power of two at or above them."""
COLUMN_TILE = 64
"""Largest tile of output features (and of input features, the reduction chunk)."""
CUDA_DEPTH = 16
"""Largest reduction chunk on CUDA (each chunk's operand tiles live in shared memory)."""

_ACTIVE: contextvars.ContextVar[Tape | None] = contextvars.ContextVar("gaussrl_dense_tape", default=None)


class Tape(wp.Tape):
    """A ``wp.Tape`` under which :class:`Dense` layers record their hand-written backward passes.

    Used exactly as ``wp.Tape`` (``with tape: ...``, ``tape.backward(loss)``, ``tape.zero()``);
    launches of anything else are recorded and differentiated by Warp as usual.

    Args:
        frozen: Parameter arrays whose gradients this tape does not compute (their ``.grad`` is left
            untouched): the critics' parameters while the policy's loss is differentiated through them.
    """

    def __init__(self, frozen: Iterable[wp.array] = ()) -> None:
        super().__init__()
        self.frozen = tuple(frozen)
        self.dense_token: contextvars.Token[Tape | None] | None = None

    def __enter__(self) -> Tape:
        super().__enter__()
        self.dense_token = _ACTIVE.set(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.dense_token is not None:
            _ACTIVE.reset(self.dense_token)
            self.dense_token = None
        super().__exit__(exc_type, exc, traceback)

    def is_frozen(self, array: wp.array) -> bool:
        """Whether ``array`` is one of the parameter arrays whose gradient this tape leaves alone."""
        return any(array is frozen for frozen in self.frozen)


def tile_size(n: int, limit: int) -> int:
    """The tile edge for a dimension of ``n``: the power of two at or above ``n``, at most ``limit``."""
    return min(limit, 1 << max(0, n - 1).bit_length())


def tiles(device: wp.Device | None, rows: int, in_features: int, out_features: int) -> tuple[tuple[int, int], int]:
    """The output tile (rows, columns) and the reduction chunk of a product of ``rows`` rows on ``device``.

    On the CPU device, up to ``ROW_TILE`` x ``COLUMN_TILE`` with chunks of up to ``COLUMN_TILE``
    (measured fastest there, ``benchmarks/results/tried.md``). On CUDA, at most ``warp_nn``'s
    configured tile and chunks of 16 features, the shapes its own layers launch there (not measured
    on a GPU by this project).
    """
    if device is None or device.is_cpu:
        row_limit, column_limit, depth_limit = ROW_TILE, COLUMN_TILE, COLUMN_TILE
    else:
        (row_limit, column_limit), depth_limit = get_kernel_config().tile_2d, CUDA_DEPTH
    tile = (tile_size(rows, row_limit), tile_size(out_features, column_limit))
    return tile, tile_size(in_features, depth_limit)


def _blocks(n: int, tile: int) -> int:
    return (n + tile - 1) // tile


def _new_output(input: wp.array, cols: int, tape: Tape | None, wanted: bool, module: nn.Module) -> wp.array:
    """A new (N, cols) output; with gradient arrays when this tape wants them, or (no such tape) when any tape may."""
    grad = wanted if tape is not None else module.requires_grad or input.requires_grad
    return wp.empty((input.shape[0], cols), dtype=wp.float32, device=input.device, requires_grad=grad)


class Dense(nn.Linear):
    """``y = x W^T + b``: a ``warp_nn.nn.Linear`` with our forward kernel and, under :class:`Tape`, our backward pass.

    Args:
        in_features: Input features.
        out_features: Output features.
        requires_grad: Whether the parameters (and new outputs outside a :class:`Tape`) have gradients.
    """

    def __init__(self, in_features: int, out_features: int, *, requires_grad: bool = True) -> None:
        super().__init__(in_features, out_features, bias=True, requires_grad=requires_grad)

    def __call__(self, input: wp.array) -> wp.array:
        """The layer on ``input`` (N, in_features): a new (N, out_features) array.

        Raises:
            ValueError: If ``input`` is not a 2-D float32 array of ``in_features`` columns.
        """
        if input.ndim != 2 or input.shape[1] != self.in_features or input.dtype != wp.float32:
            raise ValueError(
                f"Dense({self.in_features}, {self.out_features}) takes a 2-D float32 array of {self.in_features} "
                f"columns; got shape {tuple(input.shape)} of {getattr(input.dtype, '__name__', input.dtype)}. "
                f"Reshape the input to (batch, {self.in_features})."
            )
        rows, tape = input.shape[0], _ACTIVE.get()
        tile, depth = tiles(input.device, rows, self.in_features, self.out_features)
        kernels = dense_kernels(*tile, depth)
        weight, bias = self.weight.data, self.bias.data
        wanted = [a for a in (input, weight, bias) if a.requires_grad and not (tape and tape.is_frozen(a))]
        output = _new_output(input, self.out_features, tape, bool(wanted), self)
        if rows == 0:
            return output
        wp.launch_tiled(
            kernels.forward,
            dim=(_blocks(rows, tile[0]), _blocks(self.out_features, tile[1])),
            inputs=[input, weight, bias],
            outputs=[output],
            device=input.device,
            block_dim=_block_dim(input.device),
            record_tape=tape is None,  # a plain wp.Tape differentiates the launch itself
        )
        if tape is not None and wanted:
            tape.record_func(self._backward(kernels, tile, depth, input, output, wanted), arrays=[output, *wanted])
        return output

    def _backward(  # noqa: PLR0917 (the forward pass's pieces)
        self, kernels: DenseKernels, tile: tuple[int, int], depth: int, x: wp.array, y: wp.array, wanted: list[wp.array]
    ) -> Any:
        """The backward function of one call (its forward pass's tile and chunk); ``wanted``: the arrays to reach."""
        weight, bias = self.weight.data, self.bias.data
        want_x, want_w, want_b = (any(a is b for a in wanted) for b in (x, weight, bias))
        device = x.device
        launch: dict[str, Any] = {"device": device, "block_dim": _block_dim(device), "record_tape": False}
        rows, in_blocks = x.shape[0], _blocks(self.in_features, depth)

        def backward() -> None:
            dy = y.grad
            if want_x:
                dim = (_blocks(rows, tile[0]), in_blocks)
                wp.launch_tiled(kernels.input_grad, dim=dim, inputs=[dy, weight], outputs=[x.grad], **launch)
            if want_w:
                dim = (_blocks(self.out_features, tile[1]), in_blocks)
                wp.launch_tiled(kernels.weight_grad, dim=dim, inputs=[dy, x], outputs=[weight.grad], **launch)
            if want_b:
                dim_b, outputs = self.out_features, [bias.grad]
                wp.launch(kernels.bias_grad, dim=dim_b, inputs=[dy], outputs=outputs, device=device, record_tape=False)

        return backward


def _block_dim(device: wp.Device | None) -> int:
    """Threads per tile: one on the CPU device, ``warp_nn``'s configured block size on CUDA."""
    return 1 if device is None or device.is_cpu else int(get_kernel_config().block_dim)


class Activation(nn.Module):
    """``tanh`` or ``relu`` element by element, a new output per call; under :class:`Tape`, a backward pass of ours.

    The backward pass reads the derivative from the output (``1 - y^2``, ``y > 0``), so it evaluates
    no ``tanh``; under a plain ``wp.Tape`` Warp's adjoint differentiates the forward kernel. Used
    through :class:`Tanh` and :class:`ReLU`, where ``warp_nn`` has ``nn.Tanh`` and ``nn.ReLU``.

    Args:
        function: ``"tanh"`` or ``"relu"``.
    """

    def __init__(self, function: str) -> None:
        super().__init__()
        if function not in {"tanh", "relu"}:
            raise ValueError(f"Activation function must be 'tanh' or 'relu'; got {function!r}.")
        self.function = function

    def __call__(self, input: wp.array) -> wp.array:
        """The function of every element of ``input`` (N, F): a new (N, F) array.

        Raises:
            ValueError: If ``input`` is not a 2-D float32 array.
        """
        if input.ndim != 2 or input.dtype != wp.float32:
            raise ValueError(
                f"{type(self).__name__} takes a 2-D float32 array; got shape {tuple(input.shape)} of "
                f"{getattr(input.dtype, '__name__', input.dtype)}. Reshape the input to (batch, features)."
            )
        (rows, cols), tape = input.shape, _ACTIVE.get()
        tile = tiles(input.device, rows, cols, cols)[0]
        kernels = activation_kernels(self.function, *tile)
        wanted = input.requires_grad and tape is not None
        output = _new_output(input, cols, tape, wanted, self)
        if rows == 0:
            return output
        dim, block_dim = (_blocks(rows, tile[0]), _blocks(cols, tile[1])), _block_dim(input.device)
        launch = {"dim": dim, "device": input.device, "block_dim": block_dim}
        wp.launch_tiled(kernels.forward, inputs=[input], outputs=[output], record_tape=tape is None, **launch)
        if tape is not None and wanted:

            def backward() -> None:
                inputs = [output, output.grad]
                wp.launch_tiled(kernels.backward, inputs=inputs, outputs=[input.grad], record_tape=False, **launch)

            tape.record_func(backward, arrays=[output, input])
        return output


class Tanh(Activation):
    """:class:`Activation` ``"tanh"``."""

    def __init__(self) -> None:
        super().__init__("tanh")


class ReLU(Activation):
    """:class:`Activation` ``"relu"`` (NaN passes through)."""

    def __init__(self) -> None:
        super().__init__("relu")
