"""act() cost as a multiple of the bare network forward, for every backend and library installed.

Each case times ``act()`` (+ entropy) and the bare forward of the same MLP 17 -> 64 -> 64 -> 6
with the same weights, in interleaved rounds on one CPU thread; the figure reported is the
median over rounds of the per-round ratio. Results go to ``benchmarks/results/act.md`` and
``act.png``.

Run: ``python -m benchmarks.act`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

CASES = {
    "gaussrl-torch": ("benchmarks.cases.torch_case", "torch"),
    "gaussrl-jax": ("benchmarks.cases.jax_case", "jax"),
    "gaussrl-warp": ("benchmarks.cases.warp_case", "warp"),
    "skrl-torch": ("benchmarks.cases.skrl_case", "skrl"),
    "sb3": ("benchmarks.cases.sb3_case", "stable_baselines3"),
    "torchrl": ("benchmarks.cases.torchrl_case", "torchrl"),
    "hand-written": ("benchmarks.cases.handwritten_case", "torch"),
}
RESULTS = Path(__file__).resolve().parent / "results"


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""``cpu`` counts only this process's CPU time: on a shared machine, time spent waiting for a core
is left out. It suits the single-threaded torch cases, not JAX or Warp (other threads work too)."""
_CLOCK = {"now": CLOCKS["wall"]}


def _per_call(fn: Callable[[], object], calls: int) -> float:
    clock = _CLOCK["now"]
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls


def _calls_for(fn: Callable[[], object], budget: float) -> int:
    fn()
    once = max(_per_call(fn, 3), 1e-7)
    return max(3, int(budget / once))


def measure(run_act: Callable[[], object], run_forward: Callable[[], object], rounds: int, budget: float):
    """Median per-round ratio act/forward, and the median absolute times (seconds)."""
    for _ in range(3):
        run_act()
        run_forward()
    calls = _calls_for(run_forward, budget)
    act_calls = _calls_for(run_act, budget)
    # One untimed round each: the first timings in a process (allocator, caches) run slow.
    _per_call(run_forward, calls)
    _per_call(run_act, act_calls)
    ratios, act_times, forward_times = [], [], []
    for _ in range(rounds):
        t_forward = _per_call(run_forward, calls)
        t_act = _per_call(run_act, act_calls)
        ratios.append(t_act / t_forward)
        act_times.append(t_act)
        forward_times.append(t_forward)
    return statistics.median(ratios), statistics.median(act_times), statistics.median(forward_times)


def _load(name: str):
    module_name, package = CASES[name]
    try:
        importlib.import_module(package)
    except ImportError:
        return None
    return importlib.import_module(module_name)


def _table(rows: dict[str, dict[int, tuple[float, float, float]]], batches: list[int]) -> str:
    lines = ["| case | " + " | ".join(f"batch {b}" for b in batches) + " |", "|---" * (len(batches) + 1) + "|"]
    for name, results in rows.items():
        cells = []
        for b in batches:
            if b in results:
                ratio, t_act, t_fwd = results[b]
                cells.append(f"{ratio:.2f}x ({t_act * 1e6:.0f} / {t_fwd * 1e6:.0f} us)")
            else:
                cells.append("-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(rows, batches, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, results in rows.items():
        xs = [b for b in batches if b in results]
        ax.plot(xs, [results[b][0] for b in xs], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("batch size")
    ax.set_ylabel("act() time / bare forward time")
    ax.set_title("Gaussian head overhead (1 CPU thread; lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 64, 4096, 65536])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--budget", type=float, default=0.1, help="seconds per timing in a round")
    parser.add_argument("--training", action="store_true", help="time act(taken_actions)+backward instead")
    parser.add_argument("--head-only", action="store_true", help="identity network: the head's absolute cost")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall", help="wall time, or this process's CPU time")
    args = parser.parse_args(argv)
    _CLOCK["now"] = CLOCKS[args.clock]

    import torch

    torch.set_num_threads(1)
    rows: dict[str, dict[int, tuple[float, float, float]]] = {}
    for name in args.cases:
        module = _load(name)
        if module is None:
            print(f"{name}: not installed, skipped", file=sys.stderr)
            continue
        factory = getattr(module, "make_training_case" if args.training else "make_case", None)
        if factory is None:
            continue
        if args.head_only:
            if "identity" not in inspect.signature(factory).parameters:
                continue
            factory = functools.partial(factory, identity=True)
        rows[name] = {}
        for batch in args.batches:
            rows[name][batch] = measure(*factory(batch), args.rounds, args.budget)
            print(f"{name} batch {batch}: {rows[name][batch][0]:.3f}x", file=sys.stderr)
    kind = "training" if args.training else "head" if args.head_only else "act"
    table = _table(rows, args.batches)
    args.out.mkdir(parents=True, exist_ok=True)
    header = f"# {kind}: time / bare network {'forward+backward' if args.training else 'forward'}\n\n"
    (args.out / f"{kind}.md").write_text(header + table + "\n")
    _plot(rows, args.batches, args.out / f"{kind}.png")
    print(table)


if __name__ == "__main__":
    main()
