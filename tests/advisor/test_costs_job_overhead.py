"""The fixed part of a training job: start-up, model load, evaluation, save and billing rounding, itemised."""

from __future__ import annotations

import copy

import pytest

from advisor.costs import estimate_training
from advisor.costs.job_overhead import (
    BillingRule,
    JobBytes,
    MeasuredPhases,
    billing_rounding,
    billing_rule,
    job_bytes,
    job_overhead,
)
from advisor.costs.shapes import ModelShape, lora_trainable_params, param_counts
from harness import catalog
from harness.errors import UserError

GB = 1e9


def figure(section: str, key: str) -> float:
    return float(catalog.job_overheads()[section][key]["value"])


def download_rate() -> float:
    return min(figure("throughput", "network_download_bytes_per_s"), figure("throughput", "disk_write_bytes_per_s"))


def test_the_items_follow_their_formulas_and_add_up():
    job = JobBytes(model=2 * GB, checkpoint=1 * GB)
    fixed = job_overhead(job, "h100-sxm", compute_seconds=1000.0, gpus=2)
    rate, read, write = (
        download_rate(),
        figure("throughput", "disk_read_bytes_per_s"),
        figure("throughput", "disk_write_bytes_per_s"),
    )
    assert fixed.startup_s == pytest.approx(
        figure("startup", "instance_boot_s") + figure("startup", "environment_bytes") / rate
    )
    assert fixed.model_load_s == pytest.approx(2 * GB / rate + 2 * GB / read)
    assert fixed.save_s == pytest.approx(1 * GB / write)
    assert fixed.eval_s == figure("evaluation", "seconds")
    items = fixed.item_seconds()
    assert fixed.seconds == pytest.approx(sum(items.values()))
    assert fixed.as_dict()["total_seconds"] == pytest.approx(sum(fixed.as_dict()["seconds"].values()))
    # paid on both GPUs, at one device's price each
    assert fixed.gpu_hours == pytest.approx(fixed.seconds * 2 / 3600)
    assert fixed.usd == pytest.approx(fixed.gpu_hours * catalog.gpus()["h100-sxm"]["usd_per_hour"])
    assert set(fixed.sources) == set(items) and all(fixed.sources.values())


def test_billing_rounds_up_to_the_increment_with_a_60_second_minimum():
    aws = billing_rule(catalog.check_gpu("a10g"))
    assert (aws.provider, aws.increment_s, aws.minimum_s) == ("aws", 1.0, 60.0)
    assert billing_rounding(12.5, aws) == pytest.approx(47.5)  # a 12.5 s job is billed a minute
    assert billing_rounding(61.2, aws) == pytest.approx(0.8)  # per second above the minimum
    assert billing_rounding(120.0, aws) == 0.0
    per_minute = BillingRule("lambda", 60.0, 0.0, "test")
    assert billing_rounding(61.0, per_minute) == pytest.approx(59.0)
    assert billing_rounding(120.0 + 1e-12, per_minute) == pytest.approx(0.0, abs=1e-9)  # float noise is no minute


def test_a_short_job_is_billed_the_minimum_on_aws(monkeypatch):
    figures = copy.deepcopy(catalog.job_overheads())
    figures["startup"]["instance_boot_s"]["value"] = 5  # a machine already up: start-up no longer fills the minute
    figures["startup"]["environment_bytes"]["value"] = 0
    monkeypatch.setattr(catalog, "job_overheads", lambda: figures)
    fixed = job_overhead(JobBytes(model=0, checkpoint=0), "a10g", compute_seconds=1.0, eval_seconds=10.0)
    assert fixed.startup_s == 5.0
    assert fixed.billing_rounding_s == pytest.approx(60 - 16)
    assert fixed.compute_s + fixed.seconds == pytest.approx(60.0)
    per_second = job_overhead(JobBytes(model=0, checkpoint=0), "h100-sxm", compute_seconds=1.0, eval_seconds=10.0)
    assert per_second.billing_rounding_s == pytest.approx(0.0)  # RunPod: per second, no minimum


@pytest.mark.parametrize(
    "gpu, provider",
    [("a10g", "aws"), ("a100-40gb", "aws"), ("h100-sxm", "runpod"), ("l40s", "runpod"), ("l4", "modal")],
)
def test_the_billing_rule_follows_the_provider_named_in_the_price_source(gpu, provider):
    assert billing_rule(catalog.check_gpu(gpu)).provider == provider


