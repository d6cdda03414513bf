"""`hayase sql`: an interactive SQL shell for a ksqlDB-compatible server, like ksqlDB's CLI.

History (~/.hayase_sql_history), completion of keywords and stream/table names, multi-line
statements ending with ';', results as tables, push queries streaming until LIMIT or Ctrl-C.
`hayase sql -f FILE` runs a script; `--server URL` picks the server (default
http://127.0.0.1:8088). `SET 'prop'='value';` / `UNSET 'prop';` are kept by the shell and sent
with every request, as ksqlDB's CLI does; so are `DEFINE name = 'value';` / `UNDEFINE name;`
(sent as sessionVariables, and substituted for `${name}` in the shell's SELECTs).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from hayase.server.print_topic import is_print

KEYWORDS = [
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "PARTITION", "HAVING", "EMIT", "CHANGES", "FINAL",
    "LIMIT", "WINDOW", "TUMBLING", "HOPPING", "SESSION", "SIZE", "ADVANCE", "GRACE", "PERIOD",
    "JOIN", "LEFT", "RIGHT", "FULL", "OUTER", "INNER", "ON", "WITHIN", "AS", "AND", "OR", "NOT",
    "NULL", "IS", "IN", "LIKE", "BETWEEN", "CASE", "WHEN", "THEN", "ELSE", "END", "CAST",
    "CREATE", "OR", "REPLACE", "STREAM", "TABLE", "SOURCE", "WITH", "INSERT", "INTO", "VALUES",
    "DROP", "DELETE", "TOPIC", "IF", "EXISTS", "SHOW", "LIST", "STREAMS", "TABLES", "TOPICS",
    "QUERIES", "PROPERTIES", "FUNCTIONS", "TYPES", "VARIABLES", "DESCRIBE", "EXTENDED",
    "EXPLAIN", "TERMINATE", "PAUSE", "RESUME", "FUNCTION", "PRINT", "BEGINNING", "INTERVAL",
    "ALL", "SET", "UNSET", "DEFINE", "UNDEFINE", "KEY", "PRIMARY",
    "KAFKA_TOPIC", "VALUE_FORMAT", "KEY_FORMAT", "FORMAT", "PARTITIONS", "REPLICAS",
    "TIMESTAMP", "TIMESTAMP_FORMAT", "INT", "INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "STRING",
    "VARCHAR", "BOOLEAN", "BYTES", "DATE", "TIME", "ARRAY", "MAP", "STRUCT", "EXIT", "QUIT",
]

_SET = re.compile(r"^\s*SET\s+'([^']+)'\s*=\s*'([^']*)'\s*;?\s*$", re.IGNORECASE)
_UNSET = re.compile(r"^\s*UNSET\s+'([^']+)'\s*;?\s*$", re.IGNORECASE)
_DEFINE = re.compile(r"^\s*DEFINE\s+(\w+)\s*=\s*'((?:[^']|'')*)'\s*;?\s*$",
                     re.IGNORECASE | re.DOTALL)
_UNDEFINE = re.compile(r"^\s*UNDEFINE\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_VARIABLE = re.compile(r"\$\{\s*(\w+)\s*\}")


def statement_complete(text: str) -> bool:
    """True when ``text`` ends with ';' outside quotes and comments (a statement to send)."""
    quote: str | None = None
    last = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
        elif text.startswith("--", i):
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl
            continue
        if not ch.isspace() and quote is None:
            last = ch
        i += 1
    return quote is None and last == ";"


def _cell(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, dict | list):
        return json.dumps(v)
    return str(v)


class Shell:
    """Sends statements to the server and renders the answers with rich."""

    def __init__(self, client: Any, console: Any) -> None:
        self.client = client
        self.console = console
        self.properties: dict[str, str] = {}
        self.variables: dict[str, str] = {}  # DEFINE'd, names upper-case as the server's
        self.names: set[str] = set()

    # ------------------------------------------------------------------ running
    def run(self, statement: str) -> bool:
        """Run one statement; returns False when it failed."""
        from hayase.client.ksql import KsqlServerError

        text = statement.strip()
        if not text or text == ";":
            return True
        m = _SET.match(text)
        if m:
            self.properties[m.group(1)] = m.group(2)
            self.console.print(f"Successfully changed local property '{m.group(1)}' to "
                               f"'{m.group(2)}'.")
            return True
        m = _UNSET.match(text)
        if m:
            self.properties.pop(m.group(1), None)
            self.console.print(f"Successfully unset local property '{m.group(1)}'.")
            return True
        if self._variable_statement(text):
            return True
        try:
            if re.match(r"^\s*SELECT\b", text, re.IGNORECASE):
                self._query(self._substitute(text))
            elif is_print(text):
                self._print(text)
            else:
                for entity in self.client.ksql(text, self.properties, self.variables):
                    self.render(entity)
                self.refresh_names()
        except KsqlServerError as e:
            self.console.print(f"[red]{e.message}[/red]", markup=True, highlight=False)
            return False
        except OSError as e:  # httpx transport errors derive from it only partly: see below
            self.console.print(f"[red]{e}[/red]")
            return False
        except Exception as e:
            import httpx

            if isinstance(e, httpx.HTTPError):
                self.console.print(f"[red]Could not reach the server: {e}[/red]")
                return False
            raise
        return True

    def _print(self, text: str) -> None:
        """PRINT: the topic's record lines from /query until LIMIT or Ctrl-C."""
        lines = self.client.print_topic(text, self.properties)
        try:
            for line in lines:
                self.console.print(line, highlight=False, markup=False)
        except KeyboardInterrupt:
            lines.close()  # leaves the stream, which closes the response
        self.console.print("Topic printing ceased", highlight=False)

    def _variable_statement(self, text: str) -> bool:
        """DEFINE / UNDEFINE, kept by the shell; False for any other statement."""
        m = _DEFINE.match(text)
        if m:
            self.variables[m.group(1).upper()] = m.group(2).replace("''", "'")
            return True
        m = _UNDEFINE.match(text)
        if m:
            if self.variables.pop(m.group(1).upper(), None) is None:
                self.console.print(f"Cannot undefine variable '{m.group(1)}' which was never "
                                   "defined", highlight=False)
            return True
        return False

    def _substitute(self, sql: str) -> str:
        """``${name}`` -> the DEFINE'd value (the query endpoints get the text substituted)."""
        from hayase.client.ksql import KsqlServerError

        def value(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.upper() not in self.variables:
                raise KsqlServerError(400, {"message": f"Cannot substitute variable '{name}': "
                                                       "not defined"})
            return self.variables[name.upper()]

        return _VARIABLE.sub(value, sql)

    def refresh_names(self) -> None:
        try:
            entities = self.client.ksql("SHOW STREAMS; SHOW TABLES;", self.properties)
        except Exception:  # completion is best effort
            return
        names = set()
        for e in entities:
            for s in e.get("streams", []) + e.get("tables", []):
                names.add(s["name"])
        self.names = names

    def _query(self, sql: str) -> None:
        from rich.table import Table

        push = re.search(r"\bEMIT\s+(CHANGES|FINAL)\b", sql, re.IGNORECASE) is not None
        if not push:
            header, rows = self.client.pull(sql, self.properties)
            table = Table(*[c.split("` ")[0].strip("`") for c in _split_schema(
                header.get("schema", ""))])
            for r in rows:
                table.add_row(*[_cell(v) for v in r])
            self.console.print(table)
            self.console.print(f"Query terminated: {len(rows)} row(s)")
            return
        stream = self.client.stream(sql, self.properties)
        count = 0
        try:
            self.console.print("|" + "|".join(f"{c:^15}" for c in stream.columns) + "|",
                               highlight=False)
            for row in stream:
                self.console.print("|" + "|".join(f"{_cell(v):<15}" for v in row) + "|",
                                   highlight=False)
                count += 1
            self.console.print(f"Limit Reached\nQuery terminated: {count} row(s)")
        except KeyboardInterrupt:
            self.console.print(f"Query terminated: {count} row(s)")
        finally:
            stream.close()

    # ------------------------------------------------------------------ rendering
    def render(self, e: dict[str, Any]) -> None:
        from rich.table import Table

        kind = e.get("@type")
        if kind == "currentStatus":
            t = Table("Message")
            t.add_row(e["commandStatus"]["message"])
            self.console.print(t)
        elif kind in ("streams", "tables"):
            word = "Stream" if kind == "streams" else "Table"
            t = Table(f"{word} Name", "Kafka Topic", "Key Format", "Value Format", "Windowed")
            for s in e[kind]:
                t.add_row(s["name"], s["topic"], s["keyFormat"], s["valueFormat"],
                          str(s["isWindowed"]).lower())
            self.console.print(t)
        elif kind == "queries":
            t = Table("Query ID", "Query Type", "Status", "Sink Name", "Sink Kafka Topic",
                      "Query String")
            for q in e["queries"]:
                t.add_row(q["id"], q.get("queryType", ""), q.get("state", ""),
                          ",".join(q.get("sinks", [])), ",".join(q.get("sinkKafkaTopics", [])),
                          q["queryString"])
            self.console.print(t)
        elif kind == "sourceDescription":
            d = e["sourceDescription"]
            self.console.print(f"Name                 : {d['name']}", highlight=False)
            t = Table("Field", "Type")
            for f in d["fields"]:
                extra = " (primary key)" if f.get("type") == "KEY" else ""
                t.add_row(f["name"], f["schema"]["type"] + extra)
            self.console.print(t)
        elif kind in ("kafka_topics", "kafka_topics_extended"):
            extended = kind == "kafka_topics_extended"
            t = Table("Kafka Topic", "Partitions", "Partition Replicas",
                      *(["Consumers", "ConsumerGroups"] if extended else []))
            for top in e["topics"]:
                counts = [str(top["consumerCount"]), str(top["consumerGroupCount"])] \
                    if extended else []
                t.add_row(top["name"], str(len(top["replicaInfo"])),
                          " ".join(str(r) for r in top["replicaInfo"]), *counts)
            self.console.print(t)
        elif kind == "query_descriptions" or kind == "queryDescription":
            for d in e.get("queryDescriptions") or [e.get("queryDescription", {})]:
                self._render_query_description(d)
        elif kind == "assert_topic":
            state = "exists" if e.get("exists", True) else "does not exist"
            self.console.print(f"Topic {e['topicName']} {state}", highlight=False)
        elif kind == "warning_entity":
            self.console.print(e["message"], highlight=False)
        elif kind == "function_names":
            t = Table("Function Name", "Category")
            for f in e["functions"]:
                t.add_row(f["name"], f.get("category", ""))
            self.console.print(t)
        elif kind == "describe_function":
            for label, key in (("Name", "name"), ("Author", "author"), ("Version", "version"),
                               ("Overview", "description"), ("Type", "type")):
                self.console.print(f"{label:<12}: {e.get(key, '')}", highlight=False)
            self._render_variations(e.get("name", ""), e.get("functions") or [])
        elif kind == "variables":
            t = Table("Variable Name", "Value")
            for v in e["variables"]:
                t.add_row(v["name"], v["value"])
            self.console.print(t)
        elif kind == "type_list":
            t = Table("Type Name", "Schema")
            for name, schema in e["types"].items():
                t.add_row(name, _schema_text(schema))
            self.console.print(t)
        elif kind == "properties":
            t = Table("Property", "Scope", "Value")
            for p in e["properties"]:
                t.add_row(p["name"], p.get("scope", ""), str(p.get("value")))
            self.console.print(t)
        else:
            self.console.print_json(json.dumps(e))


    def _render_variations(self, name: str, functions: list[dict[str, Any]]) -> None:
        """DESCRIBE FUNCTION's overloads, laid out as ksqlDB's CLI prints them."""
        if not functions:
            return
        self.console.print("Variations  :", highlight=False)
        for f in functions:
            args = ", ".join(f"{a.get('name', '')} {a.get('type', '')}".strip()
                             for a in f.get("arguments", []))
            self.console.print(f"\n\tVariation   : {name}({args})",
                               highlight=False)
            self.console.print(f"\tReturns     : {f.get('returnType', '')}", highlight=False)
            if f.get("description"):
                self.console.print(f"\tDescription : {f['description']}", highlight=False)
            for a in f.get("arguments", []):
                if a.get("description"):
                    self.console.print(f"\t{a.get('name', ''):<12}: {a['description']}",
                                       highlight=False)

    def _render_query_description(self, d: dict[str, Any]) -> None:
        from rich.table import Table

        for label, key in (("ID", "id"), ("Query Type", "queryType"), ("SQL", "statementText"),
                           ("State", "state")):
            self.console.print(f"{label:<12}: {d.get(key, '')}", highlight=False)
        t = Table("Field", "Type")
        for f in d.get("fields", []):
            extra = " (key)" if f.get("type") == "KEY" else ""
            t.add_row(f["name"], _schema_text(f["schema"]) + extra)
        self.console.print(t)
        self.console.print(f"Sources     : {', '.join(d.get('sources', []))}\n"
                           f"Sinks       : {', '.join(d.get('sinks', []))}", highlight=False)


def _schema_text(schema: dict[str, Any]) -> str:
    """ksqlDB's SchemaInfo as SQL type text: STRUCT<`A` INTEGER>, ARRAY<STRING>..."""
    kind = schema.get("type", "")
    if kind == "STRUCT":
        inner = ", ".join(f"`{f['name']}` {_schema_text(f['schema'])}"
                          for f in schema.get("fields") or [])
        return f"STRUCT<{inner}>"
    if kind == "ARRAY":
        return f"ARRAY<{_schema_text(schema.get('memberSchema') or {})}>"
    if kind == "MAP":
        return f"MAP<STRING, {_schema_text(schema.get('memberSchema') or {})}>"
    if kind == "DECIMAL" and schema.get("parameters"):
        p = schema["parameters"]
        return f"DECIMAL({p.get('precision')}, {p.get('scale')})"
    return str(kind)


def _split_schema(schema: str) -> list[str]:
    """"`A` STRING, `B` STRUCT<`X` INT, `Y` INT>" -> one entry per top-level column."""
    out, depth, cur = [], 0, ""
    for ch in schema:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def run_script(shell: Shell, text: str) -> bool:
    from hayase.sql.parser import split_statements

    ok = True
    for chunk, _line, _col in split_statements(text):
        if not shell.run(chunk + ";"):
            ok = False
            break
    return ok


def repl(shell: Shell, session: Any) -> None:
    """Read statements (multi-line until ';') and run them until EOF, 'exit' or 'quit'."""
    from prompt_toolkit.completion import Completer, Completion

    class SqlCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterable[Completion]:
            word = document.get_word_before_cursor()
            if not word:
                return
            up = word.upper()
            for cand in sorted(set(KEYWORDS) | shell.names):
                if cand.upper().startswith(up):
                    yield Completion(cand, start_position=-len(word))

    completer = SqlCompleter()
    shell.refresh_names()
    buf = ""
    while True:
        try:
            line = session.prompt("ksql> " if not buf else "   > ", completer=completer)
        except KeyboardInterrupt:
            buf = ""
            continue
        except EOFError:
            break
        if not buf and line.strip().lower().rstrip(";") in ("exit", "quit"):
            break
        buf = f"{buf}\n{line}" if buf else line
        if statement_complete(buf):
            run_script(shell, buf)
            buf = ""


@click.command("sql")
@click.option("--server", "server_url", default="http://127.0.0.1:8088", show_default=True,
              help="URL of the hayase (or ksqlDB) server.")
@click.option("--file", "-f", "sql_file", type=click.Path(exists=True, dir_okay=False,
                                                          path_type=Path),
              help="Run the statements of FILE and exit.")
@click.option("--basic-auth", default=None, metavar="USER:PASSWORD",
              help="HTTP basic authentication.")
def command(server_url: str, sql_file: Path | None, basic_auth: str | None) -> None:
    """Interactive SQL shell for a ksqlDB-compatible server."""
    from rich.console import Console

    from hayase.client.ksql import KsqlClient

    auth = None
    if basic_auth:
        user, _, password = basic_auth.partition(":")
        auth = (user, password)
    console = Console()
    with KsqlClient(server_url, auth=auth) as client:
        shell = Shell(client, console)
        if sql_file is not None:
            sys.exit(0 if run_script(shell, sql_file.read_text(encoding="utf-8")) else 1)
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(Path.home() / ".hayase_sql_history")))
        console.print(f"hayase sql: connected to {server_url} (end statements with ';', "
                      "'exit' to leave)")
        repl(shell, session)
