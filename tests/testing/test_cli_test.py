"""`hayase test` on ksql-test-runner style files (written here, not copied from the corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hayase.cli.commands.test import command

SQL = """
SET 'ksql.output.topic.name.prefix'='';
CREATE STREAM orders (id INT KEY, units DOUBLE, item STRING)
  WITH (kafka_topic='orders', value_format='JSON');
-- big orders only
CREATE STREAM big AS SELECT id, UCASE(item) AS item FROM orders WHERE units >= 10;
"""


def write(tmp: Path, inputs: list | None, outputs: list) -> tuple[Path, Path | None, Path]:
    sql = tmp / "statements.sql"
    sql.write_text(SQL)
    inp = None
    if inputs is not None:
        inp = tmp / "input.json"
        inp.write_text(json.dumps({"inputs": inputs}))
    out = tmp / "output.json"
    out.write_text(json.dumps({"outputs": outputs}))
    return sql, inp, out


def invoke(sql: Path, inp: Path | None, out: Path):
    args = ["--sql-file", str(sql), "--output-file", str(out)]
    if inp is not None:
        args += ["--input-file", str(inp)]
    return CliRunner().invoke(command, args)


INPUTS = [
    {"topic": "orders", "key": 1, "value": {"units": 12.5, "item": "tea"}, "timestamp": 5},
    {"topic": "orders", "key": 2, "value": {"UNITS": 1, "ITEM": "pen"}, "timestamp": 6},
    {"topic": "orders", "key": 3, "value": {"units": 10, "item": "ink"}, "timestamp": 7},
]


def test_passes(tmp_path: Path) -> None:
    files = write(tmp_path, INPUTS, [
        {"topic": "BIG", "key": 1, "value": {"ITEM": "TEA"}, "timestamp": 5},
        {"topic": "BIG", "key": 3, "value": {"ITEM": "INK"}},
    ])
    result = invoke(*files)
    assert result.output.strip() == ">>> Test passed!", result.output
    assert result.exit_code == 0


def test_prints_the_first_difference_and_exits_1(tmp_path: Path) -> None:
    files = write(tmp_path, INPUTS, [
        {"topic": "BIG", "key": 1, "value": {"ITEM": "TEA"}, "timestamp": 5},
        {"topic": "BIG", "key": 3, "value": {"ITEM": "INKS"}},
    ])
    result = invoke(*files)
    assert result.exit_code == 1
    assert result.output.startswith(">>>>> Test failed: Topic 'BIG', message 1: Expected <3, ")


@pytest.mark.parametrize("inputs", [None, []])
def test_no_inputs_with_insert_values(tmp_path: Path, inputs: list | None) -> None:
    sql, inp, out = write(tmp_path, inputs, [
        {"topic": "BIG", "key": 9, "value": {"ITEM": "CUP"}, "timestamp": 0}])
    sql.write_text(SQL + "INSERT INTO orders (id, units, item) VALUES (9, 99.0, 'cup');\n")
    result = invoke(sql, inp, out)
    assert result.output.strip() == ">>> Test passed!", result.output


def test_bad_files_fail_cleanly(tmp_path: Path) -> None:
    sql, inp, out = write(tmp_path, INPUTS, [])
    assert invoke(sql, inp, out).exit_code == 1  # ksql-test-runner refuses empty outputs
    out.write_text('{"output": []}')
    result = invoke(sql, inp, out)
    assert result.exit_code == 1 and "outputs" in result.output
    sql.write_text("CREATE STREAM nope (;")
    out.write_text(json.dumps({"outputs": [{"topic": "X", "value": None}]}))
    result = invoke(sql, inp, out)
    assert result.exit_code == 1 and "Test failed" in result.output


def test_windowed_records_are_accepted(tmp_path: Path) -> None:
    sql = tmp_path / "s.sql"
    sql.write_text("CREATE STREAM w (id INT KEY, v INT) WITH (kafka_topic='w', "
                   "value_format='JSON', window_type='Tumbling', window_size='10 SECONDS');\n"
                   "CREATE STREAM out AS SELECT * FROM w WHERE v > 0;\n")
    window = {"start": 10000, "end": 20000, "type": "time"}
    inp = tmp_path / "i.json"
    inp.write_text(json.dumps({"inputs": [
        {"topic": "w", "key": 1, "value": {"v": 0}, "window": window},
        {"topic": "w", "key": 2, "value": {"v": 5}, "window": window, "timestamp": 10001}]}))
    out = tmp_path / "o.json"
    out.write_text(json.dumps({"outputs": [
        {"topic": "OUT", "key": 2, "value": {"V": 5}, "timestamp": 10001, "window": window}]}))
    result = invoke(sql, inp, out)
    assert result.output.strip() == ">>> Test passed!", result.output
