"""Are the differences real? Paired tests between arms, and what the recommendation and the report make of them."""

from __future__ import annotations

import json
import random

import pytest

from advisor.arms import Arm
from advisor.costs.data_cost import DataCostConfig
from advisor.recommend import analyse
from advisor.report import publish, render
from advisor.significance import (
    METHODS,
    RESAMPLES,
    ArmComparison,
    PairedMethod,
    cannot_be_told_apart,
    mcnemar_exact,
    paired_bootstrap,
    paired_test,
    seed_bootstrap,
)
from harness.record import Prediction
from harness.runstore import StoredRun
from tests.advisor.factories import make_comparison, make_record, make_results, make_row, recommend, save_comparison


def predictions(scores: list[float], start: int = 0) -> list[Prediction]:
    return [Prediction(f"ex{start + i}", "q", "a", "a", "a", s, 10, 1) for i, s in enumerate(scores)]


def stored(scores: list[float], variant: str = "v", *, seeds: list[list[float]] | None = None) -> StoredRun:
    """A run with these per-example scores (and, with ``seeds``, repeats with theirs)."""

    def run(s: list[float], name: str) -> StoredRun:
        record = make_record("lora", variant, sum(s) / len(s), n_test=len(s), predictions=predictions(s))
        return StoredRun(record, f"runs/{name}.json")

    base = run(scores, variant)
    base.repeats = [run(s, f"{variant}-seed{i + 1}") for i, s in enumerate(seeds or [])]
    return base


def pairs(both: int, only_a: int, only_b: int, neither: int) -> tuple[list[float], list[float]]:
    """Accuracy scores of two arms on the same examples, by how their right answers overlap."""
    a = [1.0] * both + [1.0] * only_a + [0.0] * only_b + [0.0] * neither
    b = [1.0] * both + [0.0] * only_a + [1.0] * only_b + [0.0] * neither
    return a, b


def test_mcnemar_exact_by_hand():
    # 12 discordant pairs split 10 / 2: 2 x (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2 x 79 / 4096
    assert mcnemar_exact(10, 2) == 158 / 4096
    assert round(mcnemar_exact(10, 2), 4) == 0.0386
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(6, 6) == 1.0
    assert mcnemar_exact(3000, 2000) < 1e-40  # large counts stay exact (integer arithmetic), no overflow


def test_accuracy_with_one_seed_is_mcnemar_on_the_shared_examples():
    a, b = pairs(80, 10, 2, 36)
    run_b = stored([*b, 1.0, 1.0], "b")  # two more examples that only b scored: left out
    test = paired_test("LoRA r8", stored(a, "a"), "RAG top-4", run_b)
    assert test is not None and test.method is PairedMethod.MCNEMAR_EXACT
    assert (test.a, test.b, test.n_examples) == ("LoRA r8", "RAG top-4", 128)
    assert test.difference == pytest.approx(8 / 128) and test.p_value == pytest.approx(158 / 4096)
    assert test.told_apart and test.verdict == "can be told apart"
    assert test.evidence() == "McNemar exact test, p = 0.039"


def test_no_shared_examples_no_test():
    assert paired_test("a", stored([1.0, 0.0]), "b", _other_ids()) is None
    assert not cannot_be_told_apart(None)  # no test: nothing claimed


def _other_ids() -> StoredRun:
    run = stored([1.0, 0.0])
    run.record.predictions = predictions([1.0, 0.0], start=100)
    return run


def test_graded_scores_take_the_paired_bootstrap_reproducibly():
    rng = random.Random(1)
    a = [rng.random() for _ in range(150)]
    same = paired_test("a", stored(a), "b", stored(list(a)))
    assert same is not None and same.method is PairedMethod.PAIRED_BOOTSTRAP
    assert same.p_value == pytest.approx(1.0) and cannot_be_told_apart(same)
    better = [min(1.0, x + 0.15) for x in a]
    clear = paired_test("a", stored(better), "b", stored(a))
    assert clear is not None and clear.p_value < 1e-3 and clear.difference > 0.1
    assert clear.p_value == pytest.approx(2 / (RESAMPLES + 1))  # no resample changes sign: the smallest p
    noisy = [rng.random() for _ in range(150)]
    assert paired_bootstrap(a, noisy) == paired_bootstrap(a, noisy)  # seeded: the same p on every render
    assert 0.0 < paired_bootstrap(a, noisy) <= 1.0


def test_seeds_take_the_hierarchical_bootstrap_and_their_variance_counts():
    # arm a: one seed at 0.9 on every example, another at 0.3 (mean 0.6); arm b: 0.5 everywhere
    a = stored([0.9] * 100, "a", seeds=[[0.3] * 100])
    b = stored([0.5] * 100, "b")
    test = paired_test("a", a, "b", b)
    assert test is not None and test.method is PairedMethod.SEED_BOOTSTRAP
    assert test.difference == pytest.approx(0.1)
    assert test.p_value > 0.5  # half the draws take the bad seed: no real difference
    # the seeds' mean alone would look certain (every example +0.1)
    assert paired_bootstrap([0.6] * 100, [0.5] * 100) < 1e-3
    # accuracy scores with seeds: not McNemar, which knows nothing of seeds
    x, y = pairs(80, 10, 2, 36)
    with_seeds = paired_test("x", stored(x, "x", seeds=[x]), "y", stored(y, "y"))
    assert with_seeds is not None and with_seeds.method is PairedMethod.SEED_BOOTSTRAP
    assert seed_bootstrap([x, x], [y]) == seed_bootstrap([x, x], [y])


def test_every_method_is_described_once():
    assert set(METHODS) == set(PairedMethod)
    assert all(m.title and m.description and m.citation for m in METHODS.values())


