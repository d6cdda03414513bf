"""Security APIs of a broker without security: DescribeAcls, CreateAcls, DeleteAcls answer
SECURITY_DISABLED, as an Apache Kafka broker without `authorizer.class.name` does (kafka-acls
then says "No Authorizer is configured on the broker"); DescribeUserScramCredentials finds no
credentials (hayase has no SASL), so kafka-configs --entity-type users --describe works."""

from __future__ import annotations

from typing import Any

from hayase.broker.context import RequestContext

SECURITY_DISABLED = 54
_MESSAGE = "No Authorizer is configured on the broker"


def handle_describe_acls(ctx: RequestContext, body: Any) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": SECURITY_DISABLED, "error_message": _MESSAGE,
            "resources": ()}


def handle_create_acls(ctx: RequestContext, body: Any) -> dict[str, Any]:
    return {"throttle_time": 0, "results": [
        {"error_code": SECURITY_DISABLED, "error_message": _MESSAGE} for _ in body.creations]}


def handle_delete_acls(ctx: RequestContext, body: Any) -> dict[str, Any]:
    return {"throttle_time": 0, "filter_results": [
        {"error_code": SECURITY_DISABLED, "error_message": _MESSAGE, "matching_acls": ()}
        for _ in body.filters]}


RESOURCE_NOT_FOUND = 91


def handle_describe_user_scram_credentials(ctx: RequestContext, body: Any) -> dict[str, Any]:
    """No user has credentials: all users = none listed; a named one is not found."""
    return {"throttle_time": 0, "error_code": 0, "error_message": None, "results": [
        {"user": u.name, "error_code": RESOURCE_NOT_FOUND,
         "error_message": f"Attempt to describe a user credential that does not exist: "
                          f"{u.name}", "credential_infos": ()}
        for u in body.users or ()]}
