"""The plug for the consumer-group APIs.

The network shell routes API keys 8-16 (OffsetCommit, OffsetFetch, FindCoordinator, JoinGroup,
Heartbeat, LeaveGroup, SyncGroup, DescribeGroups, ListGroups) and 42 (DeleteGroups) to one
object implementing `GroupApiHandler`. Without one installed, those APIs are not advertised in
ApiVersions and requests for them close the connection (like any unsupported API).

How to wire one in: expose a factory `create_group_handler(broker: BrokerState) ->
GroupApiHandler` in `hayase.broker.coordinator` (its `__init__` or any module it re-exports).
`hayase broker` calls it at start-up when it exists; tests can pass `group_handler=` to
`BrokerState` directly. The broker state gives the handler what it needs: `broker.log_manager`
(to create and append to `__consumer_offsets`), `broker.config` (Kafka property names, e.g.
`offsets.topic.num.partitions`, `group.initial.rebalance.delay.ms`), `broker.node_id`,
`broker.advertised` (host/port to return from FindCoordinator) and `broker.clock()` (ms).

Contract of `handle`:

* called on the event loop, in per-connection request order, with the request's
  `RequestContext` (header: api key, version, correlation id, client id; connection peer) and
  the request body as the kio entity of that exact API version (`kio.schema.<api>.v<N>.request`);
* returns the response body, one of: a dict tree with kio's field names (the union of all
  versions' fields is fine, each version writes only its own: e.g. `{"throttle_time": 0,
  "error_code": 0, "groups": [...]}`; ints are fine for error codes and ms durations), or a kio
  response entity of that version, or an awaitable resolving to either (JoinGroup and SyncGroup
  park until the rebalance completes: return a coroutine, the connection's later responses wait
  for it, as Kafka orders responses per connection);
* exceptions are logged and close that connection only; the broker keeps running. Return error
  codes for expected failures (NOT_COORDINATOR, UNKNOWN_MEMBER_ID, ...), never raise them.

`start()` runs once the event loop runs (spawn timers for session timeouts there) and `close()`
at shutdown, before the LogManager closes.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hayase.broker.context import RequestContext


@runtime_checkable
class GroupApiHandler(Protocol):
    def api_versions(self) -> dict[int, tuple[int, int]]:
        """API key -> (min, max) version this handler serves; a subset of the group keys
        (see `hayase.broker.protocol.versions.RECOMMENDED_GROUP_API_VERSIONS`)."""
        ...

    def handle(self, ctx: RequestContext, body: Any) -> Any | Awaitable[Any]:
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
