"""Checkpoints without pickle: tensors in a safetensors file, everything else in JSON.

A checkpoint of step S is two files in one directory, each written atomically:
``step_S.safetensors`` (every tensor of the state, flattened to dotted names) and then
``step_S.json`` (the nested structure with tensors replaced by their names, user metadata and
the SHA-256 of the tensor file). The JSON file is written last, so a crash leaves either a
complete checkpoint or an orphan tensor file that no reader looks at; a tensor file that does
not match its hash is reported as corrupt. Loading never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gaussrl.core.errors import GaussrlError
from gaussrl.io.atomic import write_atomic, write_text_atomic

FORMAT_VERSION = 1
TENSOR = "__tensor__"
NON_STR_KEYS = "__items__"


class CheckpointError(GaussrlError, ValueError):
    """A checkpoint that is missing, incomplete or corrupt."""


def flatten_state(tree: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested structure into a JSON-serialisable skeleton and a flat dict of tensors.

    Dicts with non-string keys (a torch optimizer's ``state``) are kept as ``{"__items__": [[k, v], ...]}``
    so that integer keys survive JSON; tuples come back as lists.

    Args:
        tree: Nested dicts, lists and tuples of tensors, NumPy arrays, numbers, strings, booleans and None.
        prefix: Name prefix of the tensors (used by the recursion).

    Returns:
        The skeleton and ``{dotted name: tensor}``.

    Raises:
        TypeError: For a value of another type.
    """
    if isinstance(tree, np.ndarray):  # non-torch agents' arrays; they load back as CPU tensors
        tree = torch.from_numpy(np.array(tree, copy=True))
    if isinstance(tree, torch.Tensor):
        return {TENSOR: prefix}, {prefix: tree.detach().to("cpu").contiguous().clone()}
    tensors: dict[str, torch.Tensor] = {}
    if isinstance(tree, Mapping):
        items = [(key, *flatten_state(value, f"{prefix}.{key}" if prefix else str(key))) for key, value in tree.items()]
        for _, _, found in items:
            tensors.update(found)
        if all(isinstance(key, str) for key, _, _ in items):
            return {key: skeleton for key, skeleton, _ in items}, tensors
        return {NON_STR_KEYS: [[key, skeleton] for key, skeleton, _ in items]}, tensors
    if isinstance(tree, list | tuple):
        skeletons = []
        for i, value in enumerate(tree):
            skeleton, found = flatten_state(value, f"{prefix}.{i}" if prefix else str(i))
            skeletons.append(skeleton)
            tensors.update(found)
        return skeletons, tensors
    if tree is None or isinstance(tree, bool | int | float | str):
        return tree, tensors
    raise TypeError(f"cannot checkpoint a value of type {type(tree).__name__} at {prefix!r}.")


def unflatten_state(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Rebuild the structure :func:`flatten_state` split.

    Args:
        skeleton: The JSON skeleton.
        tensors: The flat tensors.

    Returns:
        The nested structure.

    Raises:
        CheckpointError: If a named tensor is missing.
    """
    if isinstance(skeleton, dict):
        if TENSOR in skeleton:
            name = skeleton[TENSOR]
            if name not in tensors:
                raise CheckpointError(f"checkpoint is corrupt: tensor {name!r} is missing from the tensor file.")
            return tensors[name]
        if NON_STR_KEYS in skeleton:
            return {key: unflatten_state(value, tensors) for key, value in skeleton[NON_STR_KEYS]}
        return {key: unflatten_state(value, tensors) for key, value in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(value, tensors) for value in skeleton]
    return skeleton


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    directory: str | os.PathLike[str], step: int, state: Any, meta: Mapping[str, Any], *, keep: int = 3
) -> Path:
    """Write the checkpoint of ``step`` and delete all but the newest ``keep`` checkpoints.

    Args:
        directory: Checkpoint directory (created if needed).
        step: Step counter that names the checkpoint.
        state: Nested structure of tensors and JSON values.
        meta: JSON metadata (algorithm, environment, ...), returned by :func:`load_checkpoint`.
        keep: How many checkpoints to keep (at least 1).

    Returns:
        The JSON file of the checkpoint.
    """
    folder = Path(directory)
    name = f"step_{step:012d}"
    skeleton, tensors = flatten_state(state)
    tensor_path = folder / f"{name}.safetensors"
    write_atomic(tensor_path, lambda tmp: save_file(tensors, str(tmp)))
    record = {
        "format": FORMAT_VERSION,
        "step": step,
        "meta": dict(meta),
        "state": skeleton,
        "tensors_file": tensor_path.name,
        "sha256": _sha256(tensor_path),
    }
    json_path = folder / f"{name}.json"
    write_text_atomic(json_path, json.dumps(record))
    for old in list_checkpoints(folder)[: -max(keep, 1)]:
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        old.unlink(missing_ok=True)
    return json_path


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """The checkpoints' JSON files in a directory, oldest first.

    Args:
        directory: Checkpoint directory.

    Returns:
        Sorted paths (empty if the directory does not exist).
    """
    folder = Path(directory)
    return sorted(folder.glob("step_*.json")) if folder.is_dir() else []


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path:
    """The newest checkpoint in a directory.

    Args:
        directory: Checkpoint directory.

    Returns:
        Its JSON file.

    Raises:
        CheckpointError: If there is none.
    """
    found = list_checkpoints(directory)
    if not found:
        raise CheckpointError(f"no checkpoint found in {str(directory)!r} (expected step_*.json files).")
    return found[-1]


def _read_record(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist.")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: its JSON does not parse ({error}).") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a gaussrl checkpoint of format {FORMAT_VERSION}.")
    return record


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`, checking its tensor file's hash.

    Args:
        path: The checkpoint's JSON file, or a directory (its newest checkpoint is read).
        device: Device to load the tensors to.

    Returns:
        The state and the metadata.

    Raises:
        CheckpointError: If the checkpoint is missing, incomplete or corrupt.
    """
    json_path = Path(path) if Path(path).suffix == ".json" else latest_checkpoint(path)
    record = _read_record(json_path)
    tensor_path = json_path.parent / str(record.get("tensors_file", ""))
    if not tensor_path.is_file():
        raise CheckpointError(f"checkpoint {str(json_path)!r} is incomplete: {str(tensor_path)!r} is missing.")
    if _sha256(tensor_path) != record.get("sha256"):
        raise CheckpointError(f"checkpoint {str(tensor_path)!r} is corrupt: its SHA-256 does not match the JSON file.")
    try:
        tensors = load_file(str(tensor_path), device=str(device))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"checkpoint {str(tensor_path)!r} is corrupt: {error}.") from None
    return unflatten_state(record["state"], tensors), dict(record.get("meta", {}))
