"""The compiled codecs against kio's own reader and writer, for every version we serve."""

from __future__ import annotations

import datetime
import io
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader as kio_reader
from kio.serial import entity_writer as kio_writer

from hayase.broker.protocol import schema_codec as sc
from hayase.broker.protocol.versions import CORE_API_VERSIONS, RECOMMENDED_GROUP_API_VERSIONS

ALL_VERSIONS = {**CORE_API_VERSIONS, **RECOMMENDED_GROUP_API_VERSIONS}
SCHEMAS = [(k, v) for k, (lo, hi) in sorted(ALL_VERSIONS.items()) for v in range(lo, hi + 1)]


def _kio_bytes(schema: type, entity: object) -> bytes:
    buf = io.BytesIO()
    kio_writer(schema)(buf, entity)
    return buf.getvalue()


METADATA = {
    "throttle_time": 0,
    "brokers": [{"node_id": 0, "host": "127.0.0.1", "port": 9092, "rack": None}],
    "cluster_id": "abc",
    "controller_id": 0,
    "topics": [{"error_code": 0, "name": "t", "topic_id": uuid.uuid4(), "is_internal": False,
                "partitions": [{"error_code": 0, "partition_index": 0, "leader_id": 0,
                                "leader_epoch": 0, "replica_nodes": [0], "isr_nodes": [0],
                                "offline_replicas": []}]}],
}


@pytest.mark.parametrize("version", range(0, 13))
def test_metadata_response_matches_kio_both_ways(version: int) -> None:
    schema = load_response_schema(3, version)
    ours = sc.encode(schema, METADATA)
    entity, size = kio_reader(schema)(ours, 0)
    assert size == len(ours)
    assert _kio_bytes(schema, entity) == ours
    assert sc.decode(schema, ours)[0] == entity
    assert entity.topics[0].partitions[0].replica_nodes == (0,)


@pytest.mark.parametrize(("api_key", "version"), SCHEMAS)
def test_default_request_round_trips_through_kio(api_key: int, version: int) -> None:
    """An all-defaults request of every served version: our bytes equal kio's, and decode back."""
    schema = load_request_schema(api_key, version)
    ours = sc.encode(schema, {})
    entity, size = sc.decode(schema, ours)
    assert size == len(ours)
    assert _kio_bytes(schema, entity) == ours


@pytest.mark.parametrize(("api_key", "version"), SCHEMAS)
def test_default_response_round_trips_through_kio(api_key: int, version: int) -> None:
    schema = load_response_schema(api_key, version)
    ours = sc.encode(schema, {})
    entity, size = kio_reader(schema)(ours, 0)
    assert size == len(ours)
    assert sc.decode(schema, ours)[0] == entity


def test_produce_request_decodes_to_kio_types() -> None:
    schema = load_request_schema(0, 9)
    body = {"acks": -1, "timeout": 1500, "topic_data": [
        {"name": "t", "partition_data": [{"index": 2, "records": b"\x00" * 70}]}]}
    entity, _ = sc.decode(schema, sc.encode(schema, body))
    assert entity.timeout == datetime.timedelta(milliseconds=1500)
    assert entity.topic_data[0].partition_data[0].records == b"\x00" * 70
    assert entity.transactional_id is None
    assert entity == kio_reader(schema)(_kio_bytes(schema, entity), 0)[0]


def test_unknown_tagged_fields_are_skipped() -> None:
    schema = load_request_schema(18, 3)  # ApiVersions v3, flexible
    plain = sc.encode(schema, {"client_software_name": "x", "client_software_version": "1"})
    assert plain.endswith(b"\x00")
    with_tags = plain[:-1] + bytes([2, 5, 2]) + b"zz" + bytes([9, 0])
    entity, size = sc.decode(schema, with_tags)
    assert size == len(with_tags)
    assert entity.client_software_name == "x"


def test_known_tagged_field_is_read_and_written() -> None:
    schema = load_request_schema(1, 12)  # Fetch v12: cluster_id is tag 0
    data = sc.encode(schema, {"cluster_id": "c1", "max_wait": 10, "min_bytes": 1, "topics": []})
    entity, _ = sc.decode(schema, data)
    assert entity.cluster_id == "c1"
    assert _kio_bytes(schema, entity) == data


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_truncated_input_raises_decode_error(cut: int) -> None:
    schema = load_request_schema(0, 3)
    data = sc.encode(schema, {"acks": 1, "timeout": 1, "topic_data": [
        {"name": "topic", "partition_data": [{"index": 0, "records": b"x" * 30}]}]})
    with pytest.raises(sc.DecodeError):
        sc.decode(schema, data[:-cut])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SCHEMAS), st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_decode_error(schema_key: tuple[int, int],
                                                           data: bytes) -> None:
    schema = load_request_schema(*schema_key)
    try:
        _entity, size = sc.decode(schema, data)
    except sc.DecodeError:
        return
    assert size <= len(data)


@settings(deadline=None)  # Hypothesis' 200 ms per example fails a stalled process (load)
@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_uvarint_round_trip(n: int) -> None:
    raw = sc.uvarint(n)
    assert sc.read_uvarint(raw, 0) == (n, len(raw))


def test_huge_array_length_is_rejected_without_allocating() -> None:
    """kio's native reader aborts the process on this (a 170 GB allocation); ours must not."""
    schema = load_request_schema(0, 9)
    # transactional_id null, acks, timeout, then a compact array claiming ~2^34 topics
    data = b"\x00" + b"\xff\xff" + b"\x00\x00\x03\xe8" + sc.uvarint(2**34) + b"\x00" * 8
    with pytest.raises(sc.DecodeError):
        sc.decode(schema, data)
    legacy = load_request_schema(0, 3)
    data = b"\xff\xff" + b"\xff\xff" + b"\x00\x00\x03\xe8" + b"\x7f\xff\xff\xff" + b"\x00" * 8
    with pytest.raises(sc.DecodeError):
        sc.decode(legacy, data)
