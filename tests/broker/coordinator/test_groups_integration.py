"""Consumer groups with real clients (confluent-kafka / librdkafka), against every backend.

No timing assertions: each wait is for a condition, with a generous bound that only turns a
hang into a failure.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from hayase.client.admin import Admin
from hayase.testing.brokers import Backend, EmbeddedBroker

pytestmark = pytest.mark.integration

PROCESS = Path(__file__).with_name("group_consumer_process.py")
WAIT_S = 120


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S,
             step: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if step is not None:
            step()
        if condition():
            return
        if step is None:
            time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    Admin({"bootstrap.servers": bootstrap}, 30).create_topic(topic, partitions,
                                                             wait_for_leaders=True)


def produce(bootstrap: str, topic: str, count: int, start: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    assert producer.flush(30) == 0


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        c.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


@pytest.fixture
def group_id() -> str:
    return f"g-{uuid.uuid4().hex[:10]}"


# -- in-process members --------------------------------------------------------------------------


class Member:
    """A confluent-kafka consumer polled by the test thread; tracks its assignment."""

    def __init__(self, bootstrap: str, group: str, topic: str, strategy: str = "range",
                 **extra: str | int) -> None:
        config: dict[str, str | int] = {
            "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500, "partition.assignment.strategy": strategy,
        }
        config.update(extra)
        self.consumer = Consumer(config)
        self.cooperative = strategy == "cooperative-sticky"
        self.assigned: set[int] = set()
        self.history: list[tuple[str, frozenset[int]]] = []
        self.records: list[tuple[int, int]] = []
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, c: Consumer, parts: list[TopicPartition]) -> None:
        got = {p.partition for p in parts}
        self.history.append(("assign", frozenset(got)))
        self.assigned = self.assigned | got if self.cooperative else got

    def _on_revoke(self, c: Consumer, parts: list[TopicPartition]) -> None:
        lost = {p.partition for p in parts}
        self.history.append(("revoke", frozenset(lost)))
        if parts and not self.cooperative:
            with contextlib.suppress(KafkaException):  # _NO_OFFSET: nothing new to commit
                c.commit(asynchronous=False)  # eager: hand over exactly where we are
        self.assigned -= lost

    def poll(self) -> None:
        msg = self.consumer.poll(0.05)
        if msg is not None and not msg.error():
            self.records.append((msg.partition(), msg.offset()))
            self.consumer.commit(message=msg, asynchronous=True)

    def close(self) -> None:
        self.consumer.close()


def poll_all(members: list[Member]) -> Callable[[], None]:
    def step() -> None:
        for m in members:
            m.poll()
    return step


def assignments_settle(members: list[Member], partitions: int) -> Callable[[], bool]:
    def settled() -> bool:
        owned = [p for m in members for p in m.assigned]
        return sorted(owned) == list(range(partitions)) and all(m.assigned for m in members)
    return settled


def test_members_join_and_leave_partitions_move(kafka: Backend, topic_name: str,
                                                group_id: str) -> None:
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name, 6)
    produce(bs, topic_name, 300)
    members = [Member(bs, group_id, topic_name) for _ in range(2)]
    try:
        step = poll_all(members)
        wait_for(assignments_settle(members, 6), "two members to share six partitions",
                 step=step)
        members.append(Member(bs, group_id, topic_name))
        step = poll_all(members)
        wait_for(lambda: assignments_settle(members, 6)() and
                 sorted(len(m.assigned) for m in members) == [2, 2, 2],
                 "three members with two partitions each", step=step)
        wait_for(lambda: len({r for m in members for r in m.records}) >= 300,
                 "all 300 records", step=step)
        leaving = members.pop(0)
        with contextlib.suppress(KafkaException):
            leaving.consumer.commit(asynchronous=False)
        leaving.close()  # LeaveGroup: the others take over without waiting for a session timeout
        wait_for(assignments_settle(members, 6), "the two remaining members to own all six",
                 step=poll_all(members))
        produce(bs, topic_name, 60, start=300)
        everything = leaving.records + [r for m in members for r in m.records]
        wait_for(lambda: len({r for m in members for r in m.records} | set(leaving.records))
                 >= 360, "the 60 new records", step=poll_all(members))
        everything = leaving.records + [r for m in members for r in m.records]
        assert len(set(everything)) == 360
    finally:
        for m in members:
            m.close()


def test_cooperative_sticky_join_moves_only_the_partitions_it_takes(
        kafka: Backend, topic_name: str, group_id: str) -> None:
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name, 6)
    members = [Member(bs, group_id, topic_name, "cooperative-sticky") for _ in range(2)]
    try:
        wait_for(lambda: sorted(len(m.assigned) for m in members) == [3, 3],
                 "two cooperative members with three partitions each", step=poll_all(members))
        before = [set(m.assigned) for m in members]
        for m in members:
            m.history.clear()
        newcomer = Member(bs, group_id, topic_name, "cooperative-sticky")
        members.append(newcomer)
        wait_for(lambda: sorted(len(m.assigned) for m in members) == [2, 2, 2]
                 and assignments_settle(members, 6)(),
                 "three cooperative members with two partitions each", step=poll_all(members))
        for old, owned in zip(members[:2], before, strict=True):
            revoked = {p for kind, ps in old.history if kind == "revoke" for p in ps}
            # Only what the newcomer took was revoked; the rest never stopped being consumed.
            assert revoked <= newcomer.assigned
            assert owned - revoked == old.assigned
            assert len(revoked) == 1
    finally:
        for m in members:
            m.close()


def test_static_member_restart_within_session_keeps_partitions_without_rebalance(
        kafka: Backend, topic_name: str, group_id: str) -> None:
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name, 4)
    static = {"group.instance.id": "instance-a", "session.timeout.ms": 30000}
    a = Member(bs, group_id, topic_name, **static)
    b = Member(bs, group_id, topic_name, **{"group.instance.id": "instance-b"})
    members = [a, b]
    try:
        wait_for(lambda: sorted(len(m.assigned) for m in members) == [2, 2],
                 "two static members", step=poll_all(members))
        owned_by_a = set(a.assigned)
        b.history.clear()
        a.close()  # a static member does not send LeaveGroup on close
        a = Member(bs, group_id, topic_name, **static)
        members = [a, b]
        wait_for(lambda: a.assigned == owned_by_a, "the restarted member to get its partitions",
                 step=poll_all(members))
        # A few more rounds: b must not have been through a rebalance.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            poll_all(members)()
        assert b.history == []
    finally:
        for m in members:
            m.close()


# -- members in processes (SIGKILL) --------------------------------------------------------------


class ProcessMember:
    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(PROCESS), bootstrap, group, topic],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def events(self, kind: str) -> Iterator[list[str]]:
        for line in list(self.lines):
            parts = line.split(" ")
            if parts[0] == kind:
                yield parts[1:]

    def assigned(self) -> set[int]:
        last = None
        for args in self.events("ASSIGN"):
            last = args
        if not last or not last[0]:
            return set()
        return {int(p) for p in last[0].split(",")}

    def records(self) -> list[tuple[int, int]]:
        return [(int(p), int(o)) for p, o in self.events("RECORD")]

    def commits(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for p, o in self.events("COMMIT"):
            out[int(p)] = max(out.get(int(p), 0), int(o))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(30)


def test_sigkilled_member_partitions_move_after_session_timeout(
        kafka: Backend, topic_name: str, group_id: str) -> None:
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name, 6)
    members = [ProcessMember(bs, group_id, topic_name) for _ in range(3)]
    try:
        wait_for(lambda: sorted(len(m.assigned()) for m in members) == [2, 2, 2]
                 and sorted(p for m in members for p in m.assigned()) == list(range(6)),
                 "three processes with two partitions each")
        produce(bs, topic_name, 600)
        wait_for(lambda: all(m.records() for m in members), "every member consuming")
        victim = members[0]
        victim.proc.kill()  # SIGKILL: no LeaveGroup, no last commit
        victim.proc.wait()
        victim._reader.join(30)  # its last COMMIT lines are read
        survivors = members[1:]
        wait_for(lambda: sorted(p for m in survivors for p in m.assigned()) == list(range(6)),
                 "the survivors to own all six partitions after the session timeout")
        produce(bs, topic_name, 600, start=600)
        ends = end_offsets(bs, topic_name, 6)
        expected = {(p, o) for p, end in ends.items() for o in range(end)}
        wait_for(lambda: expected <= {r for m in members for r in m.records()},
                 "every record consumed at least once")
        wait_for(lambda: committed(bs, group_id, topic_name, 6) == ends,
                 "the group's committed offsets to reach the end")
        # Nothing before an offset the victim had committed was delivered again.
        victim_commits = victim.commits()
        for m in survivors:
            for p, o in m.records():
                if p in victim_commits and (p, o) in set(victim.records()):
                    assert o >= victim_commits[p], (p, o, victim_commits[p])
    finally:
        for m in members:
            m.stop()


# -- committed offsets across a broker SIGKILL (embedded broker, own data folder) ----------------


def test_committed_offsets_survive_broker_sigkill_and_restart(tmp_path: Path,
                                                               topic_name: str) -> None:
    broker = EmbeddedBroker(data_dir=tmp_path / "data")
    broker.start()
    try:
        bs = broker.bootstrap_servers
        create_topic(bs, topic_name, 3)
        produce(bs, topic_name, 90)
        group = "durable-group"
        c = Consumer({"bootstrap.servers": bs, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic_name])
        seen: dict[int, int] = defaultdict(int)
        wait_for(lambda: sum(seen.values()) >= 45,
                 "45 records", step=lambda: _consume_one(c, seen))
        c.commit(asynchronous=False)
        c.commit(offsets=[TopicPartition(topic_name, 0, seen[0], "ckpt")], asynchronous=False)
        before = committed(bs, group, topic_name, 3)
        c.close()
        broker.kill()
        broker.start()
        after = Consumer({"bootstrap.servers": bs, "group.id": group,
                          "auto.offset.reset": "earliest"})
        tps = after.committed([TopicPartition(topic_name, p) for p in range(3)], timeout=20)
        assert {tp.partition: tp.offset for tp in tps} == before
        assert tps[0].metadata == "ckpt"
        # A new member of the group resumes exactly at the committed offsets.
        first: dict[int, int] = {}
        after.subscribe([topic_name])

        def take() -> None:
            msg = after.poll(0.1)
            if msg is not None and not msg.error():
                first.setdefault(msg.partition(), msg.offset())

        ends = end_offsets(bs, topic_name, 3)
        wanted = {p for p in range(3) if before[p] < ends[p]}
        wait_for(lambda: wanted <= set(first), "a record from each unfinished partition",
                 step=take)
        assert {p: first[p] for p in wanted} == {p: max(before[p], 0) for p in wanted}
        after.close()
    finally:
        broker.cleanup()


def _commit_now(c: Consumer) -> bool:
    try:
        c.commit(asynchronous=False)
    except KafkaException as e:
        # _NO_OFFSET: everything consumed is already committed.
        return bool(e.args and e.args[0].code() == KafkaError._NO_OFFSET)
    return True


def _consume_one(c: Consumer, seen: dict[int, int]) -> None:
    msg = c.poll(0.1)
    if msg is not None and not msg.error():
        seen[msg.partition()] = msg.offset() + 1


def test_running_group_carries_on_across_a_broker_sigkill(tmp_path: Path,
                                                          topic_name: str) -> None:
    """The group's last generation is in __consumer_offsets: after the restart its members
    heartbeat and commit with the member ids and generation they had, and keep their
    partitions (librdkafka may rejoin; a known member with unchanged metadata gets the same
    generation back, as from Kafka)."""
    broker = EmbeddedBroker(data_dir=tmp_path / "data")
    broker.start()
    members: list[Member] = []
    try:
        bs = broker.bootstrap_servers
        create_topic(bs, topic_name, 4)
        members = [Member(bs, "carry-on", topic_name) for _ in range(2)]
        wait_for(assignments_settle(members, 4), "two members sharing four partitions",
                 step=poll_all(members))
        produce(bs, topic_name, 40)
        wait_for(lambda: len({r for m in members for r in m.records}) >= 40, "40 records",
                 step=poll_all(members))
        owned = [set(m.assigned) for m in members]
        broker.kill()
        broker.start()
        produce(bs, topic_name, 40, start=40)
        wait_for(lambda: len({r for m in members for r in m.records}) >= 80,
                 "the 40 records produced after the restart", step=poll_all(members))
        # Asynchronous commits sent while the client was still looking for the coordinator
        # are dropped by librdkafka (and a member that rejoined resumes from the last commit):
        # keep consuming and committing synchronously until the group's commits reach the end.
        ends = end_offsets(bs, topic_name, 4)

        def caught_up() -> bool:
            poll_all(members)()
            for m in members:
                _commit_now(m.consumer)
            return committed(bs, "carry-on", topic_name, 4) == ends

        wait_for(caught_up, "the group's commits to reach the end after the restart")
        # The group went on in the same shape: every member kept its partitions.
        assert [m.assigned for m in members] == owned
    finally:
        for m in members:
            m.close()
        broker.cleanup()


def test_recreated_topic_does_not_inherit_committed_offsets(kafka: Backend, topic_name: str,
                                                            group_id: str) -> None:
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name, 1)
    produce(bs, topic_name, 5)
    c = Consumer({"bootstrap.servers": bs, "group.id": group_id})
    c.commit(offsets=[TopicPartition(topic_name, 0, 5)], asynchronous=False)
    c.close()
    assert committed(bs, group_id, topic_name, 1) == {0: 5}
    admin = AdminClient({"bootstrap.servers": bs})
    admin.delete_topics([topic_name])[topic_name].result(30)

    def recreated() -> bool:
        try:
            admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(30)
        except KafkaException:
            time.sleep(0.2)  # the deletion is still going on (Apache Kafka deletes async)
            return False
        return True

    wait_for(recreated, "the topic to be created again")
    wait_for(lambda: committed(bs, group_id, topic_name, 1) == {0: -1001},
             "the old committed offset to be gone")


# -- other clients: kafka-python and aiokafka (non-flexible, older API versions) ----------------


def test_kafka_python_group_consumer_commits(kafka: Backend, topic_name: str,
                                             group_id: str) -> None:
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTopicPartition

    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name, 3)
    produce(bs, topic_name, 30)
    consumer = KafkaConsumer(topic_name, bootstrap_servers=bs, group_id=group_id,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=WAIT_S * 1000)
    try:
        seen = set()
        for message in consumer:
            seen.add((message.partition, message.offset))
            if len(seen) == 30:
                break
        assert len(seen) == 30
        consumer.commit()
        got = {p: consumer.committed(KpTopicPartition(topic_name, p)) for p in range(3)}
    finally:
        consumer.close()
    assert got == end_offsets(bs, topic_name, 3) == committed(bs, group_id, topic_name, 3)


def test_aiokafka_group_consumer_commits(kafka: Backend, topic_name: str,
                                         group_id: str) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as AioTopicPartition

    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name, 3)
    produce(bs, topic_name, 30)

    async def run() -> dict[int, int | None]:
        consumer = AIOKafkaConsumer(topic_name, bootstrap_servers=bs, group_id=group_id,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            seen = set()
            async for message in consumer:
                seen.add((message.partition, message.offset))
                if len(seen) == 30:
                    break
            await consumer.commit()
            return {p: await consumer.committed(AioTopicPartition(topic_name, p))
                    for p in range(3)}
        finally:
            await consumer.stop()

    got = asyncio.run(asyncio.wait_for(run(), WAIT_S))
    assert got == end_offsets(bs, topic_name, 3) == committed(bs, group_id, topic_name, 3)
