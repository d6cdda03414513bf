"""`hayase broker`: options, config files, errors, the connect line and SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import AdminClient

from hayase.cli.commands.broker import command
from hayase.testing.apache_kafka import free_port
from hayase.testing.brokers import _wait_port


@pytest.mark.parametrize(("args", "message"), [
    (["--config", "no-equals-sign"], "is not name=value"),
    (["--config", "hayase.durability=sometimes"], "hayase.durability must be one of"),
    (["--config", "listeners=nonsense"], "cannot parse listener"),
    (["--config", "num.partitions=many"], "num.partitions must be an integer"),
])
def test_bad_configuration_is_a_clear_error(tmp_path: Path, args: list[str],
                                            message: str) -> None:
    result = CliRunner().invoke(command, ["--data-dir", str(tmp_path), *args])
    assert result.exit_code != 0
    assert message in result.output


@pytest.mark.integration
def test_config_file_advertised_listener_and_sigterm(tmp_path: Path) -> None:
    port = free_port()
    props = tmp_path / "server.properties"
    props.write_text(f"# a Kafka server.properties\nlisteners=PLAINTEXT://127.0.0.1:{port}\n"
                     f"advertised.listeners=PLAINTEXT://localhost:{port}\nnum.partitions=3\n")
    log_path = tmp_path / "broker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hayase", "broker", "--data-dir",
                                 str(tmp_path / "data"), "--config-file", str(props)],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc, log_path, 30)
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        md = admin.list_topics("auto-three", timeout=10)
        assert len(md.topics["auto-three"].partitions) == 3  # num.partitions from the file
        assert [(b.host, b.port) for b in md.brokers.values()] == [("localhost", port)]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    text = log_path.read_text()
    assert code == 0
    assert f"connect with bootstrap.servers=localhost:{port}" in text
    assert "stopped cleanly" in text


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "hayase", "broker", "--data-dir",
                              str(tmp_path), "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert f"127.0.0.1:{port}" in run.stderr
    assert "Traceback" not in run.stderr
