"""The wire adapter: kio request entities of every advertised version in, response bodies that
the broker's schema writer serialises for that version out (checked by decoding them back)."""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import itertools
from typing import Any

import pytest
from coordinator_harness import make_config

from hayase.broker.coordinator.api import (
    API_VERSIONS,
    GroupApi,
    Node,
)
from hayase.broker.coordinator.coordinator import GroupCoordinator
from hayase.broker.protocol.schema_codec import decode, encode
from hayase.broker.protocol.versions import ApiKey

NAMES = {
    ApiKey.OFFSET_COMMIT: "offset_commit", ApiKey.OFFSET_FETCH: "offset_fetch",
    ApiKey.FIND_COORDINATOR: "find_coordinator", ApiKey.JOIN_GROUP: "join_group", ApiKey.HEARTBEAT: "heartbeat",
    ApiKey.LEAVE_GROUP: "leave_group", ApiKey.SYNC_GROUP: "sync_group", ApiKey.DESCRIBE_GROUPS: "describe_groups",
    ApiKey.LIST_GROUPS: "list_groups", ApiKey.DELETE_GROUPS: "delete_groups",
}


def module(api_key: int, version: int, kind: str) -> Any:
    return importlib.import_module(f"kio.schema.{NAMES[api_key]}.v{version}.{kind}")


def build(cls: type, **values: Any) -> Any:
    """A kio entity from the values its version has (others dropped, defaults for the rest)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def request(api_key: int, version: int, cls_name: str, **values: Any) -> Any:
    return build(getattr(module(api_key, version, "request"), cls_name), **values)


def wire(api_key: int, version: int, body: dict[str, Any]) -> Any:
    """Serialise a response body for `version` and read it back as kio's entity."""
    mod = module(api_key, version, "response")
    cls = next(
        c for c in vars(mod).values()
        if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == mod.__name__
        and c.__name__.endswith("Response")
    )
    entity, _ = decode(cls, encode(cls, body))
    return entity


class Driver:
    def __init__(self) -> None:
        ids = itertools.count(1)
        self.c = GroupCoordinator(make_config(), partitions_of=lambda t: 2 if t == "t" else None,
                                  member_id_factory=lambda p: f"{p}-m{next(ids)}")
        self.api = GroupApi(self.c, lambda: Node(0, "127.0.0.1", 9092))
        self.now = 0
        self.answers: dict[int, Any] = {}
        self.tokens = itertools.count(1)

    def send(self, api_key: int, version: int, body: Any) -> int:
        token = next(self.tokens)
        out = self.api.handle(token, api_key, version, body, self.now, "client", "/127.0.0.1")
        for t, b in out.replies:
            self.answers[t] = (api_key if t == token else None, b)
        return token

    def tick(self) -> None:
        for t, b in self.api.tick(self.now).replies:
            self.answers[t] = (None, b)

    def body(self, token: int) -> dict[str, Any]:
        return self.answers[token][1]  # type: ignore[no-any-return]


def join_request(version: int, member_id: str = "", instance: str | None = None) -> Any:
    mod = module(ApiKey.JOIN_GROUP, version, "request")
    protocol = build(mod.JoinGroupRequestProtocol, name="range", metadata=b"sub")
    return build(
        mod.JoinGroupRequest, group_id="g", session_timeout=datetime.timedelta(seconds=10),
        rebalance_timeout=datetime.timedelta(seconds=30), member_id=member_id,
        group_instance_id=instance, protocol_type="consumer", protocols=(protocol,),
        reason=None,
    )


