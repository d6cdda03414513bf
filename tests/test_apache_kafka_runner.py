"""The Apache Kafka runner that the `apache` backend and the benchmarks use."""

from confluent_kafka.admin import AdminClient


def test_apache_kafka_answers_metadata(apache_kafka):
    md = AdminClient({"bootstrap.servers": apache_kafka.bootstrap_servers}).list_topics(timeout=10)
    assert len(md.brokers) == 1


def test_jmx_reads_request_handler_idle(apache_kafka):
    from hayase.testing import jmx

    port = apache_kafka.cluster.nodes[0].jmx_port
    idle = jmx.request_handler_idle(port)
    # A meter's one-minute rate: about 1.0 when idle once warmed up; it overshoots at start.
    assert isinstance(idle, float) and idle >= 0.0
    missing = jmx.read(port, [("kafka.server:type=NoSuchThing", "Value")])
    assert str(missing[("kafka.server:type=NoSuchThing", "Value")]).startswith("ERROR")


def test_a_node_restarts_on_its_own_port_and_data(apache_kafka, topic_name):
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": apache_kafka.bootstrap_servers})
    p.produce(topic_name, b"before")
    assert p.flush(30) == 0
    apache_kafka.cluster.stop_node(0)
    apache_kafka.cluster.start_node(0)
    apache_kafka.cluster.wait_ready(180)  # a JVM restart on a loaded 2-core machine
    md = AdminClient({"bootstrap.servers": apache_kafka.bootstrap_servers}).list_topics(timeout=10)
    assert topic_name in md.topics


def test_a_first_start_moves_off_a_port_taken_meanwhile():
    """Ports are chosen free and bound later by the JVM; another process may take one in
    between. The first start then retries on fresh ports instead of failing."""
    import socket

    import pytest

    from hayase.testing.brokers import ApacheBackend, apache_available

    reason = apache_available()
    if reason:
        pytest.skip(reason)
    backend = ApacheBackend(nodes=1)
    taken = backend.cluster.nodes[0].port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        try:
            backend.start(timeout=180)
            assert backend.cluster.nodes[0].port != taken
            md = AdminClient({"bootstrap.servers": backend.bootstrap_servers}).list_topics(
                timeout=10)
            assert len(md.brokers) == 1
        finally:
            backend.kill()
            backend.cleanup()
