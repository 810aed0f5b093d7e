"""Tuning on the validation split: grids in priority order, arms planned from them, the choice, and a compare that
scores only the chosen setting on test, serves the chosen trial's weights and repeats it with seeds."""

from __future__ import annotations

import json

import pytest

from harness.record import RunInfo, RunRecord, RunStatus, ValidationInfo
from harness.spec import Example, carve_validation, validation_size
from harness.strategies import STRATEGIES, Variant
from harness.strategies.full import FullConfig
from harness.strategies.lora import LoraConfig
from harness.strategies.prompting import PromptConfig
from harness.strategies.rag import RagConfig
from harness.task import load_task
from harness.tuning import choose, plan_arms
from tests.conftest import compare_in_process as compare


def test_grids_come_nearest_the_defaults_first():
    names = [v.name for v in STRATEGIES["lora"].variants(LoraConfig())]
    # each list's first value first, then one step on one axis (the earlier axis, the learning rate, first)
    assert names[:4] == ["r8-lr0.0003", "r8-lr0.001", "r16-lr0.0003", "r8-lr0.0001"] and len(names) == 6
    assert [v.name for v in STRATEGIES["lora"].variants(LoraConfig(rank=4, learning_rate=1e-3))] == ["r4"]
    assert [v.params["learning_rate"] for v in STRATEGIES["full"].variants(FullConfig())] == [5e-5, 2e-5, 1e-4]
    rag = STRATEGIES["rag"].variants(RagConfig(top_k=[2, 4], chunk_words=[60, 120]))
    assert [v.name for v in rag] == ["top-2-c60", "top-4-c60", "top-2-c120", "top-4-c120"]
    prompt = STRATEGIES["prompt"].variants(PromptConfig(shots=[0, 4], instruction=["Label it.", "Route it."]))
    assert [v.name for v in prompt][:3] == ["0-shot-instruction1", "4-shot-instruction1", "0-shot-instruction2"]
    assert all(v.params["data_fraction"] == 1.0 for v in STRATEGIES["lora"].variants(LoraConfig()))


def test_the_validation_split_is_seeded_disjoint_and_never_the_last_example():
    train = [Example(str(i), f"x{i}", "a") for i in range(20)]
    rest, held = carve_validation(train, 0.15, seed=0)
    assert len(held) == 3 and len(rest) == 17 and not {e.id for e in held} & {e.id for e in rest}
    assert carve_validation(train, 0.15, seed=0) == (rest, held)
    assert carve_validation(train, 0.15, seed=1) != (rest, held)
    assert carve_validation(train, 5, seed=0)[1].__len__() == 5  # a count
    assert carve_validation(train, None, seed=0) == (train, [])
    assert (validation_size(0.15, 1), validation_size(0.15, 2), validation_size(0.01, 50)) == (0, 1, 1)


def test_bad_validation_settings_are_one_line_errors(classification_task):
    from harness.errors import UserError
    from harness.task import load_examples

    body = classification_task.read_text()
    classification_task.write_text(body.replace("evaluation: {", "evaluation: {validation: 12, "))
    with pytest.raises(UserError, match=r"evaluation.validation: holding out 12 of 12 .* leaves none"):
        load_examples(load_task(classification_task))
    classification_task.write_text(body.replace("evaluation: {", "evaluation: {validation: 2.5, "))
    with pytest.raises(UserError, match="neither a fraction below 1 nor a whole count"):
        load_task(classification_task)


def _variants(task):
    return [v for name, config in task.strategy_configs.items() for v in STRATEGIES[name].variants(config)]


def test_arms_try_the_first_trials_of_a_fine_tuning_grid_and_all_of_prompting(classification_task):
    body = classification_task.read_text().replace("learning_rate: 5.0e-4}", "learning_rate: [5.0e-4, 1.0e-3, 1.0e-4]}")
    assert "[5.0e-4, 1.0e-3, 1.0e-4]" in body
    classification_task.write_text(body)
    task = load_task(classification_task)
    arms = {
        a.strategy: a
        for a in plan_arms(task, _variants(task), seed=3, seeds=2, trials=2, has_validation=True, quick=False)
    }
    assert [v.name for v in arms["lora"].candidates] == ["r4-lr0.0005", "r4-lr0.001"] and arms["lora"].tuned
    assert [v.name for v in arms["prompt"].candidates] == ["0-shot", "2-shot"]  # evaluation only: its whole grid
    assert arms["lora"].seeds == [3, 4] and arms["prompt"].seeds == [3]  # seeds repeat fine-tuning arms only
    assert not arms["full"].tuned and arms["full"].run_count == 2  # one setting, two seeds
    quick = plan_arms(task, _variants(task), seed=0, seeds=2, trials=2, has_validation=True, quick=True)
    assert all(len(a.candidates) == 1 and a.seeds == [0] and a.fractions == [1.0] for a in quick)
    untuned = plan_arms(task, _variants(task), seed=0, seeds=1, trials=2, has_validation=False, quick=False)
    assert all(not a.tuned for a in untuned)