def test_interval_widens_with_seed_variance():
    one = make_row("lora", "r8", 0.8, train_usd=1.0, n_test=200)
    arm = Arm(one, 12)
    assert arm.interval == pytest.approx((0.7391, 0.8495), abs=1e-3)  # Wilson on 200 examples
    seeded = make_row("lora", "r8", 0.8, train_usd=1.0, n_test=200)
    seeded.stored.repeats = [
        StoredRun(make_record("lora", "r8", q, trained=True, n_test=200), f"runs/lora-r8-seed{i}.json")
        for i, q in enumerate((0.7, 0.9), start=1)
    ]
    wide = Arm(seeded, 12)
    low, high = wide.interval
    # seeds 0.8, 0.7, 0.9: stdev 0.1, standard error 0.0577, x 1.96 = 0.113, added in quadrature to each side
    assert low == pytest.approx(0.8 - ((0.8 - 0.7391) ** 2 + 0.1132**2) ** 0.5, abs=1e-3)
    assert high == pytest.approx(0.8 + ((0.8495 - 0.8) ** 2 + 0.1132**2) ** 0.5, abs=1e-3)


# the recommendation: LoRA r8 right on 99 of 128, RAG top-4 on 92 (12 vs 5 discordant: p = 0.14), or on 81
# (20 vs 2 discordant: p < 0.001); RAG is the cheaper and simpler arm
NOT_SIGNIFICANT = pairs(87, 12, 5, 24)
SIGNIFICANT = pairs(79, 20, 2, 27)


def two_arms(scores: tuple[list[float], list[float]]):
    lora, rag = scores
    return [
        make_row(
            "lora",
            "r8",
            sum(lora) / 128,
            train_usd=0.12,
            data_usd=960.0,
            n_test=128,
            predictions=predictions(lora),
            params={"rank": 8, "learning_rate": 2e-4},  # one grid point, as a tuned arm's final run records it
        ),
        make_row("rag", "top-4", sum(rag) / 128, data_usd=0.0, n_test=128, predictions=predictions(rag)),
    ]


def test_closest_arm_goes_to_the_cheaper_one_when_the_test_cannot_tell_them_apart():
    rec = recommend(make_results(two_arms(NOT_SIGNIFICANT), quality=0.9))
    assert (rec["strategy"], rec["meets_goals"]) == ("rag", False)
    assert rec["verdict"].startswith("No measured run meets the goals. Closest: RAG top-4 at 0.719")
    p = mcnemar_exact(12, 5)
    assert f"p = {p:.2f}" == "p = 0.14"
    assert (
        "LoRA r8 (0.773) and RAG top-4 (0.719) cannot be told apart on these 128 test examples "
        "(McNemar exact test, p = 0.14), so the cheaper and simpler RAG top-4 is the closest." in rec["reasons"]
    )


def test_closest_arm_stays_the_best_when_the_difference_is_real():
    rec = recommend(make_results(two_arms(SIGNIFICANT), quality=0.9))
    assert rec["strategy"] == "lora" and rec["verdict"].startswith("No measured run meets the goals. Closest: LoRA r8")
    assert not any("cannot be told apart" in line for line in rec["reasons"])


def test_a_better_arm_that_meets_the_goals_is_weighed_with_the_test():
    rec = recommend(make_results(two_arms(NOT_SIGNIFICANT), quality=0.6))
    assert (rec["strategy"], rec["meets_goals"]) == ("rag", True)  # cost decides among adequate arms, as before
    assert any(
        line.startswith("LoRA r8 (0.773) and RAG top-4 (0.719) cannot be told apart on these 128 test examples")
        and line.endswith("so the cheaper and simpler RAG top-4 is recommended.")
        for line in rec["reasons"]
    )
    rec = recommend(make_results(two_arms(SIGNIFICANT), quality=0.6))
    assert rec["strategy"] == "rag"
    assert any(
        line.startswith("LoRA r8 (0.773) is better than RAG top-4 (0.633) beyond the test set's noise")
        and "McNemar exact test, p < 0.001" in line
        for line in rec["reasons"]
    )


def test_results_json_and_the_report_carry_the_comparisons(tmp_path):
    runs = [
        *two_arms(NOT_SIGNIFICANT),
        make_row("prompt", "4-shot", 0.5, n_test=128, predictions=predictions([0.5] * 128)),
    ]
    comparison = make_comparison([run.stored for run in runs], quality=0.9)
    save_comparison(tmp_path, comparison)
    analysis, report = publish(tmp_path, comparison, DataCostConfig())
    stored_json = json.loads((tmp_path / "results.json").read_text())
    first, second = stored_json["comparisons"]
    assert first == {
        "a": "LoRA r8",
        "b": "RAG top-4",
        "difference": pytest.approx(7 / 128),
        "p_value": pytest.approx(mcnemar_exact(12, 5)),
        "method": "mcnemar-exact",
        "n_examples": 128,
        "alpha": 0.05,
    }
    assert (second["b"], second["method"]) == ("prompting 4-shot", "paired-bootstrap")  # graded 0.5 scores
    html = report.read_text()
    assert 'id="significance"' in html and "Are the differences real?" in html
    assert html.index('id="chart-quality-cost"') < html.index('id="significance"') < html.index('id="runs"')
    assert "cannot be told apart" in html and "McNemar (1947)" in html and "Koehn (2004)" in html
    assert all(isinstance(c, ArmComparison) for c in analysis.comparisons)


def test_no_predictions_no_table():
    html = render(analyse(make_results([make_row("prompt", "0-shot", 0.85), make_row("rag", "top-4", 0.8)])))
    assert 'id="significance"' not in html
