"""MuJoCo locomotion benchmark: ``gaussrl train`` per (env, algo, seed), then learning curves, a table and raw metrics.

    python -m benchmarks.mujoco --envs HalfCheetah-v5 Ant-v5 --algos ppo sac --seeds 0 1 2 --timesteps 1000000
        [--jobs 2] [--root runs/mujoco] [--report-only] [--extra "--sac.hidden-sizes 256 256"]
        [--results benchmarks/results/mujoco]

Each run is ``gaussrl train --algo A --env E --seed S --timesteps T --eval-episodes 10 --threads 1
--no-progress --out ROOT/A-E-seedS [EXTRA]`` in a subprocess with ``OMP_NUM_THREADS=1`` (working
directory ROOT, output appended to ROOT/A-E-seedS.log), ``--jobs`` at a time. A run whose
``summary.json`` says it reached T steps is skipped; a run with a checkpoint and no summary (or a
shorter one) is continued with ``gaussrl train --resume DIR --timesteps T``; a run directory named by
``--out``/``--resume`` on the command line of a running ``gaussrl train`` process is left alone. ROOT
may therefore hold runs started by hand, named ``<algo>-<env>-seed<seed>``.

Then, under ``--results``: ``<env>-<algo>.png`` (deterministic evaluation return against
environment steps, one line per seed, the RL Baselines3 Zoo's 1M-step result as a horizontal line
where this file knows it), ``mujoco.md`` (the table) and ``curves.json`` / ``curves.csv`` (every
evaluation of every run). A run without ``summary.json`` appears with its latest evaluation, marked
"in progress at step S". ``--report-only`` writes these from the runs as they are, running nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaussrl.core.errors import MissingRunFileError
from gaussrl.io.checkpoint import list_checkpoints
from gaussrl.trainer.plot import Curve, eval_curve, plot_curves
from gaussrl.trainer.rundir import CHECKPOINTS, run_files

ZOO = {
    ("ppo", "HalfCheetah-v5"): 5819.0,
    ("ppo", "Ant-v5"): 1327.0,
    ("sac", "HalfCheetah-v5"): 9535.0,
    ("sac", "Ant-v5"): 4616.0,
}
"""(algo, env) -> the RL Baselines3 Zoo's mean return at 1M steps (tuned hyperparameters, deterministic evaluation),
as quoted in issue 17. No figure is given for other envs rather than one from elsewhere."""
ZOO_NAME = "RL Zoo, 1M steps"
EVAL_EPISODES = 10
RESULTS = Path("benchmarks/results/mujoco")
STALE = ": run files but no checkpoint to resume from; delete the directory to start it again"


@dataclass(frozen=True)
class Run:
    """One (env, algo, seed) and its run directory."""

    env: str
    algo: str
    seed: int
    dir: Path


def run_dir(root: Path, algo: str, env: str, seed: int) -> Path:
    """``<root>/<algo>-<env>-seed<seed>``: gaussrl train's own default name, under ``root``."""
    return root / f"{algo}-{env.replace('/', '_')}-seed{seed}"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _option_values(args: list[str], names: tuple[str, ...]) -> list[str]:
    values = []
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                values.append(args[index + 1])
            elif arg.startswith(name + "="):
                values.append(arg.split("=", 1)[1])
    return values


def live_run_dirs(proc: Path = Path("/proc")) -> dict[Path, int]:
    """Run directories that running ``gaussrl train`` processes write to (Linux /proc; elsewhere none).

    Args:
        proc: The proc file system.

    Returns:
        Resolved ``--out``/``--resume`` directory -> process id.
    """
    found: dict[Path, int] = {}
    for entry in proc.glob("[0-9]*"):
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if "train" not in args or not any("gaussrl" in arg for arg in args) or int(entry.name) == os.getpid():
                continue
            cwd = Path(os.readlink(entry / "cwd"))
        except (OSError, ValueError):
            continue
        for value in _option_values(args, ("--out", "--resume")):
            found[(cwd / value).resolve()] = int(entry.name)
    return found


def plan(run: Run, timesteps: int, live: dict[Path, int]) -> str:
    """What to do for a run: "running" (in another process), "done", "resume", "new", or "stale".

    "stale": run files without a checkpoint to continue from (a run stopped before its first checkpoint);
    it is left for the user to delete or restart with ``--force``, since deleting it here could lose a run.
    """
    if run.dir.resolve() in live:
        return "running"
    summary = read_json(run.dir / "summary.json")
    if summary is not None and int(summary.get("timesteps") or 0) >= timesteps:
        return "done"
    if list_checkpoints(run.dir / CHECKPOINTS):
        return "resume"
    return "stale" if run_files(run.dir) else "new"


def train_command(run: Run, action: str, timesteps: int, extra: list[str]) -> list[str]:
    """The ``gaussrl train`` command line of a run to start ("new") or continue ("resume")."""
    common = ["--timesteps", str(timesteps), "--eval-episodes", str(EVAL_EPISODES), "--threads", "1", "--no-progress"]
    if action == "resume":  # the options typed again must match config.json, so a changed --extra is refused
        return [sys.executable, "-m", "gaussrl", "train", "--resume", str(run.dir.resolve()), *common, *extra]
    start = ["--algo", run.algo, "--env", run.env, "--seed", str(run.seed), "--out", str(run.dir.resolve())]
    return [sys.executable, "-m", "gaussrl", "train", *start, *common, *extra]


