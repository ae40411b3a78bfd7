"""Torch checkpoints without pickle: tensors in a safetensors file, everything else in JSON.

A checkpoint of step S is two files in one directory, each written atomically:
``step_S.safetensors`` (every tensor of the state, flattened to dotted names) and then
``step_S.json`` (the nested structure with tensors replaced by their names, user metadata and
the SHA-256 of the tensor file). The JSON file is written last, so a crash leaves either a
complete checkpoint or an orphan tensor file that no reader looks at; a tensor file that does
not match its hash is reported as corrupt. Loading never unpickles anything.

Each JSON file also holds a ``sequence`` number, one more than the highest in the directory when
it was written: checkpoints are ordered by the order they were written in (the run's history),
not by their step, so that a run resumed from an older checkpoint treats what it writes as the
newest. The JSON is strict (no ``NaN`` literals): a non-finite float of the state is stored as
``{"__float__": "nan"|"inf"|"-inf"}`` and comes back as that float.

torch is imported only where a checkpoint holds torch tensors or is loaded: a state of NumPy
arrays (the compiled JAX trainer's) is written without it, in the same format.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError

if TYPE_CHECKING:
    import torch

from gaussrl.core.errors import GaussrlError
from gaussrl.io.atomic import write_atomic, write_text_atomic

FORMAT_VERSION = 1
TENSOR = "__tensor__"
NON_STR_KEYS = "__items__"
FLOAT = "__float__"
_NAME = re.compile(r"step_(\d+)\.json")


class CheckpointError(GaussrlError, ValueError):
    """A checkpoint that is missing, incomplete or corrupt."""


def _is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor (none can exist before torch is imported, so this never imports it)."""
    torch_module = sys.modules.get("torch")
    return torch_module is not None and isinstance(value, torch_module.Tensor)


def flatten_state(tree: Any, prefix: str = "") -> tuple[Any, dict[str, Any]]:
    """Split a nested structure into a JSON-serialisable skeleton and a flat dict of tensors.

    Dicts with non-string keys (a torch optimizer's ``state``) are kept as ``{"__items__": [[k, v], ...]}``
    so that integer keys survive JSON; tuples come back as lists.

    Args:
        tree: Nested dicts, lists and tuples of tensors, NumPy arrays, numbers, strings, booleans and None.
        prefix: Name prefix of the tensors (used by the recursion).

    Returns:
        The skeleton and ``{dotted name: tensor or array}`` (copies).

    Raises:
        TypeError: For a value of another type.
    """
    if isinstance(tree, np.ndarray):  # non-torch agents' arrays; they load back as CPU tensors
        return {TENSOR: prefix}, {prefix: np.array(tree, copy=True, order="C")}
    if _is_tensor(tree):
        return {TENSOR: prefix}, {prefix: tree.detach().to("cpu").contiguous().clone()}
    tensors: dict[str, Any] = {}
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
    if isinstance(tree, float) and not math.isfinite(tree):
        return {FLOAT: repr(tree)}, tensors
    if tree is None or isinstance(tree, bool | int | float | str):
        return tree, tensors
    raise TypeError(f"cannot checkpoint a value of type {type(tree).__name__} at {prefix!r}.")


def first_nonfinite(tree: Any, prefix: str = "") -> str | None:
    """The dotted name of the first floating-point tensor in a nested state that holds NaN or infinity.

    Args:
        tree: Nested dicts and lists of tensors, NumPy arrays and other values.
        prefix: Name prefix (used by the recursion).

    Returns:
        The name, or None when every tensor is finite.
    """
    if _is_tensor(tree):
        return prefix if tree.is_floating_point() and not bool(tree.isfinite().all()) else None
    if isinstance(tree, np.ndarray):  # the state of a non-torch agent
        return prefix if np.issubdtype(tree.dtype, np.floating) and not np.isfinite(tree).all() else None
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list | tuple) else ()
    for key, value in items:
        found = first_nonfinite(value, f"{prefix}.{key}" if prefix else str(key))
        if found is not None:
            return found
    return None


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
        if FLOAT in skeleton:
            return float(skeleton[FLOAT])
        if NON_STR_KEYS in skeleton:
            return {key: unflatten_state(value, tensors) for key, value in skeleton[NON_STR_KEYS]}
        return {key: unflatten_state(value, tensors) for key, value in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(value, tensors) for value in skeleton]
    return skeleton


