"""The step minimum for small datasets (harness.steps): the rule, and the run that follows it (the estimator
that prices it the same way: tests/advisor/test_costs_compute.py)."""

from __future__ import annotations

import pytest

from harness.steps import StepPlan, optimizer_steps, step_plan, steps_per_epoch


def test_steps_are_counted_as_the_trainer_counts_them():
    assert steps_per_epoch(151, 8) == 19  # the last micro-batch is partial
    assert optimizer_steps(151, 2, 8) == 38  # the run: 150 examples (+1), 2 epochs, batch 8
    assert steps_per_epoch(12, 2, gradient_accumulation=4) == 2  # 6 micro-batches: a group of 4, then one of 2
    assert steps_per_epoch(12, 2, processes=2) == 3  # each process takes 3 micro-batches of 2
    assert optimizer_steps(48, 2.5, 8) == 15  # a fractional epoch rounds up to a whole step


def test_enough_steps_change_nothing():
    assert step_plan(1000, 2, 8) == StepPlan(batch_size=8, epochs=2, optimizer_steps=250)
    assert not step_plan(800, 1, 8).adjusted  # exactly the minimum
    assert step_plan(800, 1, 8).optimizer_steps == 100


def test_too_few_steps_lower_the_batch_to_the_largest_that_reaches_the_minimum():
    # support-intents: 384 examples x 2 epochs at batch 8 = 96 steps; batch 7 gives 2 x 55 = 110
    assert step_plan(384, 2, 8) == StepPlan(batch_size=7, epochs=2, optimizer_steps=110, batch_lowered=True)
    # the 150 examples (+ one): batch 3 gives 2 x 51 = 102; batch 4 only 76
    assert step_plan(151, 2, 8) == StepPlan(batch_size=3, epochs=2, optimizer_steps=102, batch_lowered=True)
    # batch 1 suffices: 96 examples x 2 epochs = 192 steps
    assert step_plan(96, 2, 8).batch_size == 1 and not step_plan(96, 2, 8).epochs_raised


def test_when_batch_1_is_still_short_the_epochs_rise_to_exactly_the_minimum():
    plan = step_plan(48, 2, 8)  # 96 steps at batch 1
    assert (plan.batch_size, plan.optimizer_steps, plan.batch_lowered, plan.epochs_raised) == (1, 100, True, True)
    assert plan.epochs == pytest.approx(100 / 48)
    assert step_plan(10, 1, 1, min_steps=25) == StepPlan(1, 2.5, 25, batch_lowered=False, epochs_raised=True)
    # the global batch counts: 2 processes x batch 1 take 6 steps an epoch of 12 examples
    assert step_plan(12, 1, 4, processes=2, min_steps=30).epochs == 5
    assert step_plan(12, 1, 4, gradient_accumulation=3, min_steps=8).epochs == 2  # 4 steps an epoch at batch 1


def test_no_minimum_keeps_the_config():
    assert step_plan(48, 2, 8, min_steps=0) == StepPlan(batch_size=8, epochs=2, optimizer_steps=12)
    with pytest.raises(ValueError):
        step_plan(0, 2, 8)


def test_the_config_field_is_documented_and_on_by_default():
    from dataclasses import fields

    from harness.strategies.base import TrainingConfig
    from harness.strategies.full import FullConfig
    from harness.strategies.lora import LoraConfig

    field = next(f for f in fields(TrainingConfig) if f.name == "min_optimizer_steps")
    assert field.default == 100 and "0: no minimum" in field.metadata["doc"] and field.metadata["min"] == 0
    assert LoraConfig(batch_size=8).step_plan(151) == step_plan(151, 2, 8, min_steps=100)
    assert FullConfig(min_optimizer_steps=0).step_plan(151).optimizer_steps == 38


@pytest.mark.parametrize(
    ("minimum", "batch", "epochs", "steps", "lowered", "raised"),
    [(6, 2, 1.0, 6, True, False), (20, 1, 20 / 12, 20, True, True), (0, 4, 1.0, 3, False, False)],
)
def test_a_training_run_records_the_batch_and_steps_it_took(
    classification_task, minimum, batch, epochs, steps, lowered, raised
):
    """12 examples, batch 4, 1 epoch = 3 steps: a minimum of 6 trains at batch 2; of 20, at batch 1 for 20/12
    epochs."""
    from harness.runner import RunContext, run_variant
    from harness.strategies import STRATEGIES
    from harness.task import load_examples, load_task
    from tests.conftest import run_info

    task = load_task(classification_task)
    data = load_examples(task)
    ctx = RunContext(task=task, data=data, train=data.train, test=data.test[:1], device="cpu", seed=0, progress=False)
    config = STRATEGIES["lora"].config_type(rank=2, epochs=1, batch_size=4, min_optimizer_steps=minimum)
    variant = STRATEGIES["lora"].variants(config)[0]
    record = run_variant(ctx, variant, run_info(task, variant))
    assert record.ok, record.error
    train = record.train_info
    assert (train.batch_size, train.global_batch_size, train.optimizer_steps) == (batch, batch, steps)
    assert train.epochs == pytest.approx(epochs) and len(train.loss_curve) == steps
    assert train.min_optimizer_steps == minimum and train.min_steps_adjusted == (lowered or raised)
    assert train.examples == 12
