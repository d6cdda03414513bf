from decimal import Decimal

from hayase.testing.compare import ActualRecord, first_difference, matches
from hayase.testing.qtt import ABSENT, expand_node, load_json, parse_record, split_sql
from hayase.testing.scope import DEFAULT_SCOPE


def test_comments_stripped_and_floats_exact():
    doc = load_json('{"a": 1.10, // comment\n "b": "x//y", /* c */ "c": [1]}')
    assert doc == {"a": Decimal("1.10"), "b": "x//y", "c": [1]}
    assert str(doc["a"]) == "1.10"


def test_expand_formats_and_configs_names_and_substitution():
    node = {"name": "n", "format": ["JSON", "AVRO"], "config": ["true", "false"],
            "properties": {"ksql.new.query.planner.enabled": "{CONFIG}"},
            "statements": ["CREATE STREAM S (A INT) WITH (value_format='{FORMAT}');"],
            "inputs": [{"topic": "t", "value": {"A": 1}}], "outputs": []}
    cases = expand_node("file", node)
    assert [c.name for c in cases] == [
        "file - n - JSON - ksql.new.query.planner.enabled=true",
        "file - n - JSON - ksql.new.query.planner.enabled=false",
        "file - n - AVRO - ksql.new.query.planner.enabled=true",
        "file - n - AVRO - ksql.new.query.planner.enabled=false",
    ]
    assert "value_format='JSON'" in cases[0].statements[0]
    assert DEFAULT_SCOPE.out_of_scope_reason(cases[2]) == "format AVRO"
    assert DEFAULT_SCOPE.out_of_scope_reason(cases[0]) is None


def test_scope_rules():
    node = {"name": "g", "statements": ["CREATE TABLE T AS SELECT A, COUNT(*) FROM S GROUP BY A;"],
            "outputs": []}
    assert DEFAULT_SCOPE.out_of_scope_reason(expand_node("f", node)[0]) is None
    node["statements"] = ["CREATE TABLE W AS SELECT A, COUNT(*) FROM S WINDOW TUMBLING "
                          "(SIZE 1 SECOND) GROUP BY A EMIT FINAL;"]
    assert DEFAULT_SCOPE.out_of_scope_reason(expand_node("f", node)[0]) is None
    node["statements"] = ["CREATE STREAM O AS SELECT TEST_UDF(A) FROM S;"]
    assert DEFAULT_SCOPE.out_of_scope_reason(expand_node("f", node)[0]).startswith("test-only")


def test_record_defaults():
    r = parse_record({"topic": "t", "value": None})
    assert r.key is ABSENT and r.timestamp is ABSENT and r.key_or_none is None


def test_matching_rules():
    assert matches(1.0000001, Decimal("1.0"))
    assert not matches(1.1, Decimal("1.0"))
    assert matches(Decimal("1.10"), Decimal("1.10"))
    assert not matches(Decimal("1.10"), Decimal("1.1"))
    assert not matches(Decimal("1.0"), 1) and matches(Decimal("1"), 1)
    assert matches(Decimal("15.11"), "15.11")
    assert matches(b"!", "IQ==")
    assert matches({"NAME": 1}, {"name": 1})
    assert not matches({"NAME": 1, "X": 2}, {"NAME": 1})
    assert matches({"ASCII": None}, {"HEX": None})  # absent reads as null, like Map.get
    assert not matches({"ASCII": 1}, {"HEX": 1})
    assert not matches(None, 0) and matches(None, None)
    assert not matches(0, False)


def test_first_difference_reports_position_and_counts():
    exp = [parse_record({"topic": "S", "key": 1, "value": {"A": 1}, "timestamp": 0})]
    act = [ActualRecord("S", 1, {"A": 2}, 0, None, [])]
    assert "message 0" in first_difference("S", exp, act)
    assert first_difference("S", exp, [ActualRecord("S", 1, {"A": 1}, 7, None, [])],
                            check_zero_timestamps=False) is None
    assert "expected 1 records but got 0" in first_difference("S", exp, [])


def test_split_sql():
    text = "SET 'a'='b';\n-- c;\nCREATE STREAM S (A STRING) WITH (x='y;z');\nINSERT INTO S VALUES ('it''s');"
    assert split_sql(text) == ["SET 'a'='b';", "CREATE STREAM S (A STRING) WITH (x='y;z');",
                               "INSERT INTO S VALUES ('it''s');"]
