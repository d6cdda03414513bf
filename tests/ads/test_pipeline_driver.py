"""The ads pipeline in the test driver (no broker) against the plain-Python batch results."""

from __future__ import annotations

import orjson

from hayase.ads import batch, generator, pipeline_sql, results
from hayase.testing.driver import TestDriver


def _run(cfg: generator.GeneratorConfig, impressions: int) -> tuple[batch.Expected, results.Actual]:
    events = generator.bounded(cfg, impressions)
    driver = TestDriver()
    driver.execute(pipeline_sql())
    for e in events:
        if e.topic != generator.APP_EVENTS:
            driver.pipe(e.topic, e.key.encode(), orjson.dumps(e.value), e.timestamp)
    records = [(t, r.key, r.value) for t in results.SINK_TOPICS for r in driver.output(t)]
    return batch.compute(events), results.fold(records)


def test_pipeline_matches_batch_exactly() -> None:
    expected, actual = _run(generator.GeneratorConfig(seed=3, rate=20.0, budget_horizon=1500),
                            1500)
    findings = results.compare(expected, actual)
    assert [f.differences for f in findings] == [[]] * len(findings)
    # The data exercises every rule: duplicates, clicks outside the window, alerts, windows.
    assert expected.duplicates > 0 and expected.outside_window > 0
    assert 0 < len(expected.alerts) < len(expected.spend)
    assert len({start for _, start in expected.ctr}) > 1


def test_compare_reports_a_difference() -> None:
    expected, actual = _run(generator.GeneratorConfig(seed=4, budget_horizon=500), 500)
    some = next(iter(actual.spend))
    name, spend, clicks, budget = actual.spend[some]
    actual.spend[some] = (name, spend + 1, clicks, budget)
    actual.attributed[next(iter(actual.attributed))] += 1
    bad = {f.name for f in results.compare(expected, actual) if not f.ok}
    assert bad == {"spend per campaign vs budget", "attributed clicks"}


def test_generator_is_deterministic() -> None:
    cfg = generator.GeneratorConfig(seed=11)
    assert generator.bounded(cfg, 300) == generator.bounded(cfg, 300)
    sends = [e.send_ms for e in generator.events(cfg, 300)]
    assert sends == sorted(sends)