def test_an_unknown_provider_gets_the_default_rule():
    rule = billing_rule({"price_source": "Some Cloud, 1x A100"})
    assert rule.provider == "default" and rule.increment_s == 60 and "Assumption" in rule.source


def test_lora_saves_its_adapters_only_and_loads_the_same_16_bit_weights_as_full():
    shape = ModelShape.from_catalog("llama-3.2-1b")
    base = param_counts(shape).total
    adapters = lora_trainable_params(shape, 8)
    full = estimate_training(shape, "full", "a10g", 1000, 512, 1, 4)
    lora = estimate_training(shape, "lora", "a10g", 1000, 512, 1, 4, rank=8)
    qlora = estimate_training(shape, "qlora", "a10g", 1000, 512, 1, 4, rank=8)
    write = figure("throughput", "disk_write_bytes_per_s")
    assert full.fixed.save_s == pytest.approx(base * 2 / write)  # every bf16 weight
    assert lora.fixed.save_s == pytest.approx(adapters * 4 / write)  # fp32 adapters
    assert lora.fixed.save_s < full.fixed.save_s / 100
    # QLoRA downloads the 16-bit checkpoint and quantises it on load
    assert full.fixed.model_load_s == pytest.approx(lora.fixed.model_load_s) == pytest.approx(qlora.fixed.model_load_s)
    assert job_bytes(base, "qlora", trained_params=adapters, precision="bf16") == JobBytes(base * 2, adapters * 4)
    assert job_bytes(base, "full", trained_params=base, precision="fp32").checkpoint == base * 4


def test_the_estimate_adds_the_fixed_part_to_the_flop_part():
    estimate = estimate_training("smollm2-135m-instruct", "full", "a10g", 384, 64, 2, 8)
    assert estimate.usd == pytest.approx(estimate.flop_usd + estimate.fixed.usd)
    assert estimate.flop_usd == pytest.approx(estimate.gpu_hours * catalog.gpus()["a10g"]["usd_per_hour"])
    assert estimate.fixed.compute_s == pytest.approx(estimate.gpu_hours * 3600)
    data = estimate.as_dict()
    assert data["train_gpu_hours"] == estimate.gpu_hours  # still the FLOP part
    assert data["train_usd"] == pytest.approx(data["train_flop_usd"] + data["train_fixed_usd"])
    given = estimate_training("smollm2-135m-instruct", "full", "a10g", 384, 64, 2, 8, eval_seconds=300.0)
    assert given.fixed.eval_s == 300.0 and given.fixed.sources["eval"] == "given by the caller"


def test_a_sharded_job_pays_the_fixed_seconds_on_every_gpu():
    estimate = estimate_training("llama-3.1-8b", "full", "a10g", 1000, 512, 1, 1)
    assert estimate.gpus_needed and estimate.gpus_needed > 1
    assert estimate.fixed.gpus == estimate.gpus_needed
    assert estimate.fixed.compute_s == pytest.approx(estimate.gpu_hours * 3600 / estimate.gpus_needed)
    assert estimate.fixed.gpu_hours == pytest.approx(estimate.fixed.seconds * estimate.gpus_needed / 3600)


def test_measured_phases_replace_the_catalog_figures_but_not_the_download():
    job = JobBytes(model=1 * GB, checkpoint=0.5 * GB)
    measured = MeasuredPhases(model_load_s=7.0, eval_s=3.0)
    fixed = job_overhead(job, "a10g", compute_seconds=600.0, eval_seconds=99.0, measured=measured)
    assert fixed.model_load_s == pytest.approx(1 * GB / download_rate() + 7.0)
    assert fixed.eval_s == 3.0  # the measurement wins over a given figure
    assert fixed.save_s == pytest.approx(0.5 * GB / figure("throughput", "disk_write_bytes_per_s"))
    assert fixed.measured == ("model_load", "eval") and "measured" in fixed.summary()


@pytest.mark.parametrize(
    "kwargs",
    [{"compute_seconds": -1.0}, {"compute_seconds": 1.0, "gpus": 0}, {"compute_seconds": 1.0, "eval_seconds": -5.0}],
)
def test_bad_inputs_are_one_line_errors(kwargs):
    with pytest.raises(UserError) as err:
        job_overhead(JobBytes(1, 1), "a10g", **kwargs)
    assert "\n" not in str(err.value)
