"""A foreign-key table-table join over multi-partition tables (the same count on both sides,
and different counts: the right table and the registrations then run as a sub-topology of
their own, Kafka Streams' tasks (sub-topology, partition)) in two `hayase run` processes: the
subscriptions and answers travel through the subscription-registration and -response topics;
one process is SIGKILLed mid-stream and the survivor takes its tasks over (state restored from
the changelog). The output table (last record per key) must be exactly the join of the final
input tables. Both backends; and (slow) a three-node Apache Kafka cluster with replication
factor 3 that also loses a broker while the survivor takes over."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.engine.scaleout import (
    log_beside,
    poll_until,
    produce,
    read_table,
    start_run,
    stop_and_read_log,
    stop_run,
    wait_until,
)

from hayase.client.admin import Admin
from hayase.testing.brokers import ApacheBackend

pytestmark = pytest.mark.integration

ORDERS = 600
CUSTOMERS = 30
BASE_TS = int(time.time() * 1000)


def _produce(bootstrap: str, topic: str, records: list[tuple[str, dict | None]]) -> None:
    produce(bootstrap, topic, [(key, value, BASE_TS + i) for i, (key, value) in enumerate(records)])


def _start(sql: Path, bootstrap: str, service: str, state: Path) -> subprocess.Popen:
    """`hayase run`, its output in ``log_beside(state)``."""
    return start_run(sql, bootstrap, service, state, log_beside(state),
                     "ksql.streams.commit.interval.ms=300")



# (orders partitions, customers partitions); with 2 members the range assignor gives orders
# partition 1 to one member and customers partition 1 to the other in the (2, 5) case.
@pytest.mark.parametrize("counts", [(3, 3), (2, 5)], ids=["3-3", "2-5"])
def test_fk_join_over_partitions_survives_a_sigkill(kafka, topic_name, tmp_path: Path,
                                                    counts: tuple[int, int]) -> None:
    _scenario(kafka.bootstrap_servers, topic_name, tmp_path, counts)


@pytest.mark.slow
def test_fk_join_of_different_counts_on_three_nodes_loses_a_broker_and_a_process(
        kafka3: ApacheBackend, topic_name, tmp_path: Path) -> None:
    cluster = kafka3.cluster
    _scenario(kafka3.bootstrap_servers, topic_name, tmp_path, (2, 5), replicas=3,
              after_kill=lambda: cluster.stop_node(1),
              before_check=lambda: cluster.start_node(1))


def _scenario(bootstrap: str, topic_name: str, tmp_path: Path, counts: tuple[int, int],
              replicas: int = 1, after_kill: Callable[[], None] | None = None,
              before_check: Callable[[], None] | None = None) -> None:
    t = {name: f"{topic_name}-{name}" for name in ("orders", "customers", "enriched")}
    admin = Admin({"bootstrap.servers": bootstrap})
    for name, n in zip(("orders", "customers"), counts, strict=True):
        admin.create_topic(t[name], partitions=n, replication_factor=replicas)
    sink_partitions = counts[0]  # sized like the left table
    sql = tmp_path / "fk.sql"
    sql.write_text(
        f"SET 'ksql.internal.topic.replicas' = '{replicas}';\n"
        f"CREATE TABLE ORDERS (ID STRING PRIMARY KEY, CUSTOMER STRING, AMOUNT INT) WITH "
        f"(kafka_topic='{t['orders']}', key_format='KAFKA', value_format='JSON');\n"
        f"CREATE TABLE CUSTOMERS (ID STRING PRIMARY KEY, NAME STRING) WITH "
        f"(kafka_topic='{t['customers']}', key_format='KAFKA', value_format='JSON');\n"
        f"CREATE TABLE ENRICHED WITH (kafka_topic='{t['enriched']}') AS "
        f"SELECT O.ID, CUSTOMER, AMOUNT, NAME FROM ORDERS O "
        f"JOIN CUSTOMERS C ON O.CUSTOMER = C.ID;\n")
    orders: dict[str, tuple[str, int]] = {}
    customers: dict[str, str] = {}

    def order(i: int, cust: int, amount: int) -> tuple[str, dict]:
        orders[f"o{i}"] = (f"c{cust}", amount)
        return f"o{i}", {"CUSTOMER": f"c{cust}", "AMOUNT": amount}

    def customer(c: int, name: str) -> tuple[str, dict]:
        customers[f"c{c}"] = name
        return f"c{c}", {"NAME": name}

    service = f"fk{uuid.uuid4().hex[:8]}_"
    procs = [_start(sql, bootstrap, service, tmp_path / f"state{i}") for i in range(2)]
    outputs: list[str] = []
    got: dict[str, dict] = {}
    try:
        _produce(bootstrap, t["customers"], [customer(c, f"name{c}") for c in range(CUSTOMERS)])
        half = ORDERS // 2
        _produce(bootstrap, t["orders"], [order(i, i % CUSTOMERS, i) for i in range(half)])
        wait_until(lambda: len(read_table(bootstrap, t["enriched"], sink_partitions)) >= half // 3,
                   "a third of the first orders joined")
        stop_run(procs[0], signal.SIGKILL)  # mid-stream
        if after_kill is not None:
            after_kill()
        # While the survivor takes over: customers renamed (answers to every subscriber),
        # orders moved to another customer (unsubscribe + subscribe), deleted, added; some
        # customers deleted (inner join: their orders leave the table).
        _produce(bootstrap, t["customers"],
                 [customer(c, f"renamed{c}") for c in range(0, CUSTOMERS, 2)])
        _produce(bootstrap, t["orders"],
                 [order(i, (i + 7) % CUSTOMERS, -i) for i in range(0, half, 3)] +
                 [order(i, i % CUSTOMERS, i) for i in range(half, ORDERS)])
        deleted = [f"o{i}" for i in range(1, ORDERS, 10)]
        for key in deleted:
            orders.pop(key)
        _produce(bootstrap, t["orders"], [(key, None) for key in deleted])
        gone = [f"c{c}" for c in range(1, CUSTOMERS, 5)]
        for key in gone:
            customers.pop(key)
        _produce(bootstrap, t["customers"], [(key, None) for key in gone])
        want = {oid: {"CUSTOMER": cust, "AMOUNT": amount, "NAME": customers[cust]}
                for oid, (cust, amount) in orders.items() if cust in customers}
        if before_check is not None:
            before_check()
        got = poll_until(lambda: read_table(bootstrap, t["enriched"], sink_partitions),
                         lambda table: table == want, lambda: procs[1].poll() is None)
    finally:
        for i, p in enumerate(procs):
            outputs.append(stop_and_read_log(p, log_beside(tmp_path / f"state{i}")))
    log = "\n---\n".join(o[-3000:] for o in outputs)
    missing = sorted(set(want) - set(got))[:10]
    wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])[:10]
    extra = sorted(set(got) - set(want))[:10]
    assert got == want, f"missing {missing} wrong {wrong} extra {extra}\n{log}"
