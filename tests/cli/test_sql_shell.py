"""`hayase sql`: the shell driven through prompt_toolkit's input pipe against a live server
(in-memory backend on a real socket), and `hayase sql -f FILE`."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner
from prompt_toolkit import PromptSession
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from hayase.cli.commands.sql import Shell, command, repl, statement_complete
from hayase.client.ksql import KsqlClient
from hayase.server.app import KsqlApp
from hayase.server.backend import MemoryBackend
from hayase.server.engine import KsqlServer


@pytest.fixture
def server_url() -> Iterator[str]:
    server = KsqlServer(MemoryBackend())
    # Bound here and handed to uvicorn: a port released and bound again later can be taken.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(KsqlApp(server), host="127.0.0.1", port=port,
                                       log_level="error"))
    t = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        assert time.monotonic() < deadline, "the server never started"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    t.join(60)
    sock.close()
    server.close()


def _drive(url: str, typed: str) -> str:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    with create_pipe_input() as inp, KsqlClient(url) as client:
        inp.send_text(typed)
        session: PromptSession[str] = PromptSession(input=inp, output=DummyOutput())
        repl(Shell(client, console), session)
    return out.getvalue()


def test_statement_complete() -> None:
    assert statement_complete("SHOW STREAMS;")
    assert not statement_complete("SELECT 'a;b'")
    assert statement_complete("SELECT 'a;b' FROM X;  -- done")
    assert not statement_complete("CREATE STREAM S (\n A INT")


def test_multiline_statements_tables_and_queries(server_url: str) -> None:
    typed = ("CREATE STREAM S (K STRING KEY, ID INT)\n"
             "  WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);\n"
             "INSERT INTO S (K, ID) VALUES ('a', 1);\n"
             "INSERT INTO S (K, ID) VALUES ('b', 2);\n"
             "SHOW STREAMS;\n"
             "SELECT * FROM S;\n"
             "SET 'auto.offset.reset'='earliest';\n"
             "SELECT K, ID FROM S EMIT CHANGES LIMIT 2;\n"
             "DESCRIBE NOPE;\n"
             "exit\n")
    text = _drive(server_url, typed)
    assert "Stream created" in text
    assert "Stream Name" in text and "│ S " in text
    assert "Query terminated: 2 row(s)" in text
    assert "|a              |1              |" in text  # the push query's rows
    assert "Limit Reached" in text
    assert "Could not find STREAM/TABLE 'NOPE'" in text


def test_completion_knows_keywords_and_names(server_url: str) -> None:
    from prompt_toolkit.document import Document

    with KsqlClient(server_url) as client:
        shell = Shell(client, Console(file=io.StringIO()))
        shell.run("CREATE STREAM PAGEVIEWS (K STRING KEY) WITH (KAFKA_TOPIC='p', "
                  "VALUE_FORMAT='JSON', PARTITIONS=1);")
        assert "PAGEVIEWS" in shell.names
        captured: list[str] = []

        class Session:
            def prompt(self, message: str, completer: object) -> str:
                if not captured:
                    doc = Document("SELECT * FROM PAGE")
                    comps = completer.get_completions(doc, None)  # type: ignore[attr-defined]
                    captured.extend(c.text for c in comps)
                    doc = Document("sel")
                    comps = completer.get_completions(doc, None)  # type: ignore[attr-defined]
                    captured.extend(c.text for c in comps)
                raise EOFError

        repl(shell, Session())
        assert captured == ["PAGEVIEWS", "SELECT"]


def test_sql_file(server_url: str, tmp_path: Path) -> None:
    f = tmp_path / "s.sql"
    f.write_text("CREATE STREAM S (K STRING KEY, ID INT) WITH (KAFKA_TOPIC='s', "
                 "VALUE_FORMAT='JSON', PARTITIONS=1);\nINSERT INTO S (K, ID) VALUES ('z', 7);\n"
                 "SELECT * FROM S;\n")
    result = CliRunner().invoke(command, ["--server", server_url, "-f", str(f)])
    assert result.exit_code == 0, result.output
    assert "Stream created" in result.output and "z" in result.output
    bad = tmp_path / "bad.sql"
    bad.write_text("DROP STREAM NOPE;\n")
    result = CliRunner().invoke(command, ["--server", server_url, "-f", str(bad)])
    assert result.exit_code == 1
