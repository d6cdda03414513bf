"""Which conformance cases are in scope, written as data so that it can grow issue by issue.

A case is out of scope when any rule below matches it; `out_of_scope_reason` says which one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hayase.testing.qtt import TestCase

# Formats that need a Schema Registry (or are not implemented yet).
EXCLUDED_FORMATS: frozenset[str] = frozenset({"AVRO", "PROTOBUF", "PROTOBUF_NOSR", "JSON_SR"})

# Functions that exist only in ksqlDB's functional-test jar.
TEST_ONLY_FUNCTIONS: frozenset[str] = frozenset({
    "TEST_UDF", "TEST_UDAF", "TEST_UDTF", "BAD_UDF", "VAR_ARG", "MID_VAR_ARG", "GENERIC_VAR_ARG",
    "OBJ_COL_ARG", "MULTI_ARG", "FIVE_ARG", "THROWING_UDTF", "TOSTRUCT",
})

# Language features not delivered yet: regex over the statements (upper-cased, whitespace
# collapsed) -> the feature name reported. Windowed *sources* (WITH (WINDOW_TYPE=...)) are
# stateless and in scope; the WINDOW clause (windowed aggregation) is not.
EXCLUDED_FEATURES: dict[str, str] = {}

_FORMAT_PROPERTY = re.compile(
    r"\b(?:VALUE_FORMAT|KEY_FORMAT|FORMAT)\s*=\s*'([A-Z_]+)'", re.IGNORECASE
)
_FUNCTION_CALL = re.compile(r"\b([A-Z_][A-Z_0-9]*)\s*\(", re.IGNORECASE)
_DEFAULT_FORMAT_PROPERTIES = (
    "ksql.persistence.default.format.value",
    "ksql.persistence.default.format.key",
)


@dataclass(frozen=True)
class Scope:
    excluded_formats: frozenset[str] = EXCLUDED_FORMATS
    test_only_functions: frozenset[str] = TEST_ONLY_FUNCTIONS
    excluded_features: dict[str, str] = field(default_factory=lambda: dict(EXCLUDED_FEATURES))

    def out_of_scope_reason(self, case: TestCase) -> str | None:
        if not case.enabled:
            return "disabled"
        if case.format and case.format.upper() in self.excluded_formats:
            return f"format {case.format}"
        for prop in _DEFAULT_FORMAT_PROPERTIES:
            value = case.properties.get(prop)
            if isinstance(value, str) and value.upper() in self.excluded_formats:
                return f"format {value}"
        text = " ".join(case.statements)
        for m in _FORMAT_PROPERTY.finditer(text):
            if m.group(1).upper() in self.excluded_formats:
                return f"format {m.group(1).upper()}"
        for topic in case.topics:
            if any(k in topic for k in ("keySchema", "valueSchema", "keySchemaId", "valueSchemaId",
                                        "schema")):
                return "schema registry"
            for k in ("keyFormat", "valueFormat", "format"):
                fmt = topic.get(k)
                if isinstance(fmt, str) and fmt.upper() in self.excluded_formats:
                    return f"format {fmt.upper()}"
        for m in _FUNCTION_CALL.finditer(text):
            if m.group(1).upper() in self.test_only_functions:
                return f"test-only function {m.group(1).upper()}"
        upper = " ".join(text.upper().split())
        for pattern, feature in self.excluded_features.items():
            if re.search(pattern, upper):
                return feature
        return None


DEFAULT_SCOPE = Scope()
