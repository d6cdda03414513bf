"""ksqlDB's REST query-validation tests (conformance README, section 9) against `hayase server`.

    python -m hayase.server.rest_conformance [--failures] [-k REGEX] [--write-passing FILE]
                                             [files...]

One real HTTP server (uvicorn on 127.0.0.1, a free port) serves every case; each case gets a
fresh server state (a new :class:`KsqlServer` over an in-memory backend: the same statement
executor, transient query planner and engine operators as with Kafka, without a broker).
Per case, as ksqlDB's RestTestExecutor: the statements before the first SELECT go in one
POST /ksql; the inputs are produced (after the push queries are running when
``inputConditions.waitForActivePushQuery``); each SELECT goes to POST /query; responses are
matched partially (``key|starts_with``), query rows as a multiset unless
``outputConditions.verifyOrder``; the output topics are compared like QTT outputs.
In scope: JSON, DELIMITED and KAFKA formats with no schema registry (the QTT scope rules).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from hayase.testing.apache_kafka import free_port
from hayase.testing.compare import matches

PUSH_TIMEOUT = 5.0
# The partition count ksqlDB's test harness gives the topics it creates (Topic's default).
HARNESS_PARTITIONS = 4


@dataclass
class RestCase:
    file: str
    name: str
    node: dict[str, Any]

    @property
    def full_name(self) -> str:
        return f"{self.file} - {self.name}"


@dataclass
class Result:
    case: RestCase
    passed: bool
    reason: str = ""


def default_files() -> list[Path]:
    from hayase.testing.conformance import corpus_dir

    root = corpus_dir()
    return sorted((root / "rest").glob("*.json")) if root is not None else []


def load_cases(paths: list[Path]) -> list[RestCase]:
    from hayase.testing.qtt import load_json

    out: list[RestCase] = []
    for path in paths:
        doc = load_json(path.read_text(encoding="utf-8"))
        for node in doc.get("tests", []):
            formats = list(node.get("format") or []) or [None]
            for fmt in formats:
                n = dict(node)
                name = node["name"]
                if fmt is not None:
                    from hayase.testing.qtt import _substitute

                    n = _substitute(n, fmt)
                    name += f" - {fmt}"
                n["_format"] = fmt
                out.append(RestCase(path.stem, name, n))
    return out


def out_of_scope(case: RestCase) -> str | None:
    from hayase.testing.qtt import expand_node
    from hayase.testing.scope import DEFAULT_SCOPE

    node = case.node
    if node.get("enabled", True) is False:
        return "disabled"
    fmt = node.get("_format")
    if fmt and fmt.upper() in DEFAULT_SCOPE.excluded_formats:
        return f"format {fmt}"
    probe = {k: v for k, v in node.items() if k in ("name", "statements", "properties", "topics")}
    probe["format"] = None
    tc = expand_node(case.file, probe)[0]
    return DEFAULT_SCOPE.out_of_scope_reason(tc)


# ---------------------------------------------------------------------- matching


def _match_value(actual: Any, expected: Any, path: str) -> str | None:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {json.dumps(actual, default=str)}"
        for k, e in expected.items():
            key, _, op = k.partition("|")
            a = actual.get(key)
            if op == "starts_with":
                if not isinstance(a, str) or not isinstance(e, str) or not a.startswith(e):
                    return f"{path}.{key}: expected to start with {e!r}, got {a!r}"
                continue
            if isinstance(e, dict | list) and key != "columns":
                diff = _match_value(a, e, f"{path}.{key}")
                if diff:
                    return diff
            elif not matches(a, e):
                return f"{path}.{key}: expected {_show(e)}, got {_show(a)}"
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{path}: expected {_show(expected)}, got {_show(actual)}"
        return _match_each(actual, expected, path)
    if not matches(actual, expected):
        return f"{path}: expected {_show(expected)}, got {_show(actual)}"
    return None


def _match_each(actual: list[Any], expected: list[Any], path: str) -> str | None:
    """The first difference between the paired elements, named ``path[i]``."""
    for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
        diff = _match_value(a, e, f"{path}[{i}]")
        if diff:
            return diff
    return None


def _show(v: Any) -> str:
    return json.dumps(v, default=str)


def _statement_text(case_stmt: str, text: Any) -> Any:
    if isinstance(text, str):
        return text.replace("{STATEMENT}", case_stmt)
    if isinstance(text, dict):
        return {k: _statement_text(case_stmt, v) for k, v in text.items()}
    if isinstance(text, list):
        return [_statement_text(case_stmt, v) for v in text]
    return text


def match_query(actual: list[Any], expected: list[Any], ordered: bool) -> str | None:
    if len(actual) != len(expected):
        return (f"query response: expected {len(expected)} elements, got {len(actual)}: "
                f"{_show(actual)[:400]}")
    exp_rows = [e for e in expected if "row" in e]
    act_rows = [a for a in actual if isinstance(a, dict) and "row" in a]
    exp_other = [e for e in expected if "row" not in e]
    act_other = [a for a in actual if not (isinstance(a, dict) and "row" in a)]
    diff = _match_each(act_other, exp_other, "query")
    if diff:
        return diff
    if len(act_rows) != len(exp_rows):
        return f"query: expected {len(exp_rows)} rows, got {len(act_rows)}"
    if ordered:
        return _match_each(act_rows, exp_rows, "row")
    unused = list(act_rows)
    for e in exp_rows:
        for j, a in enumerate(unused):
            if _match_value(a, e, "row") is None:
                del unused[j]
                break
        else:
            return f"query: expected row {_show(e)} not found in {_show(act_rows)[:400]}"
    return None


# ---------------------------------------------------------------------- the server


class HttpServer:
    """uvicorn in a thread serving a KsqlApp whose server state is swapped per case."""

    def __init__(self) -> None:
        import uvicorn

        from hayase.server.app import KsqlApp
        from hayase.server.backend import MemoryBackend
        from hayase.server.engine import KsqlServer

        self.app = KsqlApp(KsqlServer(MemoryBackend(), record_commands=False))
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HttpServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def reset(self, properties: dict[str, Any]) -> Any:
        from hayase.server.backend import MemoryBackend
        from hayase.server.engine import KsqlServer

        old = self.app.server
        self.app.server = KsqlServer(MemoryBackend(),
                                     properties={k: str(v) for k, v in properties.items()},
                                     record_commands=False)
        old.close()
        return self.app.server


# ---------------------------------------------------------------------- one case


def _split(statements: list[str]) -> tuple[list[str], list[str]]:
    for i, s in enumerate(statements):
        if s.strip().upper().startswith("SELECT "):
            return statements[:i], statements[i:]
    return statements, []


def _produce_inputs(server: Any, node: dict[str, Any]) -> None:
    from hayase.testing import specs
    from hayase.testing.qtt import ABSENT, parse_record

    by_topic = {s.topic: s for s in server.session.metastore.sources.values()}
    for raw in node.get("inputs") or []:
        spec = parse_record(raw)
        source = by_topic.get(spec.topic)
        key = specs.encode_key(spec.key, source, spec.window)
        value = specs.encode_value(spec.value, source)
        ts = None if spec.timestamp is ABSENT else int(spec.timestamp)
        server.backend.produce(spec.topic, key, value, ts if ts is not None else 0,
                               tuple(spec.headers or ()))


def _check_outputs(server: Any, node: dict[str, Any]) -> str | None:
    from hayase.testing import specs
    from hayase.testing.compare import ActualRecord, first_difference
    from hayase.testing.qtt import parse_record

    outputs = [parse_record(r) for r in node.get("outputs") or []]
    by_topic = {s.topic: s for s in server.session.metastore.sources.values()}
    topics: list[str] = []
    for r in outputs:
        if r.topic not in topics:
            topics.append(r.topic)
    for topic in topics:
        source = by_topic.get(topic)
        actual = []
        for rec in server.backend.scan(topic):
            key, window = specs.decode_key(rec.key, source)
            actual.append(ActualRecord(topic, key, specs.decode_value(rec.value, source),
                                       rec.timestamp, window, list(rec.headers)))
        diff = first_difference(topic, [r for r in outputs if r.topic == topic], actual)
        if diff:
            return diff
    return None


def _error_matches(entity: Any, status: int, expected: dict[str, Any], stmt: str) -> str | None:
    if not isinstance(entity, dict) or "@type" not in entity:
        return f"expected error {expected}, got {status} {_show(entity)[:300]}"
    want_status = expected.get("status")
    if want_status is not None and status != want_status:
        return f"expected HTTP {want_status}, got {status}: {entity.get('message')}"
    etype = str(expected.get("type", ""))
    if etype.endswith("KsqlStatementErrorMessage") and entity["@type"] != "statement_error":
        return f"expected a statement error, got {entity['@type']}"
    msg = expected.get("message")
    if msg is not None:
        msg = _statement_text(stmt, msg)
        if msg not in str(entity.get("message", "")):
            return f"expected message containing {msg!r}, got {entity.get('message')!r}"
    return None


def _post_query(client: httpx.Client, sql: str, props: dict[str, Any]) -> tuple[int, Any]:
    r = client.post("/query", json={"ksql": sql, "streamsProperties": props},
                    timeout=PUSH_TIMEOUT)
    try:
        return r.status_code, json.loads(r.text)
    except json.JSONDecodeError:
        return r.status_code, r.text


def run_case(http: HttpServer, case: RestCase) -> Result:
    node = case.node
    props = {k: v for k, v in (node.get("properties") or {}).items()}
    if case.file == "scalable-push-queries":  # ksqlDB runs this file with SPQ enabled
        props.setdefault("ksql.query.push.v2.enabled", "true")
    server = http.reset(props)
    # As ksqlDB's harness (TestCaseBuilderUtil.getAllTopics): the case's topics, then those
    # named by CREATE statements with columns (PARTITIONS, else 4), then the inputs' and
    # outputs' topics (4 partitions); the first to name a topic decides.
    for t in node.get("topics") or []:
        server.backend.ensure_topic(t["name"], t.get("partitions", HARNESS_PARTITIONS),
                                    t.get("replicas", 1))
    for stmt in node["statements"]:
        if re.match(r"\s*CREATE\s+(OR\s+REPLACE\s+)?(SOURCE\s+)?(STREAM|TABLE)\b[^(]*\(",
                    str(stmt), re.IGNORECASE):
            m = re.search(r"KAFKA_TOPIC\s*=\s*'([^']+)'", str(stmt), re.IGNORECASE)
            if m:
                p = re.search(r"PARTITIONS\s*=\s*(\d+)", str(stmt), re.IGNORECASE)
                server.backend.ensure_topic(m.group(1),
                                            int(p.group(1)) if p else HARNESS_PARTITIONS, 1)
    for r in (node.get("inputs") or []) + (node.get("outputs") or []):
        server.backend.ensure_topic(r["topic"], HARNESS_PARTITIONS, 1)
    admin, selects = _split([str(s) for s in node["statements"]])
    responses = list(node.get("responses") or [])
    expected_error = node.get("expectedError")
    # ksqlDB's REST test server reads queries from the earliest offset unless a case says.
    str_props = {"auto.offset.reset": "earliest",
                 **{k: str(v) if not isinstance(v, str) else v for k, v in props.items()}}
    with httpx.Client(base_url=http.url) as client:
        idx = 0
        if admin:
            text = "\n".join(admin)
            r = client.post("/ksql", json={"ksql": text, "streamsProperties": str_props})
            body = r.json()
            if r.status_code != 200:
                if expected_error is not None and not selects:
                    failing = body.get("statementText", "") if isinstance(body, dict) else ""
                    diff = _error_matches(body, r.status_code, expected_error, failing)
                    return Result(case, diff is None, diff or "")
                return Result(case, False, f"/ksql failed: {r.status_code} "
                                           f"{_show(body)[:400]}")
            for entity in body:
                if idx < len(responses) and "admin" in responses[idx]:
                    exp = _statement_text(entity.get("statementText", ""),
                                          responses[idx]["admin"])
                    diff = _match_value(entity, exp, f"admin[{idx}]")
                    if diff:
                        return Result(case, False, diff)
                    idx += 1
        wait_push = bool((node.get("inputConditions") or {}).get("waitForActivePushQuery"))
        results: dict[int, tuple[int, Any]] = {}
        threads = []
        if wait_push:
            for i, sql in enumerate(selects):
                if "EMIT CHANGES" in sql.upper():
                    def run(i: int = i, sql: str = sql) -> None:
                        with httpx.Client(base_url=http.url) as c:
                            try:
                                results[i] = _post_query(c, sql, str_props)
                            except httpx.HTTPError as e:
                                results[i] = (0, f"{type(e).__name__}: {e}")
                    th = threading.Thread(target=run, daemon=True)
                    th.start()
                    threads.append(th)
            deadline = time.monotonic() + PUSH_TIMEOUT
            while len(server.transient) < len(threads) and time.monotonic() < deadline:
                time.sleep(0.01)
        _produce_inputs(server, node)
        for th in threads:
            th.join(PUSH_TIMEOUT + 1)
        for i, sql in enumerate(selects):
            if i not in results:
                try:
                    results[i] = _post_query(client, sql, str_props)
                except httpx.HTTPError as e:
                    results[i] = (0, f"{type(e).__name__}: {e}")
        ordered = bool((node.get("outputConditions") or {}).get("verifyOrder"))
        for i, sql in enumerate(selects):
            status, body = results[i]
            if status != 200:
                if expected_error is not None and i == len(selects) - 1:
                    diff = _error_matches(body, status, expected_error, sql)
                    return Result(case, diff is None, diff or "")
                return Result(case, False, f"{sql}: HTTP {status} {_show(body)[:300]}")
            if idx < len(responses):
                exp = responses[idx]
                idx += 1
                if "query" in exp:
                    diff = match_query(body, exp["query"], ordered)
                    if diff:
                        return Result(case, False, f"{sql}: {diff}")
        if expected_error is not None:
            return Result(case, False, f"expected error {expected_error.get('message')!r}")
    diff = _check_outputs(server, node)
    return Result(case, diff is None, diff or "")


# ---------------------------------------------------------------------- main


def run(paths: list[Path], pattern: str | None = None) -> Iterator[tuple[RestCase, Result | str]]:
    cases = load_cases(paths)
    with HttpServer() as http:
        for case in cases:
            if pattern and not re.search(pattern, case.full_name):
                continue
            reason = out_of_scope(case)
            if reason:
                yield case, reason
                continue
            try:
                yield case, run_case(http, case)
            except Exception as e:  # a crash is a failure of that case, the run goes on
                yield case, Result(case, False, f"crash: {type(e).__name__}: {e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hayase.server.rest_conformance")
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--failures", action="store_true")
    parser.add_argument("-k", dest="pattern")
    parser.add_argument("--write-passing", type=Path)
    args = parser.parse_args(argv)
    files = args.files or default_files()
    per_file: dict[str, list[int]] = {}
    passing: list[str] = []
    for case, res in run(files, args.pattern):
        counts = per_file.setdefault(case.file, [0, 0, 0])
        if isinstance(res, str):
            counts[2] += 1
            continue
        counts[1] += 1
        if res.passed:
            counts[0] += 1
            passing.append(case.full_name)
        elif args.failures:
            print(f"FAIL {case.full_name}: {res.reason}")
    total_p = sum(c[0] for c in per_file.values())
    total = sum(c[1] for c in per_file.values())
    for f, (p, t, skipped) in sorted(per_file.items()):
        print(f"{f}: {p}/{t} (out of scope {skipped})")
    pct = 100.0 * total_p / total if total else 0.0
    print(f"TOTAL in scope: {total_p}/{total} ({pct:.1f}%)")
    if args.write_passing:
        from hayase.testing.conformance import write_passing

        write_passing(args.write_passing, passing)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["run_case", "load_cases", "HttpServer", "Decimal"]
