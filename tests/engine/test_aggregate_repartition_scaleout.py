"""Two `hayase run` processes with the same SQL share GROUP BYs on non-key columns of
3-partition sources (through the -Aggregate-GroupBy-repartition topics); one is SIGKILLed
mid-stream, the other takes its tasks over from the changelogs, and the final tables equal the
exact answer: no record lost, none counted twice. A stream source, and a table source whose
updates move rows between groups (retracted in one partition, added in another). Both
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
from hayase.sql import Session  # type: ignore[attr-defined]
from hayase.sql.plan import QueryPlan

pytestmark = pytest.mark.integration

PARTITIONS = 3
BASE_TS = int(time.time() * 1000)  # recent: Apache Kafka's retention keeps them
EVENTS = 4000  # stream records per batch (four batches)
UPDATES = 600  # table records per batch
USERS, REGIONS = 40, 7


def _event(i: int) -> tuple[str, dict | None, int]:
    # Key k<i % 50>; group G spreads every key over every group, so each group's rows come
    # from every source partition.
    return f"k{i % 50}", {"V": i, "G": f"g{(i // 50) % 13}"}, BASE_TS + i


def _update(j: int) -> tuple[str, dict | None, int]:
    if j % 11 == 10:
        return f"u{j % USERS}", None, BASE_TS + j  # the user is deleted
    return f"u{j % USERS}", {"REGION": f"r{(j * 3 + j // USERS) % REGIONS}", "SCORE": j}, \
        BASE_TS + j


def _expected_events(n: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i in range(n):
        _k, value, _ts = _event(i)
        assert value is not None
        row = out.setdefault(value["G"], {"N": 0, "TOTAL": 0})
        row["N"] += 1
        row["TOTAL"] += i
    return out


def _expected_regions(n: int) -> dict[str, dict]:
    """Per region: sum and count of the users' latest rows; a region every user left stays
    with zeros (the aggregate retracted to empty)."""
    latest: dict[str, dict | None] = {}
    seen: set[str] = set()
    for j in range(n):
        user, value, _ts = _update(j)
        latest[user] = value
        if value is not None:
            seen.add(value["REGION"])
    out = {r: {"S": 0, "N": 0} for r in seen}
    for value in latest.values():
        if value is not None:
            out[value["REGION"]]["S"] += value["SCORE"]
            out[value["REGION"]]["N"] += 1
    return out


def test_two_processes_share_non_key_group_by_and_survive_a_sigkill(
        kafka, topic_name, tmp_path: Path) -> None:
    bootstrap = kafka.bootstrap_servers
    t = {n: f"{topic_name}-{n}" for n in ("events", "users", "by_g", "by_region")}
    admin = Admin({"bootstrap.servers": bootstrap})
    for n in ("events", "users"):
        admin.create_topic(t[n], partitions=PARTITIONS)
    sql_text = (
        f"CREATE STREAM EVENTS (ID STRING KEY, V BIGINT, G STRING) WITH "
        f"(kafka_topic='{t['events']}', key_format='KAFKA', value_format='JSON');\n"
        f"CREATE TABLE USERS (ID STRING PRIMARY KEY, REGION STRING, SCORE BIGINT) WITH "
        f"(kafka_topic='{t['users']}', key_format='KAFKA', value_format='JSON');\n"
        f"CREATE TABLE BY_G WITH (kafka_topic='{t['by_g']}', key_format='KAFKA') AS "
        f"SELECT G, COUNT(*) AS N, SUM(V) AS TOTAL FROM EVENTS GROUP BY G;\n"
        f"CREATE TABLE BY_REGION WITH (kafka_topic='{t['by_region']}', key_format='KAFKA') AS "
        f"SELECT REGION, SUM(SCORE) AS S, COUNT(*) AS N FROM USERS GROUP BY REGION;\n")
    sql = tmp_path / "agg.sql"
    sql.write_text(sql_text)
    query_ids = [r.query_id for r in Session({}).execute(sql_text) if isinstance(r, QueryPlan)]
    service = f"r{uuid.uuid4().hex[:8]}_"
    logs = [tmp_path / f"run{i}.log" for i in range(2)]

    def batch(n: int) -> None:
        produce(bootstrap, t["events"], [_event(i) for i in range(n * EVENTS,
                                                                   (n + 1) * EVENTS)])
        produce(bootstrap, t["users"], [_update(j) for j in range(n * UPDATES,
                                                                   (n + 1) * UPDATES)])

    def log_has(i: int, text: str) -> bool:
        return text in logs[i].read_text(errors="replace")

    batch(0)
    procs = [start_run(sql, bootstrap, service, tmp_path / f"state{i}", logs[i],
                       "ksql.streams.repartition.purge.interval.ms=500")
             for i in range(2)]
    tables: dict[str, dict] = {}
    try:
        wait_until(lambda: log_has(0, "state ready") and log_has(1, "state ready"),
                   "both processes to have tasks")
        shared = [log_has(i, "state ready") for i in range(2)]  # both have tasks
        batch(1)
        groups = [(group_id(service, q), t[src]) for q, src in zip(query_ids,
                                                                   ("events", "users"), strict=True)]
        # Both processes committed state for their tasks, up to the end of the sources and of
        # the repartition topics (the aggregation side): the changelogs hold it, so the
        # survivor certainly restores the killed process' tasks from them.
        groups += [(g, f"{g}-Aggregate-GroupBy-repartition") for g, _src in groups]
        wait_until(lambda: all(committed_to_end(bootstrap, g, topic, PARTITIONS)
                               for g, topic in groups), "commits up to batch 1")
        batch(2)
        stop_run(procs[0], signal.SIGKILL)  # mid-stream: batch 2 is being processed
        batch(3)
        want = {"by_g": _expected_events(4 * EVENTS),
                "by_region": _expected_regions(4 * UPDATES)}
        tables = poll_until(lambda: {n: read_table(bootstrap, t[n], PARTITIONS) for n in want},
                            lambda got: got == want, lambda: procs[1].poll() is None)
    finally:
        for p in procs:
            stop_run(p, signal.SIGTERM)
    out = [log.read_text(errors="replace") for log in logs]
    detail = "\n---\n".join(o[-3000:] for o in out)
    assert all(shared), detail
    assert tables == want, detail
    assert "restoring partition" in out[1], detail  # the survivor restored the dead one's
    # Consumed repartition records were purged (DeleteRecords up to the committed offsets).
    rep = f"{group_id(service, query_ids[0])}-Aggregate-GroupBy-repartition"
    starts = Admin({"bootstrap.servers": bootstrap}).offsets(rep, list(range(PARTITIONS)))
    assert any(low > 0 for low, _high in starts.values()), starts
