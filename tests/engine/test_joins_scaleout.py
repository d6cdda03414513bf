"""Two `hayase run` processes with the same SQL share the join queries through their consumer
groups; one is SIGKILLed mid-stream and the other takes its partitions over (restoring their
join state from the changelog). Every expected joined row is in the output; repeats of rows
emitted just before the crash are allowed, missing or unexpected rows are not. Both backends.

Queries: impressions JOIN clicks WITHIN 1 HOUR (co-partitioned by impression id), and
impressions enriched with the campaigns table (the impressions are repartitioned by campaign).
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.engine.scaleout import (
    committed_to_end,
    log_beside,
    poll_until,
    produce,
    read_records,
    start_run,
    stop_and_read_log,
    stop_run,
    wait_until,
)

from hayase.client.admin import Admin
from hayase.engine.runtime import group_id
from hayase.testing.brokers import ApacheBackend

pytestmark = pytest.mark.integration

PARTITIONS = 3
IMPRESSIONS = 3000
CAMPAIGNS = 20
BASE_TS = int(time.time() * 1000)  # recent: Apache Kafka's retention keeps them


def _clicked(i: int) -> bool:
    return i % 7 == 0



def _start(sql: Path, bootstrap: str, service: str, state: Path) -> subprocess.Popen:
    """`hayase run`, its output in ``log_beside(state)``."""
    return start_run(sql, bootstrap, service, state, log_beside(state))


def test_two_processes_share_joins_and_survive_a_sigkill(kafka, topic_name,
                                                          tmp_path: Path) -> None:
    _scenario(kafka.bootstrap_servers, topic_name, tmp_path)


def test_three_node_cluster_loses_a_broker_and_a_process(kafka3: ApacheBackend, topic_name,
                                                        tmp_path: Path) -> None:
    """Replication factor 3 everywhere; one Kafka broker is stopped while the surviving
    hayase process takes over, and started again before the end."""
    cluster = kafka3.cluster

    def broker_down() -> None:
        cluster.stop_node(1)

    def broker_up() -> None:
        cluster.start_node(1)

    _scenario(kafka3.bootstrap_servers, topic_name, tmp_path, replicas=3,
              after_kill=broker_down, before_check=broker_up)


def _scenario(bootstrap: str, topic_name: str, tmp_path: Path, replicas: int = 1,
              after_kill: Callable[[], None] | None = None,
              before_check: Callable[[], None] | None = None) -> None:
    t = {name: f"{topic_name}-{name}" for name in
         ("impressions", "clicks", "campaigns", "clicked", "enriched")}
    admin = Admin({"bootstrap.servers": bootstrap})
    for name in ("impressions", "clicks", "campaigns"):
        admin.create_topic(t[name], partitions=PARTITIONS, replication_factor=replicas)
    sql = tmp_path / "joins.sql"
    sql.write_text(
        f"SET 'ksql.internal.topic.replicas' = '{replicas}';\n"
        f"CREATE STREAM IMPRESSIONS (ID STRING KEY, CAMPAIGN STRING) WITH "
        f"(kafka_topic='{t['impressions']}', key_format='KAFKA', value_format='JSON');\n"
        f"CREATE STREAM CLICKS (ID STRING KEY, POS INT) WITH "
        f"(kafka_topic='{t['clicks']}', key_format='KAFKA', value_format='JSON');\n"
        f"CREATE TABLE CAMPAIGNS (CAMPAIGN STRING PRIMARY KEY, ADVERTISER STRING) WITH "
        f"(kafka_topic='{t['campaigns']}', key_format='KAFKA', value_format='JSON');\n"
        f"CREATE STREAM CLICKED WITH (kafka_topic='{t['clicked']}', replicas={replicas}) AS "
        f"SELECT I.ID, I.CAMPAIGN, POS FROM IMPRESSIONS I JOIN CLICKS C WITHIN 1 HOUR "
        f"ON I.ID = C.ID;\n"
        f"CREATE STREAM ENRICHED WITH (kafka_topic='{t['enriched']}', replicas={replicas}) AS "
        f"SELECT C.CAMPAIGN, I.ID AS IMPRESSION, ADVERTISER FROM IMPRESSIONS I "
        f"JOIN CAMPAIGNS C ON I.CAMPAIGN = C.CAMPAIGN;\n")
    produce(bootstrap, t["campaigns"],
             [(f"camp{c}", {"ADVERTISER": f"adv{c}"}, BASE_TS) for c in range(CAMPAIGNS)])
    service = f"j{uuid.uuid4().hex[:8]}_"
    procs = [_start(sql, bootstrap, service, tmp_path / f"state{i}") for i in range(2)]
    outputs: list[str] = []
    try:
        # The table is loaded before any impression arrives (the runtime does not order
        # records by timestamp across topics, as Kafka Streams' task idling would).
        enrich_group = group_id(service, "CSAS_ENRICHED_1")
        wait_until(lambda: committed_to_end(bootstrap, enrich_group, t["campaigns"], PARTITIONS),
                   "the campaigns table to be loaded")
        half = IMPRESSIONS // 2

        def impressions(lo: int, hi: int) -> list[tuple[str, dict | None, int]]:
            return [(f"imp{i}", {"CAMPAIGN": f"camp{i % CAMPAIGNS}"}, BASE_TS + i)
                    for i in range(lo, hi)]

        def clicks(lo: int, hi: int) -> list[tuple[str, dict | None, int]]:
            return [(f"imp{i}", {"POS": i % 5}, BASE_TS + i + 10)
                    for i in range(lo, hi) if _clicked(i)]

        produce(bootstrap, t["impressions"], impressions(0, half))
        produce(bootstrap, t["clicks"], clicks(0, half // 2))
        wait_until(lambda: len(read_records(bootstrap, t["enriched"], PARTITIONS)) >= half // 3,
                   "a third of the first impressions enriched")
        stop_run(procs[0], signal.SIGKILL)  # mid-stream
        if after_kill is not None:
            after_kill()
        # The rest arrives while the survivor takes the killed process' partitions over;
        # clicks of impressions seen before the crash need the restored window state.
        produce(bootstrap, t["clicks"], clicks(half // 2, half))
        produce(bootstrap, t["impressions"], impressions(half, IMPRESSIONS))
        produce(bootstrap, t["clicks"], clicks(half, IMPRESSIONS))

        want_clicked = {(f"imp{i}", f"camp{i % CAMPAIGNS}", i % 5)
                        for i in range(IMPRESSIONS) if _clicked(i)}
        want_enriched = {(f"camp{i % CAMPAIGNS}", f"imp{i}", f"adv{i % CAMPAIGNS}")
                         for i in range(IMPRESSIONS)}
        if before_check is not None:
            before_check()

        def outputs_read() -> tuple[set, set]:
            clicked = {(k, v["CAMPAIGN"], v["POS"]) for k, v in
                       read_records(bootstrap, t["clicked"], PARTITIONS) if v is not None}
            enriched = {(k, v["IMPRESSION"], v["ADVERTISER"]) for k, v in
                        read_records(bootstrap, t["enriched"], PARTITIONS) if v is not None}
            return clicked, enriched

        got_clicked, got_enriched = poll_until(
            outputs_read, lambda got: got[0] >= want_clicked and got[1] >= want_enriched,
            lambda: procs[1].poll() is None, seconds=240)
    finally:
        for i, p in enumerate(procs):
            outputs.append(stop_and_read_log(p, log_beside(tmp_path / f"state{i}")))
    log = "\n---\n".join(o[-3000:] for o in outputs)
    assert got_clicked == want_clicked, log
    assert got_enriched == want_enriched, log
