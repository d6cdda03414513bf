"""DescribeClientQuotas and AlterClientQuotas: hayase enforces no client quotas. Describing
finds none (what kafka-configs --entity-type clients/users --describe shows on a Kafka cluster
without quotas); setting one is refused per entity with a message saying so, rather than
accepted and silently not enforced."""

from __future__ import annotations

from typing import Any

from hayase.broker.apis.common import INVALID_REQUEST, NONE
from hayase.broker.context import RequestContext


def handle_describe_client_quotas(ctx: RequestContext, body: Any) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "entries": ()}


def handle_alter_client_quotas(ctx: RequestContext, body: Any) -> dict[str, Any]:
    return {"throttle_time": 0, "entries": [
        {"error_code": INVALID_REQUEST,
         "error_message": "hayase does not enforce client quotas",
         "entity": [{"entity_type": e.entity_type, "entity_name": e.entity_name}
                    for e in entry.entity]}
        for entry in body.entries]}
