"""GROUP BY over a JOIN of 3-partition topics in `hayase run`: the joined rows go through
ksqlDB's -Aggregate-GroupBy-repartition topic to the task of their group. Two processes share
the query; one is SIGKILLed mid-stream, the other takes its tasks over from the changelog, and
the final table equals the exact answer (no joined row lost, none counted twice). Both
backends."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest
from tests.engine.scaleout import (
    committed_to_end,
    poll_until,
    produce,
    read_table,
    start_run,
    stop_run,
    wait_until,
)

from hayase.client.admin import Admin
from hayase.engine.runtime import group_id

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~40 s per backend

PARTITIONS = 3
BASE_TS = int(time.time() * 1000) - 60_000  # recent: Apache Kafka's retention keeps them
EVENTS = 1500  # per batch (four batches)
USERS, REGIONS = 30, 7
QUERY_ID = "CTAS_BY_REGION_0"


def _region(u: int) -> str:
    return f"r{(u * 3) % REGIONS}"


def _event(i: int) -> tuple[str, dict, int]:
    return f"u{i % USERS}", {"V": i}, BASE_TS + 1000 + i


def _expected(n: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i in range(n):
        user, value, _ts = _event(i)
        row = out.setdefault(_region(int(user[1:])), {"N": 0, "TOTAL": 0})
        row["N"] += 1
        row["TOTAL"] += value["V"]
    return out


def test_two_processes_share_a_group_by_over_a_join_and_survive_a_sigkill(
        kafka, topic_name, tmp_path: Path) -> None:
    bootstrap = kafka.bootstrap_servers
    t = {n: f"{topic_name}-{n}" for n in ("events", "users", "by_region")}
    admin = Admin({"bootstrap.servers": bootstrap})
    for n in ("events", "users"):
        admin.create_topic(t[n], partitions=PARTITIONS)
    sql = tmp_path / "join_agg.sql"
    sql.write_text(
        f"CREATE STREAM EVENTS (ID STRING KEY, V BIGINT) WITH (kafka_topic='{t['events']}', "
        "key_format='KAFKA', value_format='JSON');\n"
        f"CREATE TABLE USERS (ID STRING PRIMARY KEY, REGION STRING) WITH "
        f"(kafka_topic='{t['users']}', key_format='KAFKA', value_format='JSON');\n"
        f"CREATE TABLE BY_REGION WITH (kafka_topic='{t['by_region']}', key_format='KAFKA') AS "
        "SELECT U.REGION AS REGION, COUNT(*) AS N, SUM(E.V) AS TOTAL FROM EVENTS E "
        "JOIN USERS U ON E.ID = U.ID GROUP BY U.REGION;\n")
    # The users are older than every event: each event finds its user.
    produce(bootstrap, t["users"], [(f"u{u}", {"REGION": _region(u)}, BASE_TS)
                                     for u in range(USERS)])
    service = f"r{uuid.uuid4().hex[:8]}_"
    logs = [tmp_path / f"run{i}.log" for i in range(2)]

    def batch(n: int) -> None:
        produce(bootstrap, t["events"], [_event(i) for i in range(n * EVENTS,
                                                                   (n + 1) * EVENTS)])

    def log_has(i: int, text: str) -> bool:
        return text in logs[i].read_text(errors="replace")

    batch(0)
    procs = [start_run(sql, bootstrap, service, tmp_path / f"state{i}", logs[i])
             for i in range(2)]
    table: dict[str, dict] = {}
    want = _expected(4 * EVENTS)
    try:
        wait_until(lambda: log_has(0, "state ready") and log_has(1, "state ready"),
                   "both processes to have tasks")
        shared = [log_has(i, "state ready") for i in range(2)]  # both have tasks
        batch(1)
        # Both processes committed state for their tasks: the changelog holds it.
        group = group_id(service, QUERY_ID)
        wait_until(lambda: all(committed_to_end(bootstrap, group, topic, PARTITIONS) for topic in
                               (t["events"], f"{group}-Aggregate-GroupBy-repartition")),
                   "commits up to batch 1")
        batch(2)
        stop_run(procs[0], signal.SIGKILL)  # mid-stream: batch 2 is being processed
        batch(3)
        table = poll_until(lambda: read_table(bootstrap, t["by_region"], PARTITIONS),
                           lambda got: got == want, lambda: procs[1].poll() is None)
    finally:
        for p in procs:
            stop_run(p, signal.SIGTERM)
    out = [log.read_text(errors="replace") for log in logs]
    detail = "\n---\n".join(o[-3000:] for o in out)
    assert all(shared), detail
    assert table == want, detail
    assert "restoring partition" in out[1], detail  # the survivor restored the dead one's
    rep = f"{group_id(service, QUERY_ID)}-Aggregate-GroupBy-repartition"
    assert rep in {s.name for s in admin.list_topics()}