def _trial(name: str, quality: float | None, status: RunStatus = RunStatus.OK) -> tuple[Variant, RunRecord]:
    variant = Variant("lora", name, {})
    info = RunInfo("t", "lora", name, {}, "h", 0, None, "cpu", None, role="trial")  # type: ignore[arg-type]
    validation = ValidationInfo("accuracy", quality, 10, 0, 1.0) if quality is not None else None
    return variant, RunRecord(run_info=info, status=status, validation=validation)


def test_the_best_validation_score_is_chosen_ties_to_the_earlier():
    trials = [_trial("a", 0.5), _trial("b", 0.7), _trial("c", 0.7), _trial("d", None, RunStatus.FAILED)]
    assert choose(trials)[0].name == "b"
    assert choose([_trial("d", None, RunStatus.FAILED)]) is None


def test_a_tuned_fine_tuning_arm_serves_its_chosen_trial_and_repeats_it_with_seeds(classification_task, tmp_path):
    body = classification_task.read_text().replace("learning_rate: 5.0e-4}", "learning_rate: [5.0e-4, 5.0e-3]}")
    assert "[5.0e-4, 5.0e-3]" in body
    classification_task.write_text(body)
    out = tmp_path / "out"
    results, lines = compare(classification_task, out, only=["lora"], seeds=2)
    (row,) = results["runs"]
    trials = row["tuning"]["trials"]
    assert [t["variant"] for t in trials] == ["r4-lr0.0005", "r4-lr0.005"]
    best = max(trials, key=lambda t: t["validation_quality"])
    assert row["variant"] == row["tuning"]["chosen"] == best["variant"]
    assert row["validation_quality"] == best["validation_quality"]
    assert any("chose" in line and "only it is scored on test" in line for line in lines)

    final = json.loads((out / row["record"]).read_text())
    trial = json.loads((out / best["record"]).read_text())
    # the final run loaded the trial's weights: its training record is the trial's, and nothing trained again
    assert final["train_info"] == trial["train_info"] and final["validation"]["from_trial"] == best["record"]
    assert final["run_info"]["role"] == "final" and final["eval_info"]["n_examples"] == 6
    assert not (out / "checkpoints").exists()  # each removed after its arm, then the empty folder

    assert row["seeds"] == [0, 1] and len(row["seed_qualities"]) == 2 and row["quality_std"] is not None
    assert row["quality"] == pytest.approx(sum(row["seed_qualities"]) / 2)
    repeat = json.loads((out / row["seed_records"][0]).read_text())
    assert repeat["run_info"]["seed"] == 1 and repeat["validation"] is None  # only the chosen seed was validated

    _, again = compare(classification_task, out, only=["lora"], seeds=2)
    assert sum("reusing" in line for line in again) == 4  # two trials, two seeds: nothing runs twice


def test_a_quick_look_runs_one_setting_per_arm_and_scores_validation_beside_test(classification_task, tmp_path):
    results, lines = compare(classification_task, tmp_path / "out", only=["prompt"], limit=3)
    (row,) = results["runs"]
    assert row["tuning"] is None and row["validation_quality"] is not None and len(lines) == 2
    assert not (tmp_path / "out" / "runs" / "trials").exists()
    assert results["options"]["trials"] == 1 and results["options"]["seeds"] == 1


def test_an_arm_whose_trials_all_fail_is_one_failed_row_listing_them(classification_task, tmp_path, monkeypatch):
    import harness.strategies.lora as lora

    def fails(*args, **kwargs):
        raise RuntimeError("training diverged: loss became nan")

    monkeypatch.setattr(lora, "train_lora", fails)
    body = classification_task.read_text().replace("learning_rate: 5.0e-4}", "learning_rate: [5.0e-4, 5.0e-3]}")
    assert "[5.0e-4, 5.0e-3]" in body
    classification_task.write_text(body)
    results, lines = compare(classification_task, tmp_path / "out", only=["lora"])
    (row,) = results["runs"]
    assert row["status"] == "failed" and "diverged" in row["error"]
    assert [t["status"] for t in row["tuning"]["trials"]] == ["failed", "failed"]
    assert not any("chose" in line for line in lines)  # nothing was scored on test
