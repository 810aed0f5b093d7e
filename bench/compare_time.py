"""What a fair comparison costs in time: a compare's runs by kind (trials on the validation split, the chosen
setting on test, seed repeats, learning-curve runs), and the ratio to the same compare without tuning.

    python bench/compare_time.py reports/support-intents [--baseline DIR] [--out reports/bench/compare_time.md]

Two ratios, each from measurements taken side by side in one place:
- *within the run*: all of this compare's run time against what it would have taken untuned - its runs on test,
  with a final run that loaded its chosen trial's weights charged that trial's training time (it would have
  trained itself) - from the same records on the same machine in the same hour;
- *against a baseline* compare folder (``--baseline``, e.g. the same task run before tuning existed): its total
  against this one's. Two compares run at different times on a shared machine: read it as a rough check.

Wall seconds are each record's own (loading, training, scoring), so the parent's few seconds between runs are
left out of both sides.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from harness.runstore import StoredRun, load_comparison


def kind_of(run: StoredRun, main: StoredRun) -> str:
    info = run.record.run_info
    if info.role == "trial":
        return "trials (validation)"
    if run is not main:
        return "seed repeats"
    if info.params.get("data_fraction", 1.0) < 1:
        return "learning-curve runs"
    return "chosen setting on test"


def seconds_by_kind(out_dir: Path) -> tuple[dict[str, dict[str, float]], float]:
    """{arm: {kind: wall seconds}} and the untuned-equivalent seconds of the whole compare."""
    comparison = load_comparison(out_dir)
    table: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    untuned = 0.0
    for row in comparison.runs:
        arm = row.record.run_info.strategy
        for run in row.all_runs():
            wall = run.record.run_info.wall_seconds or 0.0
            table[arm][kind_of(run, row)] += wall
            if run.record.run_info.role != "trial":
                untuned += wall
                served = run.record.validation and run.record.validation.from_trial
                if served and run.record.train_info:  # it would have trained itself
                    untuned += run.record.train_info.train_seconds
    return {arm: dict(kinds) for arm, kinds in table.items()}, untuned


def total_seconds(out_dir: Path) -> float:
    comparison = load_comparison(out_dir)
    return sum(r.record.run_info.wall_seconds or 0.0 for row in comparison.runs for r in row.all_runs())


def report(out_dir: Path, baseline: Path | None) -> str:
    table, untuned = seconds_by_kind(out_dir)
    kinds = ["trials (validation)", "chosen setting on test", "seed repeats", "learning-curve runs"]
    lines = [
        f"# Compare time by kind of run: {out_dir}",
        "",
        "Command: `python bench/compare_time.py " + str(out_dir) + (f" --baseline {baseline}`" if baseline else "`"),
        "",
        "| arm | " + " | ".join(kinds) + " | total |",
        "|---|" + "---:|" * (len(kinds) + 1),
    ]
    for arm, by_kind in table.items():
        cells = [f"{by_kind.get(k, 0.0):.0f} s" for k in kinds]
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {sum(by_kind.values()):.0f} s |")
    total = sum(sum(k.values()) for k in table.values())
    lines += [
        "",
        f"Total run time: {total:.0f} s. Untuned equivalent (its runs on test, each chosen trial's training "
        f"charged to the run it served): {untuned:.0f} s. **Ratio within the run: {total / untuned:.2f}x.**",
    ]
    if baseline:
        before = total_seconds(baseline)
        lines.append(
            f"Baseline {baseline}: {before:.0f} s. **Ratio to the baseline: {total / before:.2f}x** (two compares at "
            f"different times on a shared machine: a rough check)."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args()
    text = report(args.out_dir, args.baseline)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
