"""From a request frame to a response frame: decode, route to the API's handler, encode.

Synchronous core used by the network shell. A handler returns the response body (a dict tree
with kio's field names, or a kio entity), None for no response (Produce with acks=0), or an
awaitable of a body (long-poll Fetch, Produce waiting for fsync, JoinGroup...). Anything that
goes wrong while decoding or handling raises `FrameError`, and the shell closes that one
connection with a log line.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hayase.broker.apis.admin import (
    handle_alter_configs,
    handle_create_partitions,
    handle_create_topics,
    handle_delete_topics,
    handle_describe_configs,
    handle_incremental_alter_configs,
    handle_init_producer_id,
)
from hayase.broker.apis.cluster import (
    handle_api_versions,
    handle_describe_cluster,
    handle_describe_topic_partitions,
    handle_metadata,
)
from hayase.broker.apis.fetch import handle_fetch
from hayase.broker.apis.log_dirs import handle_describe_log_dirs
from hayase.broker.apis.offsets import (
    handle_delete_records,
    handle_list_offsets,
    handle_offset_for_leader_epoch,
)
from hayase.broker.apis.produce import handle_produce
from hayase.broker.apis.quotas import handle_alter_client_quotas, handle_describe_client_quotas
from hayase.broker.apis.replicas import (
    handle_alter_partition_reassignments,
    handle_elect_leaders,
    handle_list_partition_reassignments,
)
from hayase.broker.apis.security import (
    handle_create_acls,
    handle_delete_acls,
    handle_describe_acls,
    handle_describe_user_scram_credentials,
)
from hayase.broker.context import BrokerState, CloseConnection, RequestContext
from hayase.broker.protocol.frames import (
    RequestHeader,
    UnsupportedVersionError,
    api_versions_fallback,
    encode_response,
    parse_request,
    request_schema,
    response_schema,
)
from hayase.broker.protocol.schema_codec import DecodeError, entity_reader, entity_writer
from hayase.broker.protocol.versions import GROUP_API_KEYS, ApiKey

log = logging.getLogger("hayase.broker")

Handler = Callable[[RequestContext, Any], Any]

HANDLERS: dict[int, Handler] = {
    ApiKey.PRODUCE: handle_produce,
    ApiKey.FETCH: handle_fetch,
    ApiKey.LIST_OFFSETS: handle_list_offsets,
    ApiKey.METADATA: handle_metadata,
    ApiKey.API_VERSIONS: handle_api_versions,
    ApiKey.CREATE_TOPICS: handle_create_topics,
    ApiKey.DELETE_TOPICS: handle_delete_topics,
    ApiKey.INIT_PRODUCER_ID: handle_init_producer_id,
    ApiKey.OFFSET_FOR_LEADER_EPOCH: handle_offset_for_leader_epoch,
    ApiKey.DESCRIBE_CONFIGS: handle_describe_configs,
    ApiKey.DESCRIBE_LOG_DIRS: handle_describe_log_dirs,
    ApiKey.CREATE_PARTITIONS: handle_create_partitions,
    ApiKey.DESCRIBE_CLUSTER: handle_describe_cluster,
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: handle_describe_topic_partitions,
    ApiKey.DESCRIBE_ACLS: handle_describe_acls,
    ApiKey.CREATE_ACLS: handle_create_acls,
    ApiKey.DELETE_ACLS: handle_delete_acls,
    ApiKey.DESCRIBE_CLIENT_QUOTAS: handle_describe_client_quotas,
    ApiKey.ALTER_CLIENT_QUOTAS: handle_alter_client_quotas,
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: handle_describe_user_scram_credentials,
    ApiKey.ALTER_CONFIGS: handle_alter_configs,
    ApiKey.DELETE_RECORDS: handle_delete_records,
    ApiKey.INCREMENTAL_ALTER_CONFIGS: handle_incremental_alter_configs,
    ApiKey.ELECT_LEADERS: handle_elect_leaders,
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: handle_alter_partition_reassignments,
    ApiKey.LIST_PARTITION_REASSIGNMENTS: handle_list_partition_reassignments,
}

Outcome = bytes | None | Awaitable[bytes | None]
Observer = Callable[[int, float, int, int], None]  # api_key, seconds, bytes in, bytes out


class FrameError(Exception):
    """The connection must be closed (malformed or unsupported request, handler failure)."""


def _handler_failed(header: RequestHeader, e: Exception) -> FrameError:
    """Log a handler's exception (call it inside the except block); the FrameError closes this
    connection only."""
    log.exception("handler for API %d v%d failed (client %r)", header.api_key,
                  header.api_version, header.client_id)
    return FrameError(f"handler failed: {e!r}")


def warm_codecs(supported: dict[int, tuple[int, int]]) -> None:
    """Load and compile every served version's codecs now, not on a first request (which
    would pay the import and compile time, and could fail for lack of file descriptors)."""
    for api_key, (lo, hi) in supported.items():
        for version in range(lo, hi + 1):
            entity_reader(request_schema(api_key, version))
            entity_writer(response_schema(api_key, version))


class Dispatcher:
    def __init__(self, broker: BrokerState, observer: Observer | None = None) -> None:
        self.broker = broker
        self.observer = observer
        warm_codecs(broker.supported)

    def dispatch(self, frame: bytes, peer: str = "") -> Outcome:
        """The response frame (with size prefix), None, or an awaitable of either."""
        started = time.perf_counter()
        broker = self.broker
        try:
            request = parse_request(frame, broker.supported)
        except UnsupportedVersionError as e:
            h = e.header
            if h.api_key == ApiKey.API_VERSIONS:
                return api_versions_fallback(h.correlation_id, broker.supported)
            raise FrameError(f"unsupported API key {h.api_key} version {h.api_version} "
                             f"(client {h.client_id!r})") from None
        except DecodeError as e:
            raise FrameError(f"malformed request: {e}") from None
        except Exception as e:
            log.exception("decoding a request failed unexpectedly")
            raise FrameError(f"request decoding failed: {e!r}") from None
        header = request.header
        handler = self._handler_for(header.api_key)
        ctx = RequestContext(broker, header, peer)
        try:
            result = handler(ctx, request.body)
        except CloseConnection as e:
            raise FrameError(str(e)) from None
        except Exception as e:
            raise _handler_failed(header, e) from None
        if inspect.isawaitable(result):
            inner = asyncio.ensure_future(result)
            outer = asyncio.ensure_future(self._finish(header, inner, started, len(frame)))
            # a closed connection cancels the response; the handler's work stops with it
            outer.add_done_callback(lambda f: inner.cancel() if f.cancelled() else None)
            return outer
        return self._encode(header, result, started, len(frame))

    def _handler_for(self, api_key: int) -> Handler:
        if api_key in GROUP_API_KEYS:
            gh = self.broker.group_handler
            assert gh is not None  # not advertised (so parse_request refused it) without one
            return gh.handle
        return HANDLERS[api_key]

    def _encode(self, header: RequestHeader, body: Any, started: float,
                size_in: int) -> bytes | None:
        if body is None:
            out = None
        else:
            try:
                out = encode_response(header.api_key, header.api_version, header.correlation_id,
                                      body)
            except Exception as e:
                log.exception("encoding the response to API %d v%d failed", header.api_key,
                              header.api_version)
                raise FrameError(f"response encoding failed: {e!r}") from None
        if self.observer is not None:
            self.observer(header.api_key, time.perf_counter() - started, size_in,
                          len(out) if out else 0)
        return out

    async def _finish(self, header: RequestHeader, pending: Awaitable[Any], started: float,
                      size_in: int) -> bytes | None:
        try:
            body = await pending
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise _handler_failed(header, e) from None
        return self._encode(header, body, started, size_in)
