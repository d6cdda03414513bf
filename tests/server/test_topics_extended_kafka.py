"""SHOW TOPICS EXTENDED over Kafka (both brokers): the consumer groups and members reading each
topic, as the cluster's group coordinator describes them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from server_helpers import kafka_backend, serve, wait_until

from hayase.client.ksql import KsqlClient
from hayase.testing.brokers import Backend as Broker


def test_show_topics_extended_counts_consumers(kafka: Broker, tmp_path: Path) -> None:
    sid = f"x{uuid.uuid4().hex[:8]}_"
    backend = kafka_backend(kafka, sid, tmp_path / "state")
    running, stop = serve(backend, service_id=sid)
    source, idle = f"s-{sid}", f"u-{sid}"
    try:
        with KsqlClient(running.url, timeout=60) as c:
            c.ksql(f"CREATE STREAM S (K STRING KEY, ID INT) WITH (KAFKA_TOPIC='{source}', "
                   "VALUE_FORMAT='JSON', PARTITIONS=2);"
                   f"CREATE STREAM U (ID INT) WITH (KAFKA_TOPIC='{idle}', VALUE_FORMAT='JSON', "
                   "PARTITIONS=1);"
                   f"CREATE STREAM S2 WITH (KAFKA_TOPIC='s2-{sid}') AS SELECT * FROM S;")

            def topics() -> dict[str, Any]:
                entity = c.ksql("SHOW TOPICS EXTENDED;")[0]
                assert entity["@type"] == "kafka_topics_extended"
                return {t["name"]: t for t in entity["topics"]}

            # The query's group has joined once its member holds the source's partitions.
            assert wait_until(lambda: topics()[source]["consumerGroupCount"] == 1, 60)
            shown = topics()
            assert shown[source]["consumerCount"] == 1
            assert len(shown[source]["replicaInfo"]) == 2
            assert (shown[idle]["consumerCount"], shown[idle]["consumerGroupCount"]) == (0, 0)
    finally:
        stop()
