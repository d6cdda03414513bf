"""The group APIs on the wire: kio request entities in, response bodies out. Still sans-IO.

`GroupApi.handle` takes the decoded request (the kio entity of its exact version) and returns an
`Output` whose replies are (token, body) pairs, where body is a version-independent dict tree
with kio's field names (the broker's schema writer serialises only the fields of the request's
version). Parked JoinGroup/SyncGroup requests are answered in the Output of a later call or
tick, each converted for the version it was sent with.

What differs between versions is handled here, as Kafka does it: JoinGroup v0 has no rebalance
timeout (the session timeout stands in), v4+ require a known member id, v9 may skip the
assignment; LeaveGroup v0-2 leave one member and answer with its error at the top level;
OffsetFetch v8+ batch groups; FindCoordinator v4+ batch keys; DescribeGroups v6 answers
GROUP_ID_NOT_FOUND for an unknown group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from hayase.broker.coordinator.coordinator import (
    CommitPartition,
    GroupCoordinator,
    JoinRequest,
    SyncRequest,
)
from hayase.broker.coordinator.results import (
    CommitResult,
    DeleteResult,
    DescribeResult,
    FetchResult,
    HeartbeatResult,
    JoinResult,
    LeaveResult,
    ListResult,
    OffsetDeleteResult,
    Output,
    PartitionError,
    SyncResult,
)
from hayase.broker.protocol.versions import ApiKey

# What hayase serves: Kafka 4.x's ranges, clipped to kio's lower bounds (OffsetCommit from v2,
# OffsetFetch from v1) and to the versions before topic ids (OffsetCommit/OffsetFetch v10) and
# share/transaction coordinators (FindCoordinator v5-6).
API_VERSIONS: dict[int, tuple[int, int]] = {
    ApiKey.OFFSET_COMMIT: (2, 9),
    ApiKey.OFFSET_FETCH: (1, 9),
    ApiKey.FIND_COORDINATOR: (0, 4),
    ApiKey.JOIN_GROUP: (0, 9),
    ApiKey.HEARTBEAT: (0, 4),
    ApiKey.LEAVE_GROUP: (0, 5),
    ApiKey.SYNC_GROUP: (0, 5),
    ApiKey.DESCRIBE_GROUPS: (0, 6),
    ApiKey.LIST_GROUPS: (0, 5),
    ApiKey.DELETE_GROUPS: (0, 2),
    ApiKey.OFFSET_DELETE: (0, 0),
}

COORDINATOR_KEY_GROUP = 0
NO_AUTHORIZED_OPERATIONS = -(2**31)


@dataclass(frozen=True)
class Node:
    """Where FindCoordinator sends clients: this broker."""

    node_id: int
    host: str
    port: int


@dataclass(frozen=True)
class _Reply:
    """The coordinator's token for one request: the shell's token plus how to answer it."""

    token: Any
    api_key: int
    version: int


def ms(value: Any) -> int:
    """kio timedelta fields as milliseconds (ints pass through)."""
    total = getattr(value, "total_seconds", None)
    return round(total() * 1000) if total is not None else int(value)


class GroupApi:
    def __init__(self, coordinator: GroupCoordinator, node: Callable[[], Node]) -> None:
        self.coordinator = coordinator
        self.node = node

    # -- entry points -------------------------------------------------------------------------

    def handle(
        self,
        token: Any,
        api_key: int,
        version: int,
        body: Any,
        now_ms: int,
        client_id: str = "",
        client_host: str = "",
    ) -> Output:
        reply = _Reply(token, api_key, version)
        c = self.coordinator
        if api_key == ApiKey.JOIN_GROUP:
            return self._convert(c.join_group(reply, self._join_request(body, version, client_id,
                                                                        client_host), now_ms))
        if api_key == ApiKey.SYNC_GROUP:
            if version >= 5 and (body.protocol_type is None or body.protocol_name is None):
                # Mandatory from v5 on; Kafka refuses before looking at the group.
                error = SyncResult(ErrorCode.inconsistent_group_protocol)
                return Output(replies=[(token, response_body(api_key, version, error))])
            return self._convert(c.sync_group(reply, self._sync_request(body), now_ms))
        if api_key == ApiKey.HEARTBEAT:
            return self._convert(
                c.heartbeat(reply, body.group_id, body.member_id, int(body.generation_id),
                            now_ms, getattr(body, "group_instance_id", None))
            )
        if api_key == ApiKey.LEAVE_GROUP:
            if version < 3:
                members = [(body.member_id, None)]
            else:
                members = [(m.member_id, m.group_instance_id) for m in body.members]
            return self._convert(c.leave_group(reply, body.group_id, members, now_ms))
        if api_key == ApiKey.OFFSET_COMMIT:
            return self._convert(self._commit(reply, body, version, now_ms))
        if api_key == ApiKey.DELETE_GROUPS:
            return self._convert(c.delete_groups(reply, list(body.groups_names)))
        if api_key == ApiKey.OFFSET_DELETE:
            partitions = [(t.name, int(p.partition_index)) for t in body.topics
                          for p in t.partitions]
            return self._convert(c.delete_offsets(reply, body.group_id, partitions))
        if api_key == ApiKey.OFFSET_FETCH:
            return Output(replies=[(token, self._offset_fetch(body, version))])
        if api_key == ApiKey.FIND_COORDINATOR:
            return Output(replies=[(token, self._find_coordinator(body, version))])
        if api_key == ApiKey.DESCRIBE_GROUPS:
            result = c.describe_groups(list(body.groups), version)
            return Output(replies=[(token, describe_body(result))])
        if api_key == ApiKey.LIST_GROUPS:
            listed = c.list_groups(
                getattr(body, "states_filter", ()) or (), getattr(body, "types_filter", ()) or ()
            )
            return Output(replies=[(token, list_body(listed))])
        raise ValueError(f"API key {api_key} is not a group API")

    def tick(self, now_ms: int) -> Output:
        return self._convert(self.coordinator.tick(now_ms))

    def _convert(self, out: Output) -> Output:
        replies = []
        for reply, result in out.replies:
            assert isinstance(reply, _Reply)
            replies.append((reply.token, response_body(reply.api_key, reply.version, result)))
        return Output(records=out.records, replies=replies)

    # -- requests -----------------------------------------------------------------------------

    @staticmethod
    def _join_request(body: Any, version: int, client_id: str, client_host: str) -> JoinRequest:
        session = ms(body.session_timeout)
        rebalance = ms(body.rebalance_timeout) if version >= 1 else session
        return JoinRequest(
            group_id=body.group_id,
            member_id=body.member_id,
            protocol_type=body.protocol_type,
            protocols=tuple((p.name, bytes(p.metadata)) for p in body.protocols),
            session_timeout_ms=session,
            rebalance_timeout_ms=rebalance,
            group_instance_id=getattr(body, "group_instance_id", None),
            client_id=client_id,
            client_host=client_host,
            version=version,
            reason=getattr(body, "reason", None),
        )

    @staticmethod
    def _sync_request(body: Any) -> SyncRequest:
        return SyncRequest(
            group_id=body.group_id,
            generation_id=int(body.generation_id),
            member_id=body.member_id,
            assignments=tuple((a.member_id, bytes(a.assignment)) for a in body.assignments),
            group_instance_id=getattr(body, "group_instance_id", None),
            protocol_type=getattr(body, "protocol_type", None),
            protocol_name=getattr(body, "protocol_name", None),
        )

    def _commit(self, reply: _Reply, body: Any, version: int, now_ms: int) -> Output:
        partitions = [
            CommitPartition(
                topic=t.name,
                partition=int(p.partition_index),
                offset=int(p.committed_offset),
                metadata=p.committed_metadata,
                leader_epoch=int(getattr(p, "committed_leader_epoch", -1)),
            )
            for t in body.topics
            for p in t.partitions
        ]
        return self.coordinator.commit_offsets(
            reply,
            body.group_id,
            int(body.generation_id_or_member_epoch),
            body.member_id,
            partitions,
            now_ms,
            getattr(body, "group_instance_id", None),
            version,
        )

    def _offset_fetch(self, body: Any, version: int) -> dict[str, Any]:
        c = self.coordinator
        if version < 8:
            topics = _fetch_topics(body.topics)
            return fetch_body_single(c.fetch_offsets(body.group_id, topics))
        groups = [c.fetch_offsets(g.group_id, _fetch_topics(g.topics)) for g in body.groups]
        return {"throttle_time": 0, "groups": [fetch_group_body(r) for r in groups]}

    def _find_coordinator(self, body: Any, version: int) -> dict[str, Any]:
        node = self.node()
        key_type = int(getattr(body, "key_type", COORDINATOR_KEY_GROUP))

        def entry(key: str) -> dict[str, Any]:
            if key_type != COORDINATOR_KEY_GROUP:
                # Transactions are not supported: no transaction coordinator exists.
                return {"key": key, "node_id": -1, "host": "", "port": -1,
                        "error_code": ErrorCode.coordinator_not_available,
                        "error_message": "hayase has no transaction coordinator"}
            return {"key": key, "node_id": node.node_id, "host": node.host, "port": node.port,
                    "error_code": ErrorCode.none, "error_message": None}

        if version < 4:
            single = entry(body.key)
            return {"throttle_time": 0, **single}
        return {"throttle_time": 0, "coordinators": [entry(k) for k in body.coordinator_keys]}


def _fetch_topics(topics: Any) -> list[tuple[str, list[int]]] | None:
    if topics is None:
        return None
    return [(t.name, [int(p) for p in t.partition_indexes]) for t in topics]


# -- responses -----------------------------------------------------------------------------------


def response_body(api_key: int, version: int, result: Any) -> dict[str, Any]:
    if api_key == ApiKey.JOIN_GROUP:
        assert isinstance(result, JoinResult)
        return join_body(result, version)
    if api_key == ApiKey.SYNC_GROUP:
        assert isinstance(result, SyncResult)
        return {
            "throttle_time": 0,
            "error_code": result.error,
            "protocol_type": result.protocol_type,
            "protocol_name": result.protocol_name,
            "assignment": result.assignment,
        }
    if api_key == ApiKey.HEARTBEAT:
        assert isinstance(result, HeartbeatResult)
        return {"throttle_time": 0, "error_code": result.error}
    if api_key == ApiKey.LEAVE_GROUP:
        assert isinstance(result, LeaveResult)
        return leave_body(result, version)
    if api_key == ApiKey.OFFSET_COMMIT:
        assert isinstance(result, CommitResult)
        return commit_body(result)
    if api_key == ApiKey.DELETE_GROUPS:
        assert isinstance(result, DeleteResult)
        return {
            "throttle_time": 0,
            "results": [{"group_id": g, "error_code": e} for g, e in result.results],
        }
    if api_key == ApiKey.OFFSET_DELETE:
        assert isinstance(result, OffsetDeleteResult)
        return {"throttle_time": 0, "error_code": result.error,
                "topics": _topics_body(result.partitions)}
    raise ValueError(f"no deferred answers for API key {api_key}")


def join_body(r: JoinResult, version: int) -> dict[str, Any]:
    protocol_name = r.protocol_name
    if version < 7 and protocol_name is None:
        protocol_name = ""  # not nullable before v7
    return {
        "throttle_time": 0,
        "error_code": r.error,
        "generation_id": r.generation_id,
        "protocol_type": r.protocol_type,
        "protocol_name": protocol_name,
        "leader": r.leader,
        "skip_assignment": r.skip_assignment,
        "member_id": r.member_id,
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id,
             "metadata": m.metadata}
            for m in r.members
        ],
    }


def leave_body(r: LeaveResult, version: int) -> dict[str, Any]:
    if version < 3:
        error = r.error
        if error is ErrorCode.none and r.members:
            error = r.members[0].error
        return {"throttle_time": 0, "error_code": error}
    return {
        "throttle_time": 0,
        "error_code": r.error,
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id,
             "error_code": m.error}
            for m in r.members
        ],
    }


def _topics_body(partitions: tuple[PartitionError, ...]) -> list[dict[str, Any]]:
    """Per-partition error codes grouped by topic (OffsetCommit, OffsetDelete)."""
    topics: dict[str, list[dict[str, Any]]] = {}
    for p in partitions:
        topics.setdefault(p.topic, []).append(
            {"partition_index": p.partition, "error_code": p.error}
        )
    return [{"name": name, "partitions": parts} for name, parts in topics.items()]


def commit_body(r: CommitResult) -> dict[str, Any]:
    return {"throttle_time": 0, "topics": _topics_body(r.partitions)}


def _fetch_topics_body(r: FetchResult) -> list[dict[str, Any]]:
    topics: dict[str, list[dict[str, Any]]] = {}
    for p in r.partitions:
        topics.setdefault(p.topic, []).append(
            {
                "partition_index": p.partition,
                "committed_offset": p.offset,
                "committed_leader_epoch": p.leader_epoch,
                "metadata": p.metadata,
                "error_code": p.error,
            }
        )
    return [{"name": name, "partitions": parts} for name, parts in topics.items()]


def fetch_body_single(r: FetchResult) -> dict[str, Any]:
    return {"throttle_time": 0, "topics": _fetch_topics_body(r), "error_code": r.error}


def fetch_group_body(r: FetchResult) -> dict[str, Any]:
    return {"group_id": r.group_id, "topics": _fetch_topics_body(r), "error_code": r.error}


def describe_body(r: DescribeResult) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "groups": [
            {
                "error_code": g.error,
                "error_message": g.error_message,
                "group_id": g.group_id,
                "group_state": g.state,
                "protocol_type": g.protocol_type,
                "protocol_data": g.protocol_data,
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "member_metadata": m.metadata,
                        "member_assignment": m.assignment,
                    }
                    for m in g.members
                ],
                "authorized_operations": NO_AUTHORIZED_OPERATIONS,
            }
            for g in r.groups
        ],
    }


def list_body(r: ListResult) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "error_code": r.error,
        "groups": [
            {"group_id": g.group_id, "protocol_type": g.protocol_type, "group_state": g.state,
             "group_type": "classic"}
            for g in r.groups
        ],
    }
