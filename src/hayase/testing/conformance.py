"""Conformance runner over ksqlDB's query-validation tests (QTT).

    python -m hayase.testing.conformance [--write-passing FILE] [--failures] [-k REGEX] [FILES...]

Runs every in-scope case (see :mod:`hayase.testing.scope`) of the given QTT files (default:
every file in ``$HAYASE_CONFORMANCE_DIR/qtt`` or ``<repo>/../shared/conformance/ksql/qtt``),
prints a summary per file and totals: positive cases passed, and expectedException cases rejected
with the same kind of error (parse / statement / runtime). ``--write-passing`` writes the full
names of the passing cases, one per line (the committed list CI checks).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hayase.testing.qtt import TestCase, load_qtt_file
from hayase.testing.scope import DEFAULT_SCOPE, Scope

REPO_ROOT = Path(__file__).resolve().parents[3]


def corpus_dir() -> Path | None:
    """The ksql conformance folder, or None when it is not on this machine."""
    env = os.environ.get("HAYASE_CONFORMANCE_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "conformance" / "ksql")
    for c in candidates:
        if (c / "qtt").is_dir():
            return c
    return None


def read_passing(path: Path) -> list[str]:
    """A passing-case list: one name a line, blank lines and ``#`` lines skipped. Names are kept
    byte for byte: some corpus names end with a space."""
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").split("\n")
            if line.strip() and not line.startswith("#")]


def write_passing(path: Path, names: list[str]) -> None:
    """Write the names of the passing cases, sorted, in read_passing's format."""
    path.write_text("".join(n + "\n" for n in sorted(names)), encoding="utf-8")


@dataclass
class Outcome:
    case: TestCase
    passed: bool
    reason: str = ""
    message_matched: bool | None = None  # expectedException: did ksqlDB's message match too?
    skipped: str | None = None


def _error_kind(exc: BaseException) -> str | None:
    from hayase.sql.errors import KsqlError

    if isinstance(exc, KsqlError):
        return exc.kind
    return None


# ksqlDB's test harness runs every case with this service id (conformance README, section 6).
QTT_SERVICE_ID = "some.ksql.service.id"


def _run_statements(driver: Any, case: TestCase) -> dict[str, Any]:
    """Run the case's statements; returns the internal topics (ksqlDB's names) of the
    persistent queries they started, name -> :class:`~hayase.sql.topology.InternalTopic`."""
    from hayase.sql.plan import QueryPlan
    from hayase.sql.topology import internal_topics, query_prefix

    props = driver.session_properties()
    default_key = str(props.get("ksql.persistence.default.format.key") or "KAFKA")
    service_id = str(props.get("ksql.service.id") or QTT_SERVICE_ID)
    persistent_prefix = str(props.get("ksql.persistent.prefix") or "query_")
    internal: dict[str, Any] = {}
    line = 0
    for stmt in case.statements:
        # ksqlDB's test executor parses the statements joined by newlines: an error's line
        # is its statement's line in that script (the leading newlines only place it there).
        text, line = "\n" * line + stmt, line + stmt.count("\n") + 1
        for result in driver.execute(text):
            if isinstance(result, QueryPlan):
                prefix = query_prefix(result.query_id, service_id, persistent_prefix)
                for topic in internal_topics(result, default_key):
                    internal.setdefault(prefix + topic.name, topic)
    return internal


def run_case(case: TestCase) -> Outcome:
    """Run one case in a fresh driver and judge it like ksqlDB's TestExecutor."""
    from hayase.engine.query import UnsupportedPlan
    from hayase.testing.driver import TestDriver

    expected = case.expected_exception
    try:
        driver = TestDriver(case.properties, immediate=False)
        internal = _run_statements(driver, case)
        driver.run_case(case.inputs)
    except Exception as e:  # judged below: a KsqlError may be the expected outcome
        kind = _error_kind(e)
        if expected is not None and kind is not None:
            if kind != expected.kind:
                return Outcome(case, False, f"expected a {expected.kind} error, got {kind}: {e}")
            msg = getattr(e, "message", str(e))
            matched = expected.message is None or expected.message in msg or \
                expected.message in str(e)
            return Outcome(case, True, "", matched)
        if isinstance(e, UnsupportedPlan):
            return Outcome(case, False, f"unsupported: {e}")
        if kind is not None:
            return Outcome(case, False, f"unexpected {kind} error: {e}")
        tb = traceback.extract_tb(e.__traceback__)[-1]
        return Outcome(case, False, f"crash: {type(e).__name__}: {e} "
                                    f"({Path(tb.filename).name}:{tb.lineno})")
    if expected is not None:
        return Outcome(case, False, f"expected a {expected.kind} error "
                                    f"({expected.type.rsplit('.', 1)[-1]}: {expected.message})")
    reason = check_outputs(driver, case) or check_post(driver, case, internal)
    return Outcome(case, reason is None, reason or "")


