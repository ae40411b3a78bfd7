"""What a resumed run may change: its configuration comes from the run directory, not the defaults.

``gaussrl train --resume DIR`` trains with ``DIR/config.json``. Options typed on the command line
may change only what does not change the run itself: the total steps, the evaluation and
checkpoint schedule, what to do with non-finite environment data, logging and the thread count
(:data:`CHANGEABLE`). Any other option typed with a value other than the run's is refused with
one line naming it.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gaussrl.core.errors import ConfigError, GaussrlError
from gaussrl.trainer.rundir import load_run_checkpoint

if TYPE_CHECKING:
    from gaussrl.trainer.loop import TrainConfig

CHANGEABLE = (
    "timesteps",
    "eval_interval",
    "eval_episodes",
    "checkpoint_interval",
    "keep_checkpoints",
    "nonfinite",
    "progress",
    "tensorboard",
    "wandb",
    "threads",
    "nproc",
    "dist_timeout",
)
"""Options a resumed run may change."""
RESUME_OPTIONS = ("resume", "checkpoint", "out", "force")
"""Options about resuming itself (checked by the configuration, never compared with the saved run)."""

Config = TypeVar("Config")


class ResumeError(GaussrlError, ValueError):
    """A resume request that does not match the run in the directory."""


def check_resume_options(*, resume: str | None, out: str | None, checkpoint: int | None, force: bool) -> None:
    """Check that ``--resume``, ``--out``, ``--checkpoint`` and ``--force`` go together.

    Args:
        resume: The run directory to continue, or None.
        out: The run directory given, or None.
        checkpoint: The checkpoint step to continue from, or None.
        force: Start over in a directory that holds a run.

    Raises:
        ConfigError: For a checkpoint step that is not a step number, ``--checkpoint`` without
            ``--resume``, ``--force`` with ``--resume``, or ``--out`` naming another directory than ``--resume``.
    """
    if checkpoint is not None and (isinstance(checkpoint, bool) or not isinstance(checkpoint, int) or checkpoint < 0):
        raise ConfigError(f"checkpoint={checkpoint!r} must be a step number (>= 0), or None for the newest checkpoint.")
    if checkpoint is not None and resume is None:
        raise ConfigError(f"--checkpoint {checkpoint} needs --resume DIR (the run whose checkpoint to continue from).")
    if force and resume is not None:
        raise ConfigError("--force starts a new run and --resume continues one; pass only one of them.")
    if resume is not None and out is not None and Path(out).resolve() != Path(resume).resolve():
        raise ConfigError(
            f"--out {out} and --resume {resume} name different directories; a resumed run continues in its own "
            f"directory: drop --out."
        )


def option_name(path: str) -> str:
    """The command-line spelling of a configuration field.

    Args:
        path: Dotted field path, e.g. ``"ppo.ratio_clip"``.

    Returns:
        e.g. ``"--ppo.ratio-clip"``.
    """
    return "--" + path.replace("_", "-")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted paths; lists and tuples become lists.

    Args:
        data: Nested JSON-like dict.
        prefix: Path prefix (used by the recursion).

    Returns:
        ``{"ppo.ratio_clip": 0.2, ...}``.
    """
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = list(value) if isinstance(value, list | tuple) else value
    return flat