@pytest.mark.parametrize("version", range(API_VERSIONS[ApiKey.JOIN_GROUP][1] + 1))
def test_join_sync_heartbeat_leave_every_version(version: int) -> None:
    d = Driver()
    t = d.send(ApiKey.JOIN_GROUP, version, join_request(version))
    if version >= 4:
        first = wire(ApiKey.JOIN_GROUP, version, d.body(t))
        assert first.error_code == 79 and first.member_id == "client-m1"
        t = d.send(ApiKey.JOIN_GROUP, version, join_request(version, member_id="client-m1"))
    assert t not in d.answers  # parked until the join phase completes
    d.tick()
    joined = wire(ApiKey.JOIN_GROUP, version, d.body(t))
    assert (joined.error_code, joined.generation_id, joined.leader) == (0, 1, "client-m1")
    assert joined.protocol_name == "range" and [m.metadata for m in joined.members] == [b"sub"]
    sync_version = min(version, API_VERSIONS[ApiKey.SYNC_GROUP][1])
    smod = module(ApiKey.SYNC_GROUP, sync_version, "request")
    sync = build(
        smod.SyncGroupRequest, group_id="g", generation_id=1, member_id="client-m1",
        group_instance_id=None, protocol_type="consumer", protocol_name="range",
        assignments=(build(smod.SyncGroupRequestAssignment, member_id="client-m1",
                           assignment=b"A"),),
    )
    synced = wire(ApiKey.SYNC_GROUP, sync_version, d.body(d.send(ApiKey.SYNC_GROUP, sync_version, sync)))
    assert synced.error_code == 0 and synced.assignment == b"A"
    hb_version = min(version, API_VERSIONS[ApiKey.HEARTBEAT][1])
    hb = request(ApiKey.HEARTBEAT, hb_version, "HeartbeatRequest", group_id="g", generation_id=1,
                 member_id="client-m1", group_instance_id=None)
    assert wire(ApiKey.HEARTBEAT, hb_version, d.body(d.send(ApiKey.HEARTBEAT, hb_version, hb))).error_code == 0
    leave_version = min(version, API_VERSIONS[ApiKey.LEAVE_GROUP][1])
    lmod = module(ApiKey.LEAVE_GROUP, leave_version, "request")
    if leave_version < 3:
        leave = build(lmod.LeaveGroupRequest, group_id="g", member_id="client-m1")
    else:
        leave = build(lmod.LeaveGroupRequest, group_id="g", members=(
            build(lmod.MemberIdentity, member_id="client-m1", group_instance_id=None,
                  reason=None),))
    left = wire(ApiKey.LEAVE_GROUP, leave_version, d.body(d.send(ApiKey.LEAVE_GROUP, leave_version, leave)))
    assert left.error_code == 0
    assert d.c.groups["g"].state.value == "Empty"


def test_join_error_before_v7_has_non_null_protocol_name() -> None:
    d = Driver()
    body = d.body(d.send(ApiKey.JOIN_GROUP, 5, join_request(5, member_id="ghost")))
    r = wire(ApiKey.JOIN_GROUP, 5, body)
    assert r.error_code == 25 and r.protocol_name == ""


def test_sync_v5_without_protocol_type_or_name_is_inconsistent() -> None:
    d = Driver()
    smod = module(ApiKey.SYNC_GROUP, 5, "request")
    sync = build(smod.SyncGroupRequest, group_id="g", generation_id=1, member_id="m",
                 group_instance_id=None, protocol_type=None, protocol_name=None, assignments=())
    assert wire(ApiKey.SYNC_GROUP, 5, d.body(d.send(ApiKey.SYNC_GROUP, 5, sync))).error_code == 23


def test_leave_v0_reports_member_error_at_top_level() -> None:
    d = Driver()
    d.send(ApiKey.JOIN_GROUP, 3, join_request(3))
    d.tick()
    leave = request(ApiKey.LEAVE_GROUP, 0, "LeaveGroupRequest", group_id="g", member_id="ghost")
    assert wire(ApiKey.LEAVE_GROUP, 0, d.body(d.send(ApiKey.LEAVE_GROUP, 0, leave))).error_code == 25


def commit_request(version: int, generation: int, member_id: str, offsets: dict[int, int]) -> Any:
    mod = module(ApiKey.OFFSET_COMMIT, version, "request")
    parts = tuple(
        build(mod.OffsetCommitRequestPartition, partition_index=p, committed_offset=o,
              committed_leader_epoch=-1, committed_metadata=f"meta-{p}")
        for p, o in offsets.items()
    )
    return build(
        mod.OffsetCommitRequest, group_id="simple", generation_id_or_member_epoch=generation,
        member_id=member_id, group_instance_id=None, retention_time=-1,
        topics=(build(mod.OffsetCommitRequestTopic, name="t", partitions=parts),),
    )


@pytest.mark.parametrize("version", range(API_VERSIONS[ApiKey.OFFSET_COMMIT][0],
                                          API_VERSIONS[ApiKey.OFFSET_COMMIT][1] + 1))
def test_offset_commit_every_version(version: int) -> None:
    d = Driver()
    body = d.body(d.send(ApiKey.OFFSET_COMMIT, version, commit_request(version, -1, "", {0: 5, 7: 1})))
    r = wire(ApiKey.OFFSET_COMMIT, version, body)
    assert [(p.partition_index, p.error_code) for p in r.topics[0].partitions] == [(0, 0), (7, 3)]
    assert d.c.committed("simple")[("t", 0)].metadata == "meta-0"