def check_outputs(driver: Any, case: TestCase) -> str | None:
    from hayase.testing.compare import first_difference

    topics: list[str] = []
    for r in case.outputs:
        if r.topic not in topics:
            topics.append(r.topic)
    for topic in topics:
        expected = [r for r in case.outputs if r.topic == topic]
        diff = first_difference(topic, expected, driver.read_output(topic),
                                check_zero_timestamps=case.has_inputs)
        if diff:
            return diff
    return None


# ---------------------------------------------------------------------- post-conditions

_TYPE_ALIASES = {"INT": "INTEGER", "VARCHAR": "STRING"}


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    depth, quote = 0, False
    for c in text:
        if c == "`":
            quote = not quote
        if not quote:
            if c in "<(":
                depth += 1
            elif c in ">)":
                depth -= 1
            elif c == "," and depth == 0:
                parts.append("".join(buf))
                buf = []
                continue
        buf.append(c)
    if "".join(buf).strip():
        parts.append("".join(buf))
    return [p.strip() for p in parts]


def _normalize_type(text: str) -> str:
    try:
        from hayase.sql.types import parse_type

        return str(parse_type(text))
    except Exception:
        out = re.sub(r"\s+", " ", text.strip().upper())
        out = re.sub(r"\b(INT|VARCHAR)\b", lambda m: _TYPE_ALIASES[m.group(1)], out)
        return out.replace("< ", "<").replace(" >", ">").replace(", ", ",").replace("`", "")


def normalize_schema(text: str) -> list[tuple[str, str, str]]:
    """[(name, type, namespace)] of ksqlDB's schema text, for comparison."""
    cols: list[tuple[str, str, str]] = []
    for part in _split_top(text):
        m = re.match(r"^(`(?:[^`]|``)+`|\S+)\s+(.*)$", part.strip(), re.S)
        if not m:
            cols.append((part, "", ""))
            continue
        name = m.group(1)
        name = name[1:-1].replace("``", "`") if name.startswith("`") else name.upper()
        rest = m.group(2).strip()
        ns = "VALUE"
        mm = re.search(r"\s+(PRIMARY\s+KEY|KEY|HEADERS|HEADER\s*\('[^']*'\))$", rest, re.I)
        if mm:
            suffix = mm.group(1).upper()
            ns = "KEY" if suffix.endswith("KEY") else re.sub(r"\s+", "", suffix)
            rest = rest[: mm.start()]
        cols.append((name, _normalize_type(rest), ns))
    return cols


def _format_name(spec: Any) -> str | None:
    if spec is None:
        return None
    if isinstance(spec, dict):
        value = spec.get("format")
        return None if value is None else str(value).upper()
    return str(spec).upper()


QTT_RECORD_TOPIC_PARTITIONS = 4


def _partitions_of(driver: Any, case: TestCase, topic: str, source: Any) -> int:
    """A topic's partition count as ksqlDB would create it: the statement's PARTITIONS, else a
    pre-declared `topics` entry, else (a sink named in the records) the harness's 4, else (for
    a sink) its query's source topic, else 1."""
    declared: dict[str, Any] = {str(t.get("name")): t.get("partitions") for t in case.topics}
    if source.partitions:
        return int(source.partitions)
    if declared.get(topic):
        return int(declared[topic])
    if topic in driver.sinks_by_topic and \
            any(r.topic == topic for r in [*case.inputs, *case.outputs]):
        # ksqlDB's harness creates every topic named in the records, with 4 partitions,
        # before the statements run (TestCaseBuilderUtil.getTopicsByName); a C*AS sink
        # then writes to the existing topic.
        return QTT_RECORD_TOPIC_PARTITIONS
    for q in driver.queries:
        if q.sink_topic == topic:
            src = q.source
            if src.partitions:
                return int(src.partitions)
            if declared.get(src.topic):
                return int(declared[src.topic])
    return 1


def check_post(driver: Any, case: TestCase, internal: dict[str, Any] | None = None
               ) -> str | None:
    """The case's post-conditions; ``internal``: the queries' internal topics by name."""
    internal = internal or {}
    post = case.post
    if not post:
        return None
    for spec in post.get("sources", []) or []:
        name = spec["name"]
        source = driver.session.metastore.get(name)
        if source is None:
            return f"post: source {name} does not exist"
        if str(spec.get("type", "")).upper() != source.source_type.value:
            return f"post: {name} is a {source.source_type.value}, expected {spec.get('type')}"
        if "schema" in spec:
            want, got = normalize_schema(spec["schema"]), normalize_schema(str(source.schema))
            if want != got:
                return f"post: {name} schema is '{source.schema}', expected '{spec['schema']}'"
        mismatch = _format_mismatch(name, spec, source)
        if mismatch:
            return mismatch
        for field_name, fmt in (("keyFeatures", source.key_format),
                                ("valueFeatures", source.value_format)):
            if field_name in spec and set(spec[field_name]) != set(fmt.features):
                return (f"post: {name} {field_name} are {sorted(fmt.features)}, "
                        f"expected {spec[field_name]}")
        if "isSource" in spec and bool(spec["isSource"]) != bool(source.is_source):
            return f"post: {name} isSource is {source.is_source}, expected {spec['isSource']}"
    topics = post.get("topics") or {}
    blacklist = topics.get("blacklist")
    if blacklist:
        for t in [*driver.created_topics, *internal]:
            if re.fullmatch(blacklist, t):
                return f"post: topic {t} matches the blacklist {blacklist}"
    for spec in topics.get("topics", []) or []:
        name = spec["name"]
        if name in internal:
            mismatch = _format_mismatch(f"topic {name}", spec, internal[name])
            if mismatch:
                return mismatch
            continue
        source = driver.sink_for(name)
        if source is None:
            return f"post: topic {name} was not created"
        if "partitions" in spec:
            partitions = _partitions_of(driver, case, name, source)
            if int(spec["partitions"]) != partitions:
                return f"post: topic {name} has {partitions} partitions, expected {spec['partitions']}"
        mismatch = _format_mismatch(f"topic {name}", spec, source)
        if mismatch:
            return mismatch
    return None


