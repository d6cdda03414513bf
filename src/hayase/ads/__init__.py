"""The ads platform (issue 10): hayase's main job, small enough for a laptop.

- :mod:`hayase.ads.generator`: seeded impressions, clicks, app events, campaign master data;
- ``pipeline.sql``: attribution join, CTR per minute, spend against budget with alerts, top ads;
- :mod:`hayase.ads.batch`: the same results in plain Python (what the check mode compares);
- :mod:`hayase.ads.results`: the sink topics folded into final results, and the comparison;
- :mod:`hayase.ads.producer`: sends generated events to Kafka (bounded or paced);
- :mod:`hayase.ads.check`: ``hayase demo --check``: the pipeline on a broker vs the batch;
- :mod:`hayase.ads.segments`: the segment updater (ParallelConsumer + Redis);
- :mod:`hayase.ads.app`: ``hayase demo``, everything together with a dashboard.
"""

from pathlib import Path

PIPELINE_SQL = Path(__file__).with_name("pipeline.sql")


def pipeline_sql(prefix: str = "") -> str:
    """The pipeline's statements; ``prefix`` is put before every topic name (a run of the check
    mode gets topics of its own)."""
    text = PIPELINE_SQL.read_text(encoding="utf-8")
    return text.replace("KAFKA_TOPIC='", f"KAFKA_TOPIC='{prefix}") if prefix else text
