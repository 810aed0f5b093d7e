"""The report's environment says which executor placed the runs and on which hosts they ran."""

from __future__ import annotations

import dataclasses

from advisor.recommend import analyse
from advisor.report import render
from tests.advisor.factories import make_results, make_row


def test_the_environment_names_the_executor_and_the_hosts_the_runs_ran_on():
    rows = [make_row("prompt", "0-shot", 0.5), make_row("lora", "r8", 0.7)]
    for row, host in zip(rows, ("node-a", "node-b"), strict=True):
        record = row.stored.record
        assert record.meta_info is not None
        record.meta_info = dataclasses.replace(record.meta_info, executor="ray", node=f"id-{host}", host=host)
    pricing = make_results(rows)
    pricing.comparison.options.executor = "ray"
    html = render(analyse(pricing))
    assert "<dt>executor</dt><dd>ray — runs on 2 hosts: node-a, node-b (Ray tasks in parallel" in html
