"""How fast the light commands start: each one in a fresh ``python -m advisor.cli`` process, best of N taken round
robin (a shared machine's load only ever adds time), checked to import no torch, beside ``import torch`` for scale.

    python bench/startup.py                # writes reports/bench/startup.txt (and prints it)
    python bench/startup.py --runs 3 --out -

For each command: its ``--help`` and a real invocation (``report`` re-renders a copy of a committed example, so it
draws with matplotlib: shown, not held to the 0.5 s goal). The slowest imports (self time) come from
``python -X importtime``. A command this checkout does not have (``results`` before it is added) is skipped.

Compiled bytecode is cached (in a temporary ``PYTHONPYCACHEPREFIX``, even where ``PYTHONDONTWRITEBYTECODE`` is set),
as an installed advisor has it, and each command runs once untimed first to fill the cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.5
TASK = "data/tasks/support-intents.yaml"


def _example_results() -> Path | None:
    """A committed compare folder (results.json and its records), wherever this checkout keeps the examples."""
    found = sorted(ROOT.glob("reports/**/support-intents/results.json")) + sorted(ROOT.glob("reports/*/results.json"))
    return found[0].parent if found else None


PYCACHE = tempfile.mkdtemp(prefix="advisor-startup-pycache-")


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": path, "PYTHONPYCACHEPREFIX": PYCACHE, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}


def best_of(command: list[str], runs: int) -> float:
    """The fastest of ``runs`` wall times of ``command`` (seconds, interpreter start included), after one untimed
    run (it fills the bytecode cache)."""
    times = []
    subprocess.run(command, capture_output=True, cwd=ROOT, env=_env(), timeout=120)
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=120)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"startup bench: {' '.join(command)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return min(times)


def timed(command: list[str]) -> float:
    """One wall time of ``command`` (seconds, interpreter start included)."""
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"startup bench: {' '.join(command)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return time.perf_counter() - start


def import_profile(args: list[str]) -> tuple[bool, list[tuple[float, str]]]:
    """(torch imported?, the slowest imports by self time, ms: a project module by name, a library as a whole)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "advisor.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=120,
    )
    packages: dict[str, float] = {}
    torch = False
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        if not own.strip().isdigit():
            continue  # the header
        module = name.strip()
        top = module.split(".")[0]
        torch = torch or top == "torch"
        key = module if top in ("advisor", "harness") else top
        packages[key] = packages.get(key, 0.0) + int(own) / 1000
    return torch, sorted(((ms, name) for name, ms in packages.items()), reverse=True)[:5]


def registered() -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", "from advisor.cli import main; print(' '.join(main.commands))"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=120,
        check=True,
    )
    return set(proc.stdout.split())


def commands(scratch: Path) -> dict[str, list[str] | None]:
    """command -> the arguments of a real invocation (None: only its --help is timed)."""
    results = _example_results()
    copy = None
    if results is not None:
        copy = scratch / results.name
        shutil.copytree(results, copy)
    return {
        "validate": ["validate", TASK],
        "estimate": ["estimate", "--model", "llama-3.1-8b", "--gpu", "a10g"],
        "schema": ["schema", "--format", "json"],
        "results": ["results", str(results.relative_to(ROOT))] if results else None,
        "report": ["report", str(copy)] if copy else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per measurement; the best counts")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench" / "startup.txt"), help="file, or - (stdout)")
    args = parser.parse_args(argv)
    advisor = [sys.executable, "-m", "advisor.cli"]
    lines: list[str] = []
    say: Callable[[str], None] = lines.append
    bare = best_of([sys.executable, "-c", "pass"], args.runs)
    torch_s = best_of([sys.executable, "-c", "import torch"], max(2, args.runs // 2))
    say(f"advisor start-up: best of {args.runs} fresh processes (python -m advisor.cli ...), goal < {GOAL_S} s")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    say(f"python itself: {bare:.3f} s; `import torch` for scale: {torch_s:.3f} s")
    say(f"machine: {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min) when it started")
    say("")
    say(f"{'command':<40} {'seconds':>8} {'/ torch':>8}  {'goal':<5} torch?  slowest imports (ms, self)")
    have = registered()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        invocations: list[tuple[str, list[str]]] = []
        for name, real in {"(group)": None, **commands(Path(tmp))}.items():
            if name != "(group)" and name not in have:
                invocations.append((name, []))  # skipped
                continue
            invocations.append((name, ["--help"] if name == "(group)" else [name, "--help"]))
            if real:
                invocations.append((name, real))
        # round robin: a burst of load from elsewhere on a shared machine hits one try of each, not all of one's
        best: dict[int, float] = {}
        for attempt in range(args.runs + 1):  # the first, untimed, fills the bytecode cache
            for i, (_, invocation) in enumerate(invocations):
                if invocation:
                    seconds = timed([*advisor, *invocation])
                    best[i] = min(best.get(i, float("inf")), seconds) if attempt else float("inf")
        for i, (name, invocation) in enumerate(invocations):
            if not invocation:
                say(f"{name:<40} skipped: not a command in this checkout")
                continue
            seconds = best[i]
            torch, slowest = import_profile(invocation)
            held = name != "report" or invocation[-1] == "--help"  # report draws: shown, not held to the goal
            ok = seconds < GOAL_S and not torch
            failed = failed or (held and not ok)
            label = " ".join(invocation).replace(tmp, "COPY")  # report: a copy of a committed compare
            label = label if len(label) <= 40 else label[:37] + "..."
            verdict = ("ok" if ok else "SLOW") if held else "-"
            offenders = ", ".join(f"{top} {ms:.0f}" for ms, top in slowest)
            say(
                f"{label:<40} {seconds:8.3f} {seconds / torch_s:8.2f}  {verdict:<5} "
                f"{'yes' if torch else 'no':<6}  {offenders}"
            )
    shutil.rmtree(PYCACHE, ignore_errors=True)
    say("")
    say("report: a real re-render (matplotlib draws the charts); its --help is what starts in under the goal")
    text = "\n".join(lines) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        sys.stdout.write(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