def _save_tensors(tensors: dict[str, Any], path: Path) -> None:
    """Write a safetensors file: through NumPy when every value is an array (no torch), else through torch."""
    if all(isinstance(value, np.ndarray) for value in tensors.values()):
        from safetensors.numpy import save_file  # noqa: PLC0415

        save_file(tensors, str(path))
        return
    import torch  # noqa: PLC0415 (the state holds torch tensors: torch is imported already)
    from safetensors.torch import save_file as save_torch  # noqa: PLC0415

    save_torch({k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in tensors.items()}, str(path))


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

    "Newest" follows the order of writing (see the module docstring); the checkpoint just written
    is never deleted.

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
    tensor_path, json_path = folder / f"{name}.safetensors", folder / f"{name}.json"
    # A checkpoint of the same step (a resumed run passing it again) is removed first, so that a crash
    # below leaves it absent rather than a JSON file whose tensor file no longer matches.
    json_path.unlink(missing_ok=True)
    write_atomic(tensor_path, lambda tmp: _save_tensors(tensors, tmp))
    history = list_checkpoints(folder)
    record = {
        "format": FORMAT_VERSION,
        "step": step,
        "sequence": max((_sequence(path) for path in history), default=0) + 1,
        "meta": dict(meta),
        "state": skeleton,
        "tensors_file": tensor_path.name,
        "sha256": _sha256(tensor_path),
    }
    write_text_atomic(json_path, json.dumps(record, allow_nan=False))
    older = [path for path in history if path != json_path]
    for old in older[: max(len(older) - max(keep, 1) + 1, 0)]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    return json_path


def checkpoint_step(path: str | os.PathLike[str]) -> int:
    """The step a checkpoint file is named after.

    Args:
        path: A ``step_S.json`` file.

    Returns:
        S.

    Raises:
        CheckpointError: If the name is not of that form.
    """
    match = _NAME.fullmatch(Path(path).name)
    if match is None:
        raise CheckpointError(f"{str(path)!r} is not a checkpoint file (expected step_<number>.json).")
    return int(match.group(1))


def _sequence(path: Path) -> int:
    """The write order of a checkpoint; -1 for one whose JSON cannot be read (ordered first)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return -1
    sequence = record.get("sequence", 0) if isinstance(record, dict) else -1
    return sequence if isinstance(sequence, int) else -1


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """The checkpoints' JSON files in a directory, oldest first, in the order they were written.

    Args:
        directory: Checkpoint directory.

    Returns:
        Paths ordered by write order, then step (empty if the directory does not exist).
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = [path for path in folder.glob("step_*.json") if _NAME.fullmatch(path.name)]
    return sorted(found, key=lambda path: (_sequence(path), checkpoint_step(path)))


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


def find_checkpoint(directory: str | os.PathLike[str], step: int | None = None) -> Path:
    """The checkpoint of ``step`` in a directory, or the newest one.

    Args:
        directory: Checkpoint directory.
        step: The step; None for the newest checkpoint.

    Returns:
        Its JSON file.

    Raises:
        CheckpointError: If there is no checkpoint of that step (the message lists those there are).
    """
    if step is None:
        return latest_checkpoint(directory)
    found = list_checkpoints(directory)
    for path in found:
        if checkpoint_step(path) == step:
            return path
    steps = ", ".join(str(s) for s in sorted(checkpoint_step(path) for path in found)) or "none"
    raise CheckpointError(f"no checkpoint of step {step} in {str(directory)!r}; the steps there are: {steps}.")


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


def _tensor_file(json_path: Path, record: dict[str, Any]) -> Path:
    tensor_path = json_path.parent / str(record.get("tensors_file", ""))
    if not tensor_path.is_file():
        raise CheckpointError(f"checkpoint {str(json_path)!r} is incomplete: {str(tensor_path)!r} is missing.")
    if _sha256(tensor_path) != record.get("sha256"):
        raise CheckpointError(f"checkpoint {str(tensor_path)!r} is corrupt: its SHA-256 does not match the JSON file.")
    return tensor_path


def verify_checkpoint(path: str | os.PathLike[str]) -> None:
    """Check a checkpoint without loading it: its JSON parses and its tensor file matches the hash.

    Args:
        path: The checkpoint's JSON file.

    Raises:
        CheckpointError: If the checkpoint is missing, incomplete or corrupt.
    """
    json_path = Path(path)
    _tensor_file(json_path, _read_record(json_path))


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
    tensor_path = _tensor_file(json_path, record)
    from safetensors.torch import load_file  # noqa: PLC0415 (imports torch: checkpoints load as torch tensors)

    try:
        tensors = load_file(str(tensor_path), device=str(device))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"checkpoint {str(tensor_path)!r} is corrupt: {error}.") from None
    return unflatten_state(record["state"], tensors), dict(record.get("meta", {}))
