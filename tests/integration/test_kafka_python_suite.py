"""kafka-python's own integration tests against the embedded broker (slow: `scripts/test-slow`).

The source distribution of the installed kafka-python (the same version) is downloaded once into
~/.cache/hayase/kafka-python/ with `pip download --no-binary :all:`, unpacked into a temporary
folder, and its `test/integration` suite is run in a subprocess against a fresh embedded broker.
Those tests take an external broker from the environment: KAFKA_URI (the broker's address) and
KAFKA_VERSION (the Kafka version it stands for: 4.1.0, the Apache Kafka hayase is compared with).

Two files of kafka-python's repository are not in its sdist, and are supplied here:
- test/__init__.py: without it `test.testutil` resolves to CPython's own `test` package;
- test/service.py: fixtures.py imports ExternalService and SpawnedService from it. With
  KAFKA_URI set, ExternalService only holds the host and port; SpawnedService (which starts a
  Java broker) is never used, and the stand-in refuses to.
The broker runs with the two group settings kafka-python's test broker sets in its
servers/resources/default/kafka.properties (group.min.session.timeout.ms=1000,
group.initial.rebalance.delay.ms=0); everything else is the embedded broker's default.

The result is checked against tests/integration/kafka_python_passing.txt: every `pass` test must
pass, every `except` test must not (else the file is stale), and every test kafka-python runs
must be listed (a new upstream test is noticed)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hayase.testing.brokers import EmbeddedBroker

pytestmark = pytest.mark.slow

EXPECTED = Path(__file__).with_name("kafka_python_passing.txt")
CACHE = Path(os.environ.get("HAYASE_CACHE", Path.home() / ".cache" / "hayase")) / "kafka-python"
KAFKA_VERSION = "4.1.0"
BROKER_CONFIGS = {"group.min.session.timeout.ms": "1000", "group.initial.rebalance.delay.ms": "0"}

TEST_INIT = '"""Makes `test` kafka-python\'s package, not CPython\'s (absent from the sdist)."""\n'
SERVICE_STANDIN = '''"""Stand-in for kafka-python's test/service.py, which its sdist does not ship.
Only the external-broker path (KAFKA_URI) is supported."""


class ExternalService:
    def __init__(self, host, port):
        self.host = host
        self.port = port

    def open(self):
        pass

    def close(self):
        pass


class SpawnedService:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("hayase runs kafka-python's tests against an external broker only "
                           "(KAFKA_URI); spawning a Java broker is not supported")
'''


def _sdist(version: str) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"kafka[-_]python-{version}.tar.gz"))
    if found:
        return found[0]
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", f"kafka-python=={version}", "-d", str(CACHE)],
                       capture_output=True, text=True, timeout=300)
    found = sorted(CACHE.glob(f"kafka[-_]python-{version}.tar.gz"))
    if r.returncode != 0 or not found:
        pytest.skip(f"cannot download the kafka-python {version} sdist: {r.stderr[-500:]}")
    return found[0]


def _unpack(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as tar:
        tar.extractall(into, filter="data")
    root = next(p for p in into.iterdir() if p.is_dir())
    (root / "test" / "__init__.py").write_text(TEST_INIT)
    (root / "test" / "service.py").write_text(SERVICE_STANDIN)
    return root


def parse_expected(text: str) -> tuple[set[str], dict[str, str]]:
    """`pass <test id>` and `except <test id> -- <reason>` lines; `#` lines are comments."""
    passes: set[str] = set()
    exceptions: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, rest = line.partition(" ")
        if kind == "pass":
            passes.add(rest.strip())
        elif kind == "except":
            test_id, sep, reason = rest.partition(" -- ")
            assert sep and reason.strip(), f"{EXPECTED.name}:{lineno}: an exception needs a reason"
            exceptions[test_id.strip()] = reason.strip()
        else:
            raise AssertionError(f"{EXPECTED.name}:{lineno}: expected `pass` or `except`: {raw}")
    return passes, exceptions


def _outcomes(junit: Path) -> dict[str, str]:
    """test id (test/integration/x.py::name) -> passed | failed | error | skipped."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        path = "/".join(p for p in parts if not p[:1].isupper()) + ".py"
        owner = [p for p in parts if p[:1].isupper()]
        test_id = "::".join([path, *owner, case.get("name", "")])
        kinds = {child.tag for child in case}
        outcome = next((k for k in ("error", "failure", "skipped") if k in kinds), "passed")
        outcomes[test_id] = {"failure": "failed"}.get(outcome, outcome)
    return outcomes


def test_kafka_python_integration_suite(tmp_path: Path) -> None:
    version = importlib.metadata.version("kafka-python")
    root = _unpack(_sdist(version), tmp_path)
    junit = tmp_path / "junit.xml"
    with EmbeddedBroker(configs=BROKER_CONFIGS) as broker:
        env = dict(os.environ, KAFKA_VERSION=KAFKA_VERSION,
                   KAFKA_URI=f"PLAINTEXT://{broker.bootstrap_servers}",
                   # fixtures.py insists that a Kafka install folder exists; with KAFKA_URI
                   # nothing in it is used
                   KAFKA_ROOT=str(tmp_path))
        r = subprocess.run([sys.executable, "-m", "pytest", "test/integration", "-q",
                            "-p", "no:cacheprovider", "-o", "log_level=WARNING",
                            f"--junitxml={junit}"],
                           cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    assert junit.exists(), f"kafka-python's suite did not run:\n{r.stdout[-3000:]}{r.stderr}"
    outcomes = _outcomes(junit)
    passes, exceptions = parse_expected(EXPECTED.read_text())

    regressions = sorted(t for t in passes if outcomes.get(t) != "passed")
    stale = sorted(t for t in exceptions if outcomes.get(t) == "passed")
    unlisted = sorted(set(outcomes) - passes - set(exceptions))
    report = "\n".join(f"{outcomes.get(t, 'not run')}: {t}" for t in regressions)
    assert not regressions, f"expected to pass, did not:\n{report}\n\n{r.stdout[-6000:]}"
    assert not stale, f"now pass: move them to `pass` in {EXPECTED.name}: {stale}"
    assert not unlisted, f"not listed in {EXPECTED.name}: " + ", ".join(
        f"{t} ({outcomes[t]})" for t in unlisted)
