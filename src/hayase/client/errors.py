"""Errors the client helpers raise for the user to read: each carries a complete sentence and is
shown without a traceback by the CLI."""

from __future__ import annotations


class ClientError(Exception):
    """A failure explained in its message (bad input, broker unreachable, topic missing)."""


class BrokerUnreachable(ClientError):
    def __init__(self, bootstrap_servers: object, detail: str = "") -> None:
        msg = f"cannot reach a Kafka broker at {bootstrap_servers}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg + "; is the broker running? (set --bootstrap-servers)")


class TopicNotFound(ClientError):
    def __init__(self, topic: str) -> None:
        super().__init__(
            f"topic {topic!r} does not exist (create it with `hayase topic create {topic}`)")
        self.topic = topic
