"""The report's validation choice (each arm's grid, the test split used once), seeds (mean ± std, error bars) and
what the comparison itself cost (every trial and seed repeat priced)."""

from __future__ import annotations

import json

import pytest
from markupsafe import escape

from advisor import charts
from advisor.comparison_cost import RunKind, comparison_cost
from advisor.learning_curve import CurvePoint, fit_learning_curve, point_interval, quality_interval, standard_error
from advisor.recommend import analyse
from advisor.report import render, republish
from harness.runstore import Splits
from tests.advisor.factories import (
    learning_curve_rows,
    make_comparison,
    make_results,
    make_row,
    make_trial,
    save_comparison,
    with_runs,
)

LORA_R16 = {"rank": 16}


def tuned_runs():
    """A prompt arm chosen from three shot counts (one failed), and a LoRA arm chosen from two ranks (one failed)
    on all of train, with three seeds at every learning-curve point."""
    prompt = with_runs(
        make_row("prompt", "4-shot", 0.55, data_usd=10.0, per_1k=0.02, params={"shots": 4, "instruction": None}),
        trials=[
            make_trial("prompt", "0-shot", 0.30, params={"shots": 0, "instruction": None}),
            make_trial("prompt", "4-shot", 0.50, params={"shots": 4, "instruction": None}),
            make_trial(
                "prompt",
                "8-shot",
                None,
                params={"shots": 8, "instruction": None},
                status="failed",
                error="prompt longer than the context",
            ),
        ],
    )
    curve = learning_curve_rows()
    seeded = [
        with_runs(curve[0], seed_qualities=(0.58, 0.66)),
        with_runs(curve[1], seed_qualities=(0.66, 0.70)),
        with_runs(
            curve[2],
            seed_qualities=(0.70, 0.74),
            trials=[
                make_trial("lora", "r8", 0.71, train_seconds=90.0),
                make_trial("lora", "r16", 0.69, params=LORA_R16, train_seconds=120.0),
                make_trial("lora", "r32", None, params={"rank": 32}, status="failed", error="CUDA out of memory"),
            ],
        ),
    ]
    return [prompt, *seeded]


def tuned_pricing():
    pricing = make_results(tuned_runs())
    comparison = pricing.comparison
    comparison.splits = Splits(
        train=[f"t{i}" for i in range(324)], validation=[f"v{i}" for i in range(60)], test=[f"x{i}" for i in range(200)]
    )
    comparison.options.seeds, comparison.options.trials = 3, 2
    comparison.task.n_train, comparison.task.n_validation = 324, 60
    return pricing


@pytest.fixture(scope="module")
def html() -> str:
    return render(analyse(tuned_pricing()))


def test_the_report_shows_each_arms_grid_and_its_choice(html):
    assert 'id="tuning"' in html and "How each arm's setting was chosen" in html
    assert "prompt: 3 settings tried, 4-shot chosen" in html and "lora: 3 settings tried, r8 chosen" in html
    grid = html[html.index("lora: 3 settings tried") :]
    grid = grid[: grid.index("</table>")]
    # the tuned axis, each trial's validation score, the failed one with its error, the chosen one marked
    assert '<th class="l">rank</th>' in grid
    assert "0.710" in grid and "0.690" in grid and "failed: CUDA out of memory" in grid
    assert '<tr class="chosen"><td class="l">r8 <span class="ci">chosen</span>' in grid
    prompt = html[html.index("prompt: 3 settings tried") :]
    assert "failed: prompt longer than the context" in prompt[: prompt.index("</table>")]


def test_every_arm_shows_its_validation_score_and_the_test_split_was_used_once(html):
    choices = html[html.index('id="validation-choices"') :]
    choices = choices[: choices.index("</table>")]
    assert choices.count("<tr class=") == 2  # one row per arm: the learning-curve rows reuse the choice
    assert "0.500" in choices and "0.710" in choices and "on 60" in choices
    sentence = html[html.index('id="test-once"') :]
    sentence = sentence[: sentence.index("</p>")]
    assert "<b>324</b> train / <b>60</b> validation / <b>200</b> test" in sentence
    assert "the test split was used once per arm: only the chosen setting was scored on test" in sentence
    assert "324 train / 60 validation / 200 test examples" in html  # the header too


def test_without_a_validation_split_the_report_says_no_choice_was_made_on_test():
    page = render(analyse(make_results([make_row("prompt", "4-shot", 0.5)])))
    sentence = page[page.index('id="test-once"') :]
    assert "no validation split" in sentence[: sentence.index("</p>")]
    assert "the test split was used once per arm" in sentence


def test_seeds_show_as_mean_and_std_with_each_seeds_value(html):
    runs = html[html.index('id="runs"') : html.index("</table>", html.index('id="runs"'))]
    # r8: seeds 0.72, 0.70, 0.74 -> 0.720 ± 0.020
    assert '0.720 ± 0.020 <span class="ci">(3 seeds)</span>' in runs
    assert "each seed: seed 0 0.720; seed 1 0.700; seed 2 0.740" in runs
    prompt = runs[runs.index('<td class="l">prompt</td>') :]
    assert "seeds" not in prompt[: prompt.index("</tr>")]  # one seed: no ± at all
    choices = html[html.index('id="validation-choices"') :]
    assert '<span class="ci">seed 2</span> 0.740' in choices[: choices.index("</table>")]


