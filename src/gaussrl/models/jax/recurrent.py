"""Running Flax recurrent cells the way recurrent policies need during rollout and training.

The JAX counterpart of ``gaussrl.models.torch.recurrent.run_recurrent``. During rollout a batch
is one step of each environment. During training it is ``N`` sequences of ``L`` consecutive
steps flattened to ``N * L`` rows, with the hidden state stored at every step; only the state at
each sequence's first step is used, and it is reset to zero after any step whose
``terminated`` flag is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

LSTM_CELLS = (nn.LSTMCell, nn.OptimizedLSTMCell)


def _carry(lstm: bool, states: list[jax.Array]) -> Any:
    # Flax's LSTM carry is (c, h); the policy's inputs["rnn"] is [h, c], as torch's.
    return (states[1], states[0]) if lstm else states[0]


def _states(lstm: bool, carry: Any) -> list[jax.Array]:
    return [carry[1], carry[0]] if lstm else [carry]


def run_recurrent(
    cell: nn.Module,
    features: jax.Array,
    hidden: Sequence[jax.Array] | None,
    *,
    sequence_length: int,
    training: bool,
    terminated: jax.Array | None = None,
) -> tuple[jax.Array, list[jax.Array]]:
    """Run a Flax cell (``SimpleCell``, ``GRUCell``, ``LSTMCell``) over rollout steps or training sequences.

    The signature is the torch and Warp runners'; ``hidden`` may also be None (zeros), as when
    ``init_state_dict`` traces the network without ``inputs["rnn"]``.

    Args:
        cell: The recurrent cell (its ``features`` is the hidden size H).
        features: Shape (N, F) for a rollout step, or (N * L, F) for N training sequences.
        hidden: Hidden states, each (1, N, H) in rollout or (1, N * L, H) in training (one stored
            state per step); ``[h]`` for RNN/GRU, ``[h, c]`` for LSTM; None for zeros.
        sequence_length: L.
        training: True for stored sequences, False for one rollout step.
        terminated: Shape (N * L,) or (N * L, 1); nonzero where an episode ended at that step.

    Returns:
        Outputs (N, H) or (N * L, H), and the final hidden states, each (1, N, H) (``[h]`` or ``[h, c]``).
    """
    x, hidden_size = features, int(cell.features)
    lstm = isinstance(cell, LSTM_CELLS)
    zeros = jnp.zeros((1, x.shape[0], hidden_size), x.dtype)
    states = list(hidden) if hidden is not None else [zeros] * (2 if lstm else 1)
    if not training:
        carry, y = cell(_carry(lstm, [s[0] for s in states]), x)
        return y, [s[None] for s in _states(lstm, carry)]
    x = x.reshape((-1, sequence_length, x.shape[-1]))
    states = [s.reshape((1, -1, sequence_length, hidden_size))[0, :, 0] for s in states]
    done = None if terminated is None else terminated.reshape((-1, sequence_length)).astype(bool)
    ys = []
    for t in range(sequence_length):
        if done is not None and t > 0:
            states = [jnp.where(done[:, t - 1 : t], 0.0, s) for s in states]
        carry, y = cell(_carry(lstm, states), x[:, t])
        states = _states(lstm, carry)
        ys.append(y)
    return jnp.stack(ys, axis=1).reshape((-1, hidden_size)), [s[None] for s in states]