def _format_mismatch(what: str, spec: dict[str, Any], source: Any) -> str | None:
    """The first of the spec's keyFormat/valueFormat that ``source`` does not have."""
    for field_name, label, fmt in (("keyFormat", "key", source.key_format),
                                   ("valueFormat", "value", source.value_format)):
        want = _format_name(spec.get(field_name))
        if want is not None and want != fmt.name.upper():
            return f"post: {what} {label} format is {fmt.name}, expected {want}"
    return None


# ---------------------------------------------------------------------- runner


@dataclass
class FileSummary:
    name: str
    positive: Counter[str] = field(default_factory=Counter)
    negative: Counter[str] = field(default_factory=Counter)
    out_of_scope: int = 0


def iter_cases(files: Iterable[Path], scope: Scope) -> Iterable[tuple[TestCase, str | None]]:
    for f in files:
        for case in load_qtt_file(f):
            yield case, scope.out_of_scope_reason(case)


def run(files: list[Path], scope: Scope = DEFAULT_SCOPE, pattern: str | None = None,
        show_failures: bool = False, out: Any = sys.stdout) -> tuple[list[Outcome],
                                                                     list[FileSummary]]:
    outcomes: list[Outcome] = []
    summaries: list[FileSummary] = []
    regex = re.compile(pattern) if pattern else None
    for f in files:
        summary = FileSummary(f.stem)
        for case, reason in iter_cases([f], scope):
            if reason is not None:
                summary.out_of_scope += 1
                continue
            if regex and not regex.search(case.name):
                continue
            outcome = run_case(case)
            outcomes.append(outcome)
            bucket = summary.negative if case.is_negative else summary.positive
            bucket["total"] += 1
            if outcome.passed:
                bucket["passed"] += 1
                if outcome.message_matched:
                    bucket["message"] += 1
            elif show_failures:
                print(f"FAIL {case.name}\n     {outcome.reason}", file=out)
        summaries.append(summary)
    return outcomes, summaries


def print_summary(summaries: list[FileSummary], elapsed: float, out: Any = sys.stdout) -> None:
    pos: Counter[str] = Counter()
    neg: Counter[str] = Counter()
    skipped = 0
    for s in summaries:
        pos.update(s.positive)
        neg.update(s.negative)
        skipped += s.out_of_scope
        if s.positive["total"] or s.negative["total"]:
            print(f"{s.name:40s} positive {s.positive['passed']:3d}/{s.positive['total']:<3d}"
                  f"  expectedException {s.negative['passed']:3d}/{s.negative['total']:<3d}",
                  file=out)

    def pct(c: Counter[str]) -> str:
        return f"{100.0 * c['passed'] / c['total']:.1f}%" if c["total"] else "n/a"

    print("-" * 78, file=out)
    print(f"TOTAL positive {pos['passed']}/{pos['total']} ({pct(pos)}); "
          f"expectedException {neg['passed']}/{neg['total']} ({pct(neg)}), "
          f"{neg['message']} with ksqlDB's message; {skipped} cases out of scope; "
          f"{elapsed:.1f}s", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hayase.testing.conformance",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("files", nargs="*", type=Path, help="QTT files (default: all)")
    parser.add_argument("--write-passing", type=Path, help="write passing case names here")
    parser.add_argument("--failures", action="store_true", help="print each failure's reason")
    parser.add_argument("-k", dest="pattern", help="only cases whose full name matches REGEX")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("hayase.processing").setLevel(logging.ERROR)
    files = args.files
    if not files:
        root = corpus_dir()
        if root is None:
            print("conformance corpus not found: set HAYASE_CONFORMANCE_DIR", file=sys.stderr)
            return 2
        files = sorted((root / "qtt").glob("*.json"))
    started = time.monotonic()
    outcomes, summaries = run(files, pattern=args.pattern, show_failures=args.failures)
    print_summary(summaries, time.monotonic() - started)
    if args.write_passing:
        names = [o.case.name for o in outcomes if o.passed]
        write_passing(args.write_passing, names)
        print(f"wrote {len(names)} passing cases to {args.write_passing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