@pytest.mark.parametrize("version", range(API_VERSIONS[ApiKey.OFFSET_FETCH][0],
                                          API_VERSIONS[ApiKey.OFFSET_FETCH][1] + 1))
def test_offset_fetch_every_version(version: int) -> None:
    d = Driver()
    d.send(ApiKey.OFFSET_COMMIT, 8, commit_request(8, -1, "", {0: 5}))
    mod = module(ApiKey.OFFSET_FETCH, version, "request")
    if version < 8:
        topic = build(mod.OffsetFetchRequestTopic, name="t", partition_indexes=(0, 1))
        req = build(mod.OffsetFetchRequest, group_id="simple", topics=(topic,),
                    require_stable=False)
        r = wire(ApiKey.OFFSET_FETCH, version, d.body(d.send(ApiKey.OFFSET_FETCH, version, req)))
        parts = r.topics[0].partitions
    else:
        topic = build(mod.OffsetFetchRequestTopics, name="t", partition_indexes=(0, 1))
        group = build(mod.OffsetFetchRequestGroup, group_id="simple", member_id=None,
                      member_epoch=-1, topics=(topic,))
        req = build(mod.OffsetFetchRequest, groups=(group,), require_stable=False)
        r = wire(ApiKey.OFFSET_FETCH, version, d.body(d.send(ApiKey.OFFSET_FETCH, version, req)))
        assert r.groups[0].group_id == "simple"
        parts = r.groups[0].topics[0].partitions
    assert [(p.partition_index, p.committed_offset, p.metadata) for p in parts] == [
        (0, 5, "meta-0"), (1, -1, "")]


@pytest.mark.parametrize("version", range(API_VERSIONS[ApiKey.FIND_COORDINATOR][1] + 1))
def test_find_coordinator_every_version(version: int) -> None:
    d = Driver()
    req = request(ApiKey.FIND_COORDINATOR, version, "FindCoordinatorRequest", key="g", key_type=0,
                  coordinator_keys=("g", "h"))
    r = wire(ApiKey.FIND_COORDINATOR, version, d.body(d.send(ApiKey.FIND_COORDINATOR, version, req)))
    if version < 4:
        assert (r.error_code, r.node_id, r.host, r.port) == (0, 0, "127.0.0.1", 9092)
    else:
        assert [(c.key, c.port) for c in r.coordinators] == [("g", 9092), ("h", 9092)]


@pytest.mark.parametrize("version", range(API_VERSIONS[ApiKey.DESCRIBE_GROUPS][1] + 1))
def test_describe_list_delete_every_version(version: int) -> None:
    d = Driver()
    d.send(ApiKey.JOIN_GROUP, 3, join_request(3))
    d.tick()
    req = request(ApiKey.DESCRIBE_GROUPS, version, "DescribeGroupsRequest", groups=("g", "nope"),
                  include_authorized_operations=False)
    r = wire(ApiKey.DESCRIBE_GROUPS, version, d.body(d.send(ApiKey.DESCRIBE_GROUPS, version, req)))
    assert [(g.group_id, g.group_state) for g in r.groups] == [
        ("g", "CompletingRebalance"), ("nope", "Dead")]
    assert r.groups[0].members[0].client_host == "/127.0.0.1"
    list_version = min(version, API_VERSIONS[ApiKey.LIST_GROUPS][1])
    req = request(ApiKey.LIST_GROUPS, list_version, "ListGroupsRequest", states_filter=(),
                  types_filter=())
    r = wire(ApiKey.LIST_GROUPS, list_version, d.body(d.send(ApiKey.LIST_GROUPS, list_version, req)))
    assert [(g.group_id, g.protocol_type) for g in r.groups] == [("g", "consumer")]
    if list_version >= 5:
        assert r.groups[0].group_type == "classic"  # Kafka's GroupType.CLASSIC.toString()
    delete_version = min(version, API_VERSIONS[ApiKey.DELETE_GROUPS][1])
    req = request(ApiKey.DELETE_GROUPS, delete_version, "DeleteGroupsRequest", groups_names=("g",))
    r = wire(ApiKey.DELETE_GROUPS, delete_version, d.body(d.send(ApiKey.DELETE_GROUPS, delete_version, req)))
    assert [(x.group_id, x.error_code) for x in r.results] == [("g", 68)]