def launch(run: Run, command: list[str]) -> int:
    """Run ``command`` with one thread, in the run's parent directory, appending its output to ``<dir>.log``."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    run.dir.parent.mkdir(parents=True, exist_ok=True)
    with open(run.dir.parent / f"{run.dir.name}.log", "a", encoding="utf-8") as log:
        log.write(f"$ {shlex.join(command)}\n")
        log.flush()
        return subprocess.run(
            command, check=False, stdout=log, stderr=subprocess.STDOUT, cwd=run.dir.parent, env=environment
        ).returncode


@dataclass(frozen=True)
class Result:
    """What a run directory says about one run.

    ``status`` is "done", "in progress" (no summary.json, or one short of the target), "no evaluation" or
    "missing". ``steps`` is the summary's step count when done, else the latest evaluation's.
    """

    run: Run
    status: str
    curve: Curve | None
    final_return: float | None
    final_std: float | None
    episodes: int | None
    steps: int | None
    wall_s: float | None
    steps_per_s: float | None
    resumed: bool


def collect(run: Run, timesteps: int) -> Result:
    """Read a run's ``summary.json`` and evaluations."""
    try:
        curve: Curve | None = eval_curve(run.dir, f"seed {run.seed}")
    except MissingRunFileError:
        curve = None
    summary = read_json(run.dir / "summary.json")
    if summary is not None and int(summary.get("timesteps") or 0) >= timesteps:
        return Result(
            run=run,
            status="done",
            curve=curve,
            final_return=summary.get("eval_return_mean"),
            final_std=summary.get("eval_return_std"),
            episodes=summary.get("eval_episodes"),
            steps=int(summary["timesteps"]),
            wall_s=summary.get("wall_time_s"),
            steps_per_s=summary.get("env_steps_per_s"),
            resumed=bool(summary.get("resumed")),
        )
    if curve is None:
        status = "no evaluation" if run_files(run.dir) else "missing"
        return Result(run, status, None, None, None, None, None, None, None, False)
    latest = len(curve.steps) - 1
    mean, std = float(curve.means[latest]), float(curve.stds[latest])
    curve = Curve(f"seed {run.seed} (in progress)", curve.steps, curve.means, curve.stds)
    return Result(run, "in progress", curve, mean, std, None, int(curve.steps[latest]), None, None, False)


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _return_cell(result: Result) -> str:
    if result.status == "in progress":
        return f"{_number(result.final_return)} (in progress at step {result.steps})"
    return _number(result.final_return) if result.status == "done" else result.status


def summary_row(results: list[Result]) -> str:
    """One table row for the runs of one (env, algo): returns per seed, median, times, rates, the zoo's figure."""
    run = results[0].run
    values = [r.final_return for r in results if r.final_return is not None]
    median = statistics.median(values) if values else None
    mark = "*" if any(r.status == "in progress" for r in results) else ""
    count = "" if len(values) == len(results) else f" ({len(values)} of {len(results)} seeds)"
    zoo = ZOO.get((run.algo, run.env))
    meets = "-" if zoo is None or median is None else ("yes" if median >= zoo else "no") + mark
    wall = " / ".join(_duration(r.wall_s) + (" (resumed: last part)" if r.resumed else "") for r in results)
    steps = sorted({r.steps for r in results if r.status == "done" and r.steps is not None})
    cells = [
        run.env,
        run.algo.upper(),
        " / ".join(map(str, steps)) or "-",
        " / ".join(_return_cell(r) for r in results),
        _number(median) + mark + count,
        wall,
        " / ".join(_number(r.steps_per_s) for r in results),
        _number(zoo),
        meets,
    ]
    return "| " + " | ".join(cells) + " |"


