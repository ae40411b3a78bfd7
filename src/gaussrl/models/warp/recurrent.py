"""Running ``warp_nn`` RNN/GRU/LSTM layers the way recurrent policies need during rollout and training.

The Warp counterpart of ``gaussrl.models.torch.recurrent.run_recurrent``, used by the
RNN, GRU and LSTM examples in ``examples/warp/``.

During rollout a batch is one step of each environment. During training it is ``N``
sequences of ``L`` consecutive steps flattened to ``N * L`` rows, with the hidden state
stored at every step; only the state at each sequence's first step is used, and it is reset
to zero after any step whose ``terminated`` flag is set.

``warp_nn`` layers return the same cached output arrays for every call with the same input
shape. Inside one ``wp.Tape`` a second call would overwrite what the backward pass of the
first needs, so the layer's cache is emptied before each segment: each call then writes
fresh arrays, and the tape keeps the old ones alive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import warp as wp
from warp_nn import nn
from warp_nn.utils import contiguous, copy

from gaussrl.models.warp.kernels import keep_unless_done


def _as_state(rnn: Any, hidden: list[wp.array]) -> Any:
    return (hidden[0], hidden[1]) if isinstance(rnn, nn.LSTM) else hidden[0]


def _as_list(state: Any) -> list[wp.array]:
    return list(state) if isinstance(state, tuple) else [state]


def _reset(state: list[wp.array], done: np.ndarray) -> list[wp.array]:
    flags: wp.array = wp.array(done.astype(np.float32), dtype=float, device=state[0].device)
    out = [wp.empty_like(h, requires_grad=h.requires_grad) for h in state]
    for h, o in zip(state, out, strict=True):
        wp.launch(keep_unless_done, dim=h.shape, inputs=[h, flags], outputs=[o], device=h.device)
    return out


def clear_output_cache(rnn: Any) -> None:
    """Make ``rnn``'s next call write new output arrays rather than its cached ones.

    warp_nn (0.4) offers no public way to do this: its modules keep their outputs in the dict
    ``_cache``, keyed by input shape. If a later warp_nn keeps them elsewhere, this raises
    rather than letting a tape's backward pass read overwritten arrays
    (``tests/warp/test_hazards.py`` checks the assumption).

    Args:
        rnn: A ``warp_nn`` module.

    Raises:
        RuntimeError: If the module has no ``_cache`` dict.
    """
    cache = getattr(rnn, "__dict__", {}).get("_cache")
    if not isinstance(cache, dict):
        raise RuntimeError(
            f"{type(rnn).__name__} has no output cache dict '_cache': this warp_nn version stores layer outputs "
            f"differently, so gaussrl.models.warp.recurrent cannot give each call new arrays. Install warp-nn 0.4."
        )
    cache.clear()


def _segment(rnn: Any, sequences: wp.array, state: list[wp.array], start: int, stop: int) -> Any:
    clear_output_cache(rnn)  # fresh output arrays for this call (see the module docstring)
    return rnn(contiguous(sequences[:, start:stop]), _as_state(rnn, state))


def run_recurrent(
    rnn: Any,
    features: wp.array,
    hidden: list[wp.array],
    *,
    sequence_length: int,
    training: bool,
    terminated: wp.array | None = None,
) -> tuple[wp.array, list[wp.array]]:
    """Run a ``warp_nn.nn.RNN``/``GRU``/``LSTM`` over rollout steps or training sequences.

    Args:
        rnn: The recurrent layer (batch-first, as every ``warp_nn`` recurrent layer).
        features: Shape (N, F) for a rollout step, or (N * L, F) for N training sequences.
        hidden: Hidden states, each (num_layers, N, H) in rollout or (num_layers, N * L, H) in training
            (one stored state per step); ``[h]`` for RNN/GRU, ``[h, c]`` for LSTM.
        sequence_length: L.
        training: True for stored sequences, False for one rollout step.
        terminated: Shape (N * L,) or (N * L, 1); nonzero where an episode ended at that step.

    Returns:
        Outputs of shape (N, H) or (N * L, H), and the final hidden states (num_layers, N, H).
    """
    rows, size = features.shape
    if not training:
        clear_output_cache(rnn)
        output, state = rnn(features.reshape((rows, 1, size)), _as_state(rnn, hidden))
        return output.reshape((rows, output.shape[-1])), _as_list(state)
    n, length = rows // sequence_length, sequence_length
    sequences = features.reshape((n, length, size))
    state = [contiguous(h.reshape((h.shape[0], n, length, h.shape[-1]))[:, :, 0]) for h in hidden]
    done = np.zeros((n, length), bool) if terminated is None else terminated.numpy().reshape(n, length) != 0
    cuts = (np.flatnonzero(done[:, :-1].any(axis=0)) + 1).tolist()
    result = None
    for start, stop in zip([0, *cuts], [*cuts, length], strict=True):
        output, final = _segment(rnn, sequences, state, start, stop)
        if result is None:
            result = wp.empty((n, length, output.shape[-1]), device=output.device, requires_grad=output.requires_grad)
        copy(output, result[:, start:stop])
        state = _reset(_as_list(final), done[:, stop - 1]) if stop < length else _as_list(final)
    assert result is not None  # the loop runs at least once: length >= 1
    return result.reshape((n * length, result.shape[-1])), state
