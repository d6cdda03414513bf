"""The Apache Kafka runner that the `apache` backend and the benchmarks use."""

from confluent_kafka.admin import AdminClient


def test_apache_kafka_answers_metadata(apache_kafka):
    md = AdminClient({"bootstrap.servers": apache_kafka.bootstrap_servers}).list_topics(timeout=10)
    assert len(md.brokers) == 1