def table(results: list[Result], command: str) -> str:
    """The Markdown report: one row per (env, algo), then one per run."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        groups.setdefault((result.run.env, result.run.algo), []).append(result)
    seeds = " / ".join(str(r.run.seed) for r in next(iter(groups.values()), []))
    partial = any(r.status == "in progress" for r in results)
    lines = [
        "# MuJoCo locomotion: gaussrl (torch, 1 CPU thread per run)",
        "",
        f"`{command}`",
        "",
        f"Final deterministic return: mean over {EVAL_EPISODES} episodes with mean actions, at the end of the run. "
        f"Zoo: the {ZOO_NAME} figure. Wall time and env steps/s from summary.json (evaluations included).",
        "",
        f"| env | algo | steps | final return (seeds {seeds}) | median | wall time | env steps/s | zoo | median >= zoo "
        "|",
        "|---|---|---|---|---|---|---|---|---|",
        *(summary_row(group) for group in groups.values()),
        "",
        *(["\\* includes runs still in progress (their latest evaluation).", ""] if partial else []),
        "| env | algo | seed | status | steps | return +- std (episodes) | wall time | env steps/s | run directory |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        score = f"{_number(r.final_return, 1)} +- {_number(r.final_std, 1)} ({r.episodes or '-'})"
        lines.append(
            f"| {r.run.env} | {r.run.algo.upper()} | {r.run.seed} | {r.status} | {r.steps or '-'} | {score} | "
            f"{_duration(r.wall_s)} | {_number(r.steps_per_s, 1)} | `{r.run.dir}` |"
        )
    return "\n".join(lines) + "\n"


def raw_metrics(results: list[Result]) -> list[dict[str, Any]]:
    """Every evaluation of every run, with its status, as JSON values (NaN as None)."""

    def values(array: Any) -> list[float | None]:
        return [float(v) if math.isfinite(v) else None for v in array]

    return [
        {
            "env": r.run.env,
            "algo": r.run.algo,
            "seed": r.run.seed,
            "dir": str(r.run.dir),
            "status": r.status,
            "steps": [] if r.curve is None else [int(s) for s in r.curve.steps],
            "return_mean": [] if r.curve is None else values(r.curve.means),
            "return_std": [] if r.curve is None else values(r.curve.stds),
        }
        for r in results
    ]


def write_report(results: list[Result], out: Path, command: str) -> list[Path]:
    """Write the curves (one PNG per env and algo), the table and the raw metrics under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for env, algo in dict.fromkeys((r.run.env, r.run.algo) for r in results):
        curves = [r.curve for r in results if (r.run.env, r.run.algo) == (env, algo) and r.curve is not None]
        if curves:
            zoo = ZOO.get((algo, env))
            references = [] if zoo is None else [(f"{ZOO_NAME}: {zoo:g}", zoo)]
            path = out / f"{env.replace('/', '_')}-{algo}.png"
            written.append(plot_curves(curves, path, title=f"{algo.upper()} {env}", references=references))
    (out / "mujoco.md").write_text(table(results, command), encoding="utf-8")
    raw = raw_metrics(results)
    (out / "curves.json").write_text(json.dumps(raw, indent=1, allow_nan=False), encoding="utf-8")
    with open(out / "curves.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["env", "algo", "seed", "status", "step", "return_mean", "return_std"])
        for run in raw:
            for row in zip(run["steps"], run["return_mean"], run["return_std"], strict=True):
                writer.writerow([run["env"], run["algo"], run["seed"], run["status"], *row])
    return [*written, out / "mujoco.md", out / "curves.json", out / "curves.csv"]


def run_all(runs: list[Run], timesteps: int, extra: list[str], jobs: int, on_done: Callable[[], object]) -> None:
    """Start, continue or skip each run, ``jobs`` subprocesses at a time; ``on_done()`` after each (one at a time)."""
    live = live_run_dirs()
    todo = []
    for run in runs:
        action = plan(run, timesteps, live)
        note = {"running": f" (pid {live.get(run.dir.resolve())}); left alone", "stale": STALE}.get(action, "")
        print(f"{run.dir}: {action}{note}", flush=True)
        if action in ("new", "resume"):
            todo.append((run, train_command(run, action, timesteps, extra)))
    lock = threading.Lock()  # pyplot is not thread-safe

    def one(item: tuple[Run, list[str]]) -> None:
        run, command = item
        status = launch(run, command)
        print(f"{run.dir}: exit status {status}", flush=True)
        with lock:
            on_done()

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, todo))


def report(runs: list[Run], timesteps: int, results: Path, command: str) -> list[Path]:
    """Collect every run's results and write the report files."""
    return write_report([collect(run, timesteps) for run in runs], results, command)


def main(argv: list[str] | None = None) -> None:
    """Run what is missing (unless --report-only), rewriting the report after each run; then print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["HalfCheetah-v5", "Ant-v5"])
    parser.add_argument("--algos", nargs="+", default=["ppo", "sac"], choices=["ppo", "sac"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (one CPU thread each)")
    parser.add_argument("--root", type=Path, default=Path("runs/mujoco"), help="where the run directories are")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the report is written")
    parser.add_argument("--extra", default="", help='more gaussrl train options, e.g. "--sac.batch-size 512"')
    parser.add_argument("--report-only", action="store_true", help="run nothing; report on the runs as they are")
    args = parser.parse_args(argv)
    runs = [Run(e, a, s, run_dir(args.root, a, e, s)) for e in args.envs for a in args.algos for s in args.seeds]
    command = (
        f"python -m benchmarks.mujoco --envs {' '.join(args.envs)} --algos {' '.join(args.algos)} "
        f"--seeds {' '.join(map(str, args.seeds))} --timesteps {args.timesteps} --root {args.root}"
        + (f" --extra {shlex.quote(args.extra)}" if args.extra else "")
    )
    if not args.report_only:
        extra = shlex.split(args.extra)
        run_all(
            runs, args.timesteps, extra, max(1, args.jobs), lambda: report(runs, args.timesteps, args.results, command)
        )
    print(table([collect(run, args.timesteps) for run in runs], command))
    for path in report(runs, args.timesteps, args.results, command):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
