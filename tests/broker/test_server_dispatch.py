"""The dispatcher and API handlers without sockets: frames in, frames out, over an in-memory
stand-in for the storage (tests/broker/fake_storage.py)."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import pytest
from fake_storage import FakeLogManager

from hayase.broker.config import BrokerConfig, ConfigError, parse_properties
from hayase.broker.context import BrokerState, RequestContext
from hayase.broker.dispatch import Dispatcher, FrameError
from hayase.broker.meta import PRODUCER_ID_BLOCK, ProducerIdAllocator
from hayase.broker.protocol.frames import decode_response, encode_request


def _batch(records: int = 1, payload: bytes = b"x" * 20, ts: int = 1000) -> bytes:
    """A RecordBatch v2 header + opaque payload; the fake storage only reads the header."""
    body = struct.pack(">ibIhiqqqhii", 0, 2, 0, 0, records - 1, ts, ts, -1, -1, -1, records)
    body += payload
    return struct.pack(">qi", 0, len(body)) + body


@pytest.fixture
def state(tmp_path: Path) -> BrokerState:
    cfg = BrokerConfig.build(tmp_path, port=0, overrides={"num.partitions": "2"})
    return BrokerState(cfg, FakeLogManager(), clock=lambda: 5_000)


def call(state: BrokerState, api_key: int, version: int, body: dict[str, Any]) -> Any:
    out = Dispatcher(state).dispatch(encode_request(api_key, version, 1, "t", body)[4:])
    if out is not None and not isinstance(out, bytes):
        out = asyncio.get_event_loop_policy().new_event_loop().run_until_complete(out)
    if out is None:
        return None
    return decode_response(api_key, version, out[4:])[1]


def produce(state: BrokerState, topic: str, acks: int = -1, version: int = 9,
            partition: int = 0, records: bytes | None = None) -> Any:
    return call(state, 0, version, {"acks": acks, "timeout": 1000, "topic_data": [
        {"name": topic, "partition_data": [{"index": partition,
                                            "records": records or _batch()}]}]})


def test_metadata_auto_creates_with_num_partitions(state: BrokerState) -> None:
    res = call(state, 3, 12, {"topics": [{"name": "auto"}], "allow_auto_topic_creation": True})
    assert res.topics[0].error_code == 0
    assert len(res.topics[0].partitions) == 2
    assert res.brokers[0].host == "127.0.0.1"
    assert res.cluster_id == state.cluster_id


def test_metadata_respects_allow_auto_topic_creation_false(state: BrokerState) -> None:
    res = call(state, 3, 12, {"topics": [{"name": "nope"}], "allow_auto_topic_creation": False})
    assert res.topics[0].error_code == 3
    assert "nope" not in state.log_manager.topics()


def test_metadata_rejects_illegal_topic_names(state: BrokerState) -> None:
    res = call(state, 3, 9, {"topics": [{"name": "bad name!"}]})
    assert res.topics[0].error_code == 17


def test_metadata_v0_empty_list_means_all_topics(state: BrokerState) -> None:
    state.log_manager.create_topic("a", 1, {})
    assert [t.name for t in call(state, 3, 0, {"topics": []}).topics] == ["a"]
    assert call(state, 3, 1, {"topics": []}).topics == ()


def test_produce_acks_zero_sends_no_response(state: BrokerState) -> None:
    assert produce(state, "t0", acks=0) is None
    assert state.log_manager.log("t0", 0).high_watermark == 1


def test_produce_assigns_offsets_and_reports_errors(state: BrokerState) -> None:
    res = produce(state, "t1")
    assert res.responses[0].partition_responses[0].base_offset == 0
    res = produce(state, "t1", records=_batch(3))
    assert res.responses[0].partition_responses[0].base_offset == 1
    res = produce(state, "t1", partition=7)
    assert res.responses[0].partition_responses[0].error_code == 3
    res = produce(state, "t1", acks=2)
    assert res.responses[0].partition_responses[0].error_code == 21
    res = produce(state, "t1", records=b"\x00" * 30)
    assert res.responses[0].partition_responses[0].error_code == 2


def test_produce_without_auto_create_answers_unknown_topic(tmp_path: Path) -> None:
    cfg = BrokerConfig.build(tmp_path, overrides={"auto.create.topics.enable": "false"})
    st = BrokerState(cfg, FakeLogManager())
    assert produce(st, "x").responses[0].partition_responses[0].error_code == 3


def fetch(state: BrokerState, topic: str, offset: int = 0, max_bytes: int = 10**6,
          partition_max: int = 10**6, min_bytes: int = 1, wait: int = 0,
          partitions: tuple[int, ...] = (0,)) -> Any:
    return call(state, 1, 12, {"max_wait": wait, "min_bytes": min_bytes, "max_bytes": max_bytes,
                               "topics": [{"topic": topic, "partitions": [
                                   {"partition": p, "fetch_offset": offset,
                                    "partition_max_bytes": partition_max,
                                    "current_leader_epoch": -1} for p in partitions]}]})


def test_fetch_returns_batches_and_watermarks(state: BrokerState) -> None:
    for _ in range(3):
        produce(state, "f")
    part = fetch(state, "f", offset=1).responses[0].partitions[0]
    assert part.error_code == 0
    assert part.high_watermark == 3
    assert struct.unpack_from(">q", part.records)[0] == 1  # starts at the batch holding 1
    assert fetch(state, "f", offset=9).responses[0].partitions[0].error_code == 1
    assert fetch(state, "missing").responses[0].partitions[0].error_code == 3


def test_fetch_response_limit_lets_only_the_first_partition_exceed_it(state: BrokerState) -> None:
    big = _batch(payload=b"y" * 500)
    produce(state, "lim", partition=0, records=big)
    produce(state, "lim", partition=1, records=big)
    res = fetch(state, "lim", max_bytes=100, partitions=(0, 1))
    parts = res.responses[0].partitions
    assert len(parts[0].records) == len(big)  # first non-empty partition: one whole batch
    assert parts[1].records == b""  # over the response limit
    assert parts[1].high_watermark == 1


def test_long_poll_fetch_wakes_on_append(state: BrokerState) -> None:
    async def run() -> Any:
        d = Dispatcher(state)
        out = d.dispatch(encode_request(1, 12, 9, "t", {
            "max_wait": 30_000, "min_bytes": 1, "max_bytes": 10**6, "topics": [
                {"topic": "lp", "partitions": [{"partition": 0, "fetch_offset": 0,
                                                "partition_max_bytes": 10**6}]}]})[4:])
        assert isinstance(out, asyncio.Future)
        await asyncio.sleep(0)
        assert not out.done()
        produce_frame = encode_request(0, 9, 10, "t", {"acks": 1, "timeout": 1, "topic_data": [
            {"name": "lp", "partition_data": [{"index": 0, "records": _batch()}]}]})
        d.dispatch(produce_frame[4:])
        return decode_response(1, 12, (await out)[4:])[1]

    state.log_manager.create_topic("lp", 1, {})
    res = asyncio.run(run())
    assert res.responses[0].partitions[0].high_watermark == 1
    assert res.responses[0].partitions[0].records


def test_list_offsets_earliest_latest_and_by_time(state: BrokerState) -> None:
    for ts in (1000, 2000, 3000):
        produce(state, "lo", records=_batch(ts=ts))
    q = {"replica_id": -1, "topics": [{"name": "lo", "partitions": [
        {"partition_index": 0, "timestamp": t, "current_leader_epoch": -1}
        for t in (-2, -1, 1500, 9999)]}]}
    parts = call(state, 2, 7, q).topics[0].partitions
    assert [(p.offset, p.timestamp) for p in parts] == [(0, -1), (3, -1), (1, 2000), (-1, -1)]
    assert [p.offset for p in call(state, 2, 1, q).topics[0].partitions] == [0, 3, 1, -1]


def test_an_unknown_partition_fails_alone_in_list_offsets(state: BrokerState) -> None:
    produce(state, "lo")
    q = {"replica_id": -1, "topics": [
        {"name": "lo", "partitions": [{"partition_index": p, "timestamp": -1,
                                       "current_leader_epoch": -1} for p in (0, 7)]},
        {"name": "missing", "partitions": [{"partition_index": 0, "timestamp": -1,
                                            "current_leader_epoch": -1}]}]}
    topics = call(state, 2, 7, q).topics
    assert [(t.name, [(p.partition_index, p.error_code, p.offset) for p in t.partitions])
            for t in topics] == [("lo", [(0, 0, 1), (7, 3, -1)]), ("missing", [(0, 3, -1)])]


def test_init_producer_id_never_repeats_across_restarts(tmp_path: Path) -> None:
    a = ProducerIdAllocator(tmp_path)
    first = [a.allocate() for _ in range(3)]
    b = ProducerIdAllocator(tmp_path)  # a restart (or a crash) of the same data folder
    assert b.allocate() >= PRODUCER_ID_BLOCK
    assert first == [0, 1, 2]


def test_init_producer_id_handler(state: BrokerState) -> None:
    r1 = call(state, 22, 4, {"transactional_id": None, "transaction_timeout": 60000,
                             "producer_id": -1, "producer_epoch": -1})
    r2 = call(state, 22, 0, {"transactional_id": None, "transaction_timeout": 60000})
    assert r1.error_code == r2.error_code == 0
    assert r1.producer_id != r2.producer_id
    bump = call(state, 22, 4, {"transactional_id": None, "transaction_timeout": 60000,
                               "producer_id": r1.producer_id, "producer_epoch": 0})
    assert (bump.producer_id, bump.producer_epoch) == (r1.producer_id, 1)


def test_offset_for_leader_epoch(state: BrokerState) -> None:
    produce(state, "ep")
    res = call(state, 23, 4, {"replica_id": -1, "topics": [{"topic": "ep", "partitions": [
        {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0},
        {"partition": 0, "current_leader_epoch": 3, "leader_epoch": 0}]}]})
    a, b = res.topics[0].partitions
    assert (a.error_code, a.leader_epoch, a.end_offset) == (0, 0, 1)
    assert b.error_code == 76  # UNKNOWN_LEADER_EPOCH: the client is ahead of us


def test_group_apis_route_to_the_installed_handler(state: BrokerState) -> None:
    seen: list[tuple[int, int]] = []

    class Groups:
        def api_versions(self) -> dict[int, tuple[int, int]]:
            return {16: (0, 4), 10: (0, 4)}

        def handle(self, ctx: RequestContext, body: Any) -> Any:
            seen.append((ctx.header.api_key, ctx.api_version))
            return {"error_code": 0, "groups": [{"group_id": "g", "protocol_type": "consumer",
                                                 "group_state": "Stable"}]}

        async def start(self) -> None: ...

        async def close(self) -> None: ...

    with pytest.raises(FrameError):  # not advertised before a handler is installed
        call(state, 16, 4, {})
    state.install_group_handler(Groups())
    versions = {k.api_key: k.max_version for k in call(state, 18, 3, {}).api_keys}
    assert versions[16] == 4 and versions[10] == 4 and 11 not in versions
    res = call(state, 16, 4, {"states_filter": []})
    assert res.groups[0].group_id == "g"
    assert seen == [(16, 4)]


def test_handler_exception_closes_the_connection_not_the_broker(state: BrokerState) -> None:
    def boom(ctx: RequestContext, body: Any) -> Any:
        raise RuntimeError("bug")

    state.log_manager.topics = boom  # type: ignore[method-assign,assignment]
    with pytest.raises(FrameError):
        call(state, 3, 12, {"topics": None})


def test_config_file_and_overrides(tmp_path: Path) -> None:
    props = tmp_path / "server.properties"
    props.write_text("# comment\nnum.partitions=4\nlisteners = PLAINTEXT://0.0.0.0:9999\n"
                     "log.retention.ms=\\\n  1000\n")
    assert parse_properties(props.read_text())["log.retention.ms"] == "1000"
    cfg = BrokerConfig.build(tmp_path, config_file=props, overrides={"num.partitions": "6"},
                             port=1234)
    assert cfg.num_partitions == 6
    assert (cfg.listener.host, cfg.listener.port) == ("0.0.0.0", 1234)
    assert cfg.advertised.host == "127.0.0.1"
    assert "num.partitions" in cfg.explicit
    with pytest.raises(ConfigError):
        BrokerConfig.build(tmp_path, overrides={"hayase.durability": "sometimes"})


def test_advertised_listeners_in_metadata(tmp_path: Path) -> None:
    cfg = BrokerConfig.build(tmp_path, overrides={
        "advertised.listeners": "PLAINTEXT://broker.example:19092"})
    st = BrokerState(cfg, FakeLogManager())
    res = call(st, 3, 12, {"topics": []})
    assert (res.brokers[0].host, res.brokers[0].port) == ("broker.example", 19092)


def test_cluster_id_is_kept_in_the_data_dir(tmp_path: Path) -> None:
    cfg = BrokerConfig.build(tmp_path)
    first = BrokerState(cfg, FakeLogManager()).cluster_id
    assert BrokerState(cfg, FakeLogManager()).cluster_id == first
    assert not first.startswith("-") and len(first) == 22


def _seed_frames() -> list[bytes]:
    batch = _batch()
    produce_body = {"acks": 1, "timeout": 1000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": batch}]}]}
    fetch_body = {"max_wait": 0, "min_bytes": 1, "max_bytes": 1000, "topics": [
        {"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0,
                                       "partition_max_bytes": 100}]}]}
    return [f[4:] for f in (
        encode_request(0, 9, 1, "c", produce_body),
        encode_request(0, 3, 1, "c", produce_body),
        encode_request(1, 12, 1, "c", fetch_body),
        encode_request(1, 4, 1, "c", fetch_body),
        encode_request(3, 12, 1, "c", {"topics": [{"name": "t"}]}),
        encode_request(3, 1, 1, "c", {"topics": [{"name": "t"}]}),
        encode_request(2, 7, 1, "c", {"topics": [{"name": "t", "partitions": [
            {"partition_index": 0, "timestamp": -1}]}]}),
        encode_request(19, 5, 1, "c", {"topics": [{"name": "x", "num_partitions": 2,
                                                    "replication_factor": 1}], "timeout": 100}),
        encode_request(32, 4, 1, "c", {"resources": [
            {"resource_type": 2, "resource_name": "t", "configuration_keys": None}]}),
        encode_request(37, 3, 1, "c", {"topics": [{"name": "t", "count": 3}], "timeout": 100}),
        encode_request(18, 3, 1, "c", {"client_software_name": "a",
                                       "client_software_version": "1"}),
        encode_request(22, 4, 1, "c", {"transaction_timeout": 1, "producer_id": -1,
                                       "producer_epoch": -1}),
        encode_request(23, 4, 1, "c", {"topics": [{"topic": "t", "partitions": [
            {"partition": 0, "leader_epoch": 0}]}]}),
        encode_request(20, 4, 1, "c", {"topic_names": ["x"], "timeout": 100}),
    )]


def test_mutated_frames_only_ever_answer_or_close(state: BrokerState) -> None:
    """Seeded mutation fuzzing of valid frames of every API: each frame is answered or closes
    its connection with FrameError caused by bad input, never by a handler bug."""
    import random

    rng = random.Random(7)
    seeds = _seed_frames()
    handler_bugs: list[str] = []

    async def run() -> int:
        d = Dispatcher(state)
        answered = 0
        for _ in range(3000):
            f = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(len(f))
                op = rng.random()
                if op < 0.6:
                    f[pos] = rng.randrange(256)
                elif op < 0.8:
                    del f[pos:pos + rng.randint(1, 8)]
                else:
                    f[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            try:
                out = d.dispatch(bytes(f))
                if out is not None and not isinstance(out, bytes):
                    out.cancel()  # a parked long poll: answering it is not under test here
                answered += 1
            except FrameError as e:
                if not str(e).startswith(("malformed", "unsupported")):
                    handler_bugs.append(str(e))
        return answered

    answered = asyncio.run(run())
    assert handler_bugs == []
    assert answered > 100


def test_clients_cannot_write_or_delete_internal_topics(state: BrokerState) -> None:
    state.log_manager.create_topic("__consumer_offsets", 1, {})
    res = produce(state, "__consumer_offsets")
    assert res.responses[0].partition_responses[0].error_code == 17
    res = call(state, 20, 4, {"topic_names": ["__consumer_offsets"], "timeout": 1000})
    assert res.responses[0].error_code == 17
    assert "__consumer_offsets" in state.log_manager.topics()


def test_metadata_auto_creates_a_bounded_number_of_topics_per_request(
        state: BrokerState) -> None:
    from hayase.broker.apis.cluster import MAX_AUTO_CREATE_PER_REQUEST

    names = [f"many-{i}" for i in range(MAX_AUTO_CREATE_PER_REQUEST + 5)]
    res = call(state, 3, 12, {"topics": [{"name": n} for n in names],
                              "allow_auto_topic_creation": True})
    codes = [t.error_code for t in res.topics]
    assert codes == [0] * MAX_AUTO_CREATE_PER_REQUEST + [5] * 5  # LEADER_NOT_AVAILABLE: retry
    res = call(state, 3, 12, {"topics": [{"name": n} for n in names],
                              "allow_auto_topic_creation": True})
    assert [t.error_code for t in res.topics] == [0] * len(names)


def test_failed_acks_zero_produce_closes_the_connection(state: BrokerState) -> None:
    assert produce(state, "z", acks=0) is None
    with pytest.raises(FrameError, match="acks=0 produce failed"):
        produce(state, "z", acks=0, partition=9)  # Kafka closes so the client refreshes


def test_describe_broker_configs_reports_the_running_listeners(state: BrokerState) -> None:
    state.bound_port = 45678
    res = call(state, 32, 4, {"resources": [{"resource_type": 4, "resource_name": "0",
                                             "configuration_keys": None}]})
    configs = {c.name: c for c in res.results[0].configs}
    adv = configs["advertised.listeners"]
    assert adv.value == "PLAINTEXT://127.0.0.1:45678"
    assert (adv.config_source, adv.read_only) == (4, True)  # STATIC_BROKER_CONFIG, as Kafka 4
    assert configs["num.partitions"].config_source == 4  # set by the fixture's overrides
    assert configs["auto.create.topics.enable"].config_source == 5
