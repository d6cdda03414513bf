"""Two `hayase run` processes with the same SQL share the join queries through their consumer
groups; one is SIGKILLed mid-stream and the other takes its partitions over (restoring their
join state from the changelog). Every expected joined row is in the output; repeats of rows
emitted just before the crash are allowed, missing or unexpected rows are not. Both backends.

Queries: impressions JOIN clicks WITHIN 1 HOUR (co-partitioned by impression id), and
impressions enriched with the campaigns table (the impressions are repartitioned by campaign).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from tests.engine.scaleout import produce, stop_and_read_log, stop_run, wait_until

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



def _read(bootstrap: str, topic: str) -> list[tuple[str, dict]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chk-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        ends: dict[int, tuple[int, int]] = {}
        for p in range(PARTITIONS):
            try:
                ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            except KafkaException:
                return []
        todo = {p for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in todo])
        out: list[tuple[str, dict]] = []
        while todo:
            msg = consumer.poll(1.0)
            if msg is None or msg.error() is not None:
                continue
            out.append((msg.key().decode(), json.loads(msg.value())))
            if msg.offset() + 1 >= ends[msg.partition()][1]:
                todo.discard(msg.partition())
        return out
    finally:
        consumer.close()


def _committed_all(bootstrap: str, group: str, topic: str) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        try:
            committed = consumer.committed(tps, timeout=10)
        except KafkaException:  # the group coordinator is still loading
            return False
        for tp in committed:
            high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition),
                                                  timeout=10)[1]
            if high and tp.offset < high:
                return False
        return True
    finally:
        consumer.close()


def _log(state: Path) -> Path:
    return state.with_name(state.name + ".log")


def _start(sql: Path, bootstrap: str, service: str, state: Path) -> subprocess.Popen:
    """`hayase run`, its output in ``_log(state)``."""
    with _log(state).open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "hayase", "run", str(sql), "--bootstrap-servers", bootstrap,
             "-p", f"ksql.service.id={service}", "-p", f"ksql.streams.state.dir={state}"],
            stdout=log, stderr=subprocess.STDOUT)



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
        wait_until(lambda: _committed_all(bootstrap, enrich_group, t["campaigns"]),
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
        wait_until(lambda: len(_read(bootstrap, t["enriched"])) >= half // 3,
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
        got_clicked: set = set()
        got_enriched: set = set()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and procs[1].poll() is None:
            got_clicked = {(k, v["CAMPAIGN"], v["POS"]) for k, v in
                           _read(bootstrap, t["clicked"])}
            got_enriched = {(k, v["IMPRESSION"], v["ADVERTISER"]) for k, v in
                            _read(bootstrap, t["enriched"])}
            if got_clicked >= want_clicked and got_enriched >= want_enriched:
                break
            time.sleep(1)
    finally:
        for i, p in enumerate(procs):
            outputs.append(stop_and_read_log(p, _log(tmp_path / f"state{i}")))
    log = "\n---\n".join(o[-3000:] for o in outputs)
    assert got_clicked == want_clicked, log
    assert got_enriched == want_enriched, log