def test_learning_curve_points_get_error_bars_from_the_seeds():
    analysis = analyse(tuned_pricing())
    (curve,) = analysis.curves
    point = curve.points[0]  # r8-25pct: 0.62, 0.58, 0.66
    assert point.seed_qualities == (0.62, 0.58, 0.66) and point.quality == pytest.approx(0.62)
    low, high = point_interval(point)
    wilson = quality_interval(point.quality, point.n_test)
    assert low < wilson[0] and high > wilson[1]  # wider than the test set's interval alone
    svg = charts.learning_curve(curve, "accuracy")
    assert "each seed" in svg and "mean over seeds (95% interval with the seed spread)" in svg


def test_the_standard_error_adds_the_between_seed_variance():
    one = CurvePoint(examples=100, quality=0.7, n_test=200, variant="r8")
    seeded = CurvePoint(examples=100, quality=0.7, n_test=200, variant="r8", seed_qualities=(0.66, 0.70, 0.74))
    # SE^2 = q(1-q)/n_test + s^2/k: s = 0.04, k = 3
    assert standard_error(seeded) ** 2 == pytest.approx(0.7 * 0.3 / 200 + 0.04**2 / 3)
    assert standard_error(one) ** 2 == pytest.approx(0.7 * 0.3 / 200)
    sizes = (100, 200, 400)
    qualities = (0.6, 0.68, 0.72)
    plain = [CurvePoint(n, q, 200, f"r8-{n}") for n, q in zip(sizes, qualities, strict=True)]
    noisy = [
        CurvePoint(n, q, 200, f"r8-{n}", seed_qualities=(q - 0.05, q, q + 0.05))
        for n, q in zip(sizes, qualities, strict=True)
    ]
    narrow, wide = (fit_learning_curve("lora", "r8", points, goal=0.75) for points in (plain, noisy))
    width = [float((lambda b: (b[1] - b[0])[0])(c.band([150.0]))) for c in (narrow, wide)]
    assert width[1] > width[0]  # the seeds' spread widens the bootstrap band


def test_the_comparison_cost_sums_every_run_trials_and_seed_repeats_included():
    pricing = tuned_pricing()
    cost = comparison_cost(pricing)
    kinds = [c.kind for c in cost.runs]
    # prompt: 1 final + 3 trials; lora: 1 final + 2 curve points, 2 seed repeats each, 3 trials
    assert kinds.count(RunKind.FINAL) == 2 and kinds.count(RunKind.CURVE) == 2
    assert kinds.count(RunKind.TRIAL) == 6 and kinds.count(RunKind.SEED) == 6 and len(cost.runs) == 16
    assert len({c.record for c in cost.runs}) == 16  # each record once
    total = cost.total
    assert total.runs == sum(a.runs for a in cost.arms) == 16
    for name in ("machine_hours", "train_hours", "gpu_hours", "gpu_usd", "api_usd", "usd", "tuning_and_seeds_usd"):
        assert getattr(total, name) == pytest.approx(sum(getattr(a, name) for a in cost.arms)), name
    assert total.machine_hours == pytest.approx(sum(c.wall_seconds for c in cost.runs) / 3600)
    assert total.usd == pytest.approx(sum(c.usd for c in cost.runs))
    extra = sum(c.usd for c in cost.runs if c.kind in (RunKind.TRIAL, RunKind.SEED))
    assert total.tuning_and_seeds_usd == pytest.approx(extra) and 0 < total.tuning_and_seeds_share < 1
    assert total.unpriced == 2  # the two failed trials: their machine time counts, nothing to project
    # the chosen LoRA trial's weights were served: its training is counted once, on the trial
    served = next(c for c in cost.runs if c.record == "runs/lora-r8.json")
    assert served.served_trial and served.train_seconds == 0 and served.gpu_usd == 0  # fixed part not in factory
    assert f"Tuning and seeds were {total.tuning_and_seeds_share:.0%} of the compute" in cost.summary


def test_the_report_shows_what_the_comparison_cost(html):
    section = html[html.index('id="comparison-cost"') :]
    section = section[: section.index("</table>")]
    assert "What this comparison cost" in section and "Tuning and seeds were" in section
    assert "LoRA" in section and "prompting" in section and "<b>total</b>" in section
    assert "GPU-hours on a10g" in section


def test_every_trial_is_priced_by_the_pricing_path_and_written_to_results(tmp_path):
    """Through ``advisor report``: the records priced by advisor.pricing, the sums in results.json's costs."""
    comparison = make_comparison([run.stored for run in tuned_runs()])
    save_comparison(tmp_path, comparison)
    analysis, report = republish(tmp_path)
    lora = next(run for run in analysis.pricing.runs if run.row.variant == "r8")
    trials = [t for t in lora.trials if t.record.ok]
    assert trials and all(t.costs.train_usd and t.costs.train_usd > 0 for t in trials)
    assert all(r.costs.train_usd and r.costs.train_usd > 0 for r in lora.repeats)
    stored = json.loads((tmp_path / "results.json").read_text())
    block = stored["costs"]["comparison"]
    assert stored["costs"]["gpu"] == "a10g" and block["gpu"] == "a10g"
    assert block["total"]["runs"] == len(block["runs"]) == 16
    assert block["total"]["usd"] == pytest.approx(sum(r["gpu_usd"] + r["api_usd"] for r in block["runs"]))
    assert block["total"]["gpu_hours"] == pytest.approx(sum(r["gpu_hours"] for r in block["runs"]))
    by_record = {r["record"]: r for r in block["runs"]}
    for trial in trials:  # a trial's charge is its pricing's train_usd: one pricing path
        assert by_record[trial.stored.path]["gpu_usd"] == pytest.approx(trial.costs.train_usd)
    served = by_record["runs/lora-r8.json"]
    assert served["served_trial"] and served["gpu_usd"] == pytest.approx(lora.costs.train_fixed_usd)
    assert str(escape(block["summary"])) in report.read_text()
