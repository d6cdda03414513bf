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

import re
from pathlib import Path

PIPELINE_SQL = Path(__file__).with_name("pipeline.sql")
# A statement that creates its topic: a C*AS, or a declaration that gives PARTITIONS.
_CREATES_TOPIC = re.compile(r"\bAS\s+SELECT\b|\bPARTITIONS\s*=", re.IGNORECASE)


def pipeline_sql(prefix: str = "", replicas: int | None = None) -> str:
    """The pipeline's statements; ``prefix`` is put before every topic name (a run of the check
    mode gets topics of its own). ``replicas``: the REPLICAS of every topic the statements
    create (ksqlDB's WITH property); declarations of topics that exist already are left as
    they are (restating their replication factor would have to match it)."""
    text = PIPELINE_SQL.read_text(encoding="utf-8")
    if prefix:
        text = text.replace("KAFKA_TOPIC='", f"KAFKA_TOPIC='{prefix}")
    if replicas is not None:
        text = ";".join(_with_replicas(s, replicas) for s in text.split(";"))
    return text


def _with_replicas(statement: str, replicas: int) -> str:
    code = "\n".join(line for line in statement.splitlines()
                     if not line.lstrip().startswith("--"))
    if not _CREATES_TOPIC.search(code):
        return statement
    return statement.replace("WITH (KAFKA_TOPIC=", f"WITH (REPLICAS={replicas}, KAFKA_TOPIC=", 1)
