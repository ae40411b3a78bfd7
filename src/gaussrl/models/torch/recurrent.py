"""Running ``torch.nn`` RNN/GRU/LSTM layers the way recurrent policies need during rollout and training.

During rollout a batch is one step of each environment. During training it is
``N`` sequences of ``L`` consecutive steps flattened to ``N * L`` rows, with the hidden
state stored at every step; only the state at each sequence's first step is used, and it
is reset to zero after any step whose ``terminated`` flag is set.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def _as_state(rnn: nn.RNNBase, hidden: list[torch.Tensor]) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    return (hidden[0], hidden[1]) if isinstance(rnn, nn.LSTM) else hidden[0]


def _as_list(state: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def _reset(state: list[torch.Tensor], done: torch.Tensor) -> list[torch.Tensor]:
    keep = (~done).to(state[0].dtype).view(1, -1, 1)
    return [h * keep for h in state]


def run_sequences(
    rnn: nn.RNNBase, sequences: torch.Tensor, state: list[torch.Tensor], done: torch.Tensor | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run B sequences from their initial states, resetting a sequence's state after its done steps.

    The sequences are split only where some sequence ends an episode, so each segment still
    runs as one call of the (oneDNN/cuDNN) recurrent kernel.

    Args:
        rnn: A batch-first ``nn.RNN``/``nn.GRU``/``nn.LSTM``.
        sequences: Shape (B, L, F).
        state: Initial hidden states, each (num_layers, B, H); ``[h]`` or ``[h, c]``.
        done: Shape (B, L), bool; True where an episode ended after that step.

    Returns:
        Outputs of shape (B, L, H) and the final hidden states.
    """
    length = sequences.shape[1]
    if done is None or length == 1 or not bool(done[:, :-1].any()):
        output, final = rnn(sequences, _as_state(rnn, state))
        return output, _as_list(final)
    cuts = (done[:, :-1].any(dim=0).nonzero(as_tuple=True)[0] + 1).tolist()
    outputs = []
    for start, stop in itertools.pairwise([0, *cuts, length]):
        output, final = rnn(sequences[:, start:stop], _as_state(rnn, state))
        outputs.append(output)
        state = _reset(_as_list(final), done[:, stop - 1]) if stop < length else _as_list(final)
    return torch.cat(outputs, dim=1), state


def run_recurrent(
    rnn: nn.RNNBase,
    features: torch.Tensor,
    hidden: list[torch.Tensor],
    *,
    sequence_length: int,
    training: bool,
    terminated: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run a batch-first ``nn.RNN``/``nn.GRU``/``nn.LSTM`` over rollout steps or training sequences.

    Args:
        rnn: The recurrent layer, built with ``batch_first=True``.
        features: Shape (N, F) for a rollout step, or (N * L, F) for N training sequences.
        hidden: Hidden states, each (num_layers, N, H) in rollout or (num_layers, N * L, H) in training
            (one stored state per step); ``[h]`` for RNN/GRU, ``[h, c]`` for LSTM.
        sequence_length: L.
        training: True for stored sequences, False for one rollout step.
        terminated: Shape (N * L,) or (N * L, 1); True where an episode ended at that step.

    Returns:
        Outputs of shape (N, H) or (N * L, H), and the final hidden states (num_layers, N, H).
    """
    if not training:
        output, state = run_sequences(rnn, features.unsqueeze(1), hidden)
        return output.flatten(0, 1), state
    sequences = features.view(-1, sequence_length, features.shape[-1])
    state = [h.view(h.shape[0], -1, sequence_length, h.shape[-1])[:, :, 0].contiguous() for h in hidden]
    done = None if terminated is None else terminated.view(-1, sequence_length).bool()
    output, final = run_sequences(rnn, sequences, state, done)
    return output.flatten(0, 1), final