def read_config_json(run_dir: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a run directory.

    Args:
        run_dir: Run directory.

    Returns:
        Its content.

    Raises:
        ResumeError: If it is missing or does not parse.
    """
    path = Path(run_dir) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        message = f"cannot read {str(path)!r}: is {str(run_dir)!r} a gaussrl run directory? ({error})"
        raise ResumeError(message) from None
    if not isinstance(data, dict):
        raise ResumeError(f"{str(path)!r} does not hold a gaussrl configuration (a JSON object).")
    return data


def fixed_differences(config: Mapping[str, Any], saved: Mapping[str, Any]) -> list[str]:
    """The fields a resumed run may not change whose values differ from the saved run's.

    Args:
        config: The requested configuration as JSON values.
        saved: The run's ``config.json``.

    Returns:
        Dotted paths, in ``config`` order; fields missing from either side are not compared.
    """
    ours, theirs = flatten(config), flatten(saved)
    free = set(CHANGEABLE) | set(RESUME_OPTIONS)
    return [path for path, value in ours.items() if path not in free and path in theirs and theirs[path] != value]


def check_unchanged(config: Mapping[str, Any], saved: Mapping[str, Any], run_dir: str | Path) -> None:
    """Refuse a resume whose configuration differs from the run's in fields that may not change.

    Args:
        config: The requested configuration as JSON values.
        saved: The run's ``config.json``.
        run_dir: The run directory (for the message).

    Raises:
        ResumeError: Naming every such field, with both values.
    """
    differences = fixed_differences(config, saved)
    if differences:
        ours, theirs = flatten(config), flatten(saved)
        listed = ", ".join(f"{path} ({ours[path]!r}; the run has {theirs[path]!r})" for path in differences)
        raise ResumeError(
            f"cannot resume {shlex.quote(str(run_dir))} with another configuration: {listed}; a resumed run keeps "
            f"its config.json except {', '.join(option_name(name) for name in CHANGEABLE)}."
        )


def typed_options(args: Sequence[str], known: Iterable[str]) -> dict[str, str]:
    """The configuration fields that a command line sets explicitly.

    Args:
        args: Command-line arguments (``--x.y-z V``, ``--x.y-z=V``, ``--flag``, ``--no-flag``).
        known: The dotted field paths there are.

    Returns:
        ``{dotted path: the option as typed}``, in command-line order; unknown options are left out.
    """
    fields = set(known)
    found: dict[str, str] = {}
    for arg in args:
        if not arg.startswith("--"):
            continue
        spelling = arg.split("=", 1)[0]
        path = spelling[2:].replace("-", "_")
        head, _, last = path.rpartition(".")
        if path not in fields and last.startswith("no_"):
            path = f"{head}.{last[3:]}" if head else last[3:]
        if path in fields:
            found.setdefault(path, spelling)
    return found


def _field(config: Any, path: str) -> Any:
    for name in path.split("."):
        config = getattr(config, name)
    return config


def resumed_config(parsed: Config, saved: Config, typed: Mapping[str, str], run_dir: str | Path) -> Config:
    """The configuration of ``--resume``: the saved run's, with the changeable options the user typed.

    Args:
        parsed: The configuration parsed from the command line (defaults where nothing was typed).
        saved: The configuration the run was trained with.
        typed: The options typed on the command line, ``{dotted path: spelling}`` (:func:`typed_options`).
        run_dir: The run directory (for the message).

    Returns:
        ``saved`` with the typed changeable options and the resume options (:data:`RESUME_OPTIONS`)
        of ``parsed``.

    Raises:
        ResumeError: For a typed option that may not change and differs from the saved value.
    """
    result = dataclasses.replace(saved, **{name: getattr(parsed, name) for name in RESUME_OPTIONS})  # type: ignore[type-var]
    for path, spelling in typed.items():
        value = _field(parsed, path)
        if path in RESUME_OPTIONS:
            continue
        if path in CHANGEABLE:
            result = dataclasses.replace(result, **{path: value})  # type: ignore[type-var]
        elif value != _field(saved, path):
            raise ResumeError(
                f"{spelling} cannot change when resuming: {shlex.quote(str(run_dir))} was trained with "
                f"{path}={_field(saved, path)!r}; drop {spelling} (a resumed run keeps its configuration; "
                f"only {', '.join(option_name(name) for name in CHANGEABLE)} may change)."
            )
    return result


def run_meta(config: TrainConfig) -> dict[str, Any]:
    """What a checkpoint records about its run, checked on resume.

    Args:
        config: The run.

    Returns:
        The algorithm, backend, env id, policy kind and number of environments.
    """
    return {
        "algo": config.algo,
        "backend": config.backend,
        "env": config.env,
        "policy": config.policy,
        "num_envs": config.envs,
    }


def resume_command(run_dir: str | Path) -> str:
    """The command that continues a run.

    Args:
        run_dir: The run directory.

    Returns:
        ``gaussrl train --resume DIR``.
    """
    return f"gaussrl train --resume {shlex.quote(str(run_dir))}"


def load_resume(config: TrainConfig, world_size: int = 1) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Read the checkpoint ``config`` resumes from and check that it belongs to this run.

    Args:
        config: The run, with ``resume`` set.
        world_size: Number of ranks of this run (a checkpoint holds per-rank state, so it must match).

    Returns:
        The checkpoint state, its metadata and its step.

    Raises:
        CheckpointError: If the checkpoint is missing or corrupt.
        ResumeError: If ``config`` differs from the run's ``config.json`` in an option that may not
            change, or the checkpoint was written by a run of another algorithm, env, policy, env count
            or number of ranks.
    """
    run_dir = Path(str(config.resume))
    check_unchanged(config.to_json(), read_config_json(run_dir), run_dir)
    command = resume_command(run_dir)
    state, meta, step = load_run_checkpoint(run_dir, config.checkpoint, device=config.device, command=command)
    for key, want in run_meta(config).items():
        got = meta.get(key, "torch" if key == "backend" else None)  # checkpoints before backends were torch's
        if got != want:
            raise ResumeError(
                f"cannot resume {config.resume!r}: it holds a run with {key}={got!r}, but this command "
                f"asks for {key}={want!r}; pass --{key.replace('_', '-')} {got} or another directory."
            )
    ranks = meta.get("world_size", 1)
    if ranks != world_size:
        raise ResumeError(
            f"cannot resume {config.resume!r} on {world_size} rank(s): it holds a {ranks}-rank run, whose "
            f"environments, random streams and buffers are per rank; resume it with --nproc {ranks} "
            f"(or torchrun --nproc_per_node {ranks})."
        )
    return state, meta, step
