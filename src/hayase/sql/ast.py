"""The AST of hayase's ksqlDB dialect: plain dataclasses, easy to walk (``children``) and to print
back as SQL (``to_sql``).  Identifiers are stored already normalised (upper-cased unless they
were back-quoted).  Every node carries the 1-based ``line``/``column`` where it starts."""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from hayase.sql.types import SqlType, quote_identifier


@dataclass(eq=False)
class Node:
    line: int = field(default=0, kw_only=True, repr=False, compare=False)
    column: int = field(default=0, kw_only=True, repr=False, compare=False)

    def children(self) -> Iterator[Node]:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Node):
                yield v
            elif isinstance(v, (list, tuple)):
                for item in v:
                    if isinstance(item, Node):
                        yield item
                    elif isinstance(item, tuple):
                        yield from (x for x in item if isinstance(x, Node))

    def walk(self) -> Iterator[Node]:
        """Pre-order traversal of this node and every node below it."""
        yield self
        for c in self.children():
            yield from c.walk()

    def to_sql(self) -> str:
        raise NotImplementedError(type(self).__name__)

    def __str__(self) -> str:
        return self.to_sql()


def ident(name: str) -> str:
    return quote_identifier(name)


# =========================================================================== expressions


@dataclass(eq=False)
class Expression(Node):
    pass


@dataclass(eq=False)
class Literal(Expression):
    """``type`` is the literal's SQL type (INTEGER/BIGINT/DECIMAL/DOUBLE/STRING/BOOLEAN/NULL)."""

    value: Any
    type: SqlType

    def to_sql(self) -> str:
        if self.value is None:
            return "null"
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        if isinstance(self.value, str):
            return "'" + self.value.replace("'", "''") + "'"
        if isinstance(self.value, float):
            return repr(self.value).replace("e", "E")
        if isinstance(self.value, decimal.Decimal):
            return str(self.value)
        return str(self.value)


@dataclass(eq=False)
class ColumnRef(Expression):
    name: str
    source: str | None = None  # qualifier: source name or alias

    def to_sql(self) -> str:
        return (ident(self.source) + "." if self.source else "") + ident(self.name)


@dataclass(eq=False)
class LambdaVariable(Expression):
    name: str

    def to_sql(self) -> str:
        return ident(self.name)


@dataclass(eq=False)
class Dereference(Expression):
    """``base->field`` (struct field access)."""

    base: Expression
    field: str

    def to_sql(self) -> str:
        return f"{self.base.to_sql()}->{ident(self.field)}"


@dataclass(eq=False)
class DereferenceAll(Expression):
    """``base->*`` in a select list: every field of a struct."""

    base: Expression

    def to_sql(self) -> str:
        return f"{self.base.to_sql()}->*"


@dataclass(eq=False)
class Subscript(Expression):
    """``base[index]``: 1-based array index (negative counts from the end) or map lookup."""

    base: Expression
    index: Expression

    def to_sql(self) -> str:
        return f"{self.base.to_sql()}[{self.index.to_sql()}]"


@dataclass(eq=False)
class FunctionCall(Expression):
    name: str
    args: list[Expression]
    star: bool = False  # COUNT(*)
    distinct: bool = False

    def to_sql(self) -> str:
        if self.star:
            return f"{self.name}(*)"
        inner = ", ".join(a.to_sql() for a in self.args)
        return f"{self.name}({'DISTINCT ' if self.distinct else ''}{inner})"


@dataclass(eq=False)
class Lambda(Expression):
    params: list[str]
    body: Expression

    def to_sql(self) -> str:
        if len(self.params) == 1:
            return f"{ident(self.params[0])} => {self.body.to_sql()}"
        return "(" + ", ".join(ident(p) for p in self.params) + f") => {self.body.to_sql()}"


@dataclass(eq=False)
class Cast(Expression):
    operand: Expression
    target: SqlType

    def to_sql(self) -> str:
        return f"CAST({self.operand.to_sql()} AS {self.target})"


@dataclass(eq=False)
class Case(Expression):
    """Searched CASE (``operand`` None) or simple CASE."""

    operand: Expression | None
    whens: list[tuple[Expression, Expression]]
    default: Expression | None = None

    def to_sql(self) -> str:
        parts = ["CASE"]
        if self.operand is not None:
            parts.append(self.operand.to_sql())
        for cond, res in self.whens:
            parts.append(f"WHEN {cond.to_sql()} THEN {res.to_sql()}")
        if self.default is not None:
            parts.append(f"ELSE {self.default.to_sql()}")
        parts.append("END")
        return " ".join(parts)


@dataclass(eq=False)
class BinaryOp(Expression):
    """Arithmetic (+ - * / %), comparison (= <> != < <= > >=) and logical (AND OR)."""

    op: str
    left: Expression
    right: Expression

    def to_sql(self) -> str:
        return f"({self.left.to_sql()} {self.op} {self.right.to_sql()})"


@dataclass(eq=False)
class UnaryOp(Expression):
    op: str  # "-", "+", "NOT"
    operand: Expression

    def to_sql(self) -> str:
        if self.op == "NOT":
            return f"(NOT {self.operand.to_sql()})"
        return f"{self.op}{self.operand.to_sql()}"


@dataclass(eq=False)
class Between(Expression):
    operand: Expression
    low: Expression
    high: Expression
    negated: bool = False

    def to_sql(self) -> str:
        neg = "NOT " if self.negated else ""
        return f"({self.operand.to_sql()} {neg}BETWEEN {self.low.to_sql()} AND {self.high.to_sql()})"


@dataclass(eq=False)
class InList(Expression):
    operand: Expression
    items: list[Expression]
    negated: bool = False

    def to_sql(self) -> str:
        neg = "NOT " if self.negated else ""
        return f"({self.operand.to_sql()} {neg}IN ({', '.join(i.to_sql() for i in self.items)}))"


@dataclass(eq=False)
class Like(Expression):
    operand: Expression
    pattern: Expression
    escape: str | None = None
    negated: bool = False

    def to_sql(self) -> str:
        neg = "NOT " if self.negated else ""
        esc = "" if self.escape is None else " ESCAPE '" + self.escape.replace("'", "''") + "'"
        return f"({self.operand.to_sql()} {neg}LIKE {self.pattern.to_sql()}{esc})"


@dataclass(eq=False)
class IsNull(Expression):
    operand: Expression
    negated: bool = False

    def to_sql(self) -> str:
        return f"({self.operand.to_sql()} IS {'NOT ' if self.negated else ''}NULL)"


@dataclass(eq=False)
class IsDistinctFrom(Expression):
    left: Expression
    right: Expression
    negated: bool = False

    def to_sql(self) -> str:
        neg = "NOT " if self.negated else ""
        return f"({self.left.to_sql()} IS {neg}DISTINCT FROM {self.right.to_sql()})"


@dataclass(eq=False)
class ArrayConstructor(Expression):
    items: list[Expression]

    def to_sql(self) -> str:
        return "ARRAY[" + ", ".join(i.to_sql() for i in self.items) + "]"


@dataclass(eq=False)
class MapConstructor(Expression):
    entries: list[tuple[Expression, Expression]]

    def to_sql(self) -> str:
        return "MAP(" + ", ".join(f"{k.to_sql()}:={v.to_sql()}" for k, v in self.entries) + ")"


@dataclass(eq=False)
class StructConstructor(Expression):
    fields: list[tuple[str, Expression]]

    def to_sql(self) -> str:
        return "STRUCT(" + ", ".join(f"{ident(n)}:={v.to_sql()}" for n, v in self.fields) + ")"


# =========================================================================== queries


@dataclass(eq=False)
class SelectItem(Node):
    pass


@dataclass(eq=False)
class SingleColumn(SelectItem):
    expression: Expression
    alias: str | None = None

    def to_sql(self) -> str:
        return self.expression.to_sql() + (f" AS {ident(self.alias)}" if self.alias else "")


@dataclass(eq=False)
class AllColumns(SelectItem):
    """``*`` or ``source.*``."""

    source: str | None = None

    def to_sql(self) -> str:
        return (ident(self.source) + "." if self.source else "") + "*"


@dataclass(eq=False)
class Duration(Node):
    value: int
    unit: str  # normalised: MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS

    @property
    def millis(self) -> int:
        return self.value * _UNIT_MS[self.unit]

    def to_sql(self) -> str:
        return f"{self.value} {self.unit}"


_UNIT_MS = {"MILLISECONDS": 1, "SECONDS": 1000, "MINUTES": 60_000, "HOURS": 3_600_000,
            "DAYS": 86_400_000}
TIME_UNITS = {
    "MILLISECOND": "MILLISECONDS", "MILLISECONDS": "MILLISECONDS", "SECOND": "SECONDS",
    "SECONDS": "SECONDS", "MINUTE": "MINUTES", "MINUTES": "MINUTES", "HOUR": "HOURS",
    "HOURS": "HOURS", "DAY": "DAYS", "DAYS": "DAYS",
}


@dataclass(eq=False)
class Relation(Node):
    pass


@dataclass(eq=False)
class Table(Relation):
    name: str
    alias: str | None = None

    def to_sql(self) -> str:
        return ident(self.name) + (f" {ident(self.alias)}" if self.alias else "")


@dataclass(eq=False)
class Within(Node):
    before: Duration
    after: Duration
    grace: Duration | None = None

    def to_sql(self) -> str:
        if self.before.millis == self.after.millis and self.before.unit == self.after.unit:
            text = f"WITHIN {self.before.to_sql()}"
        else:
            text = f"WITHIN ({self.before.to_sql()}, {self.after.to_sql()})"
        return text + (f" GRACE PERIOD {self.grace.to_sql()}" if self.grace else "")


@dataclass(eq=False)
class Join(Relation):
    join_type: str  # INNER, LEFT, RIGHT, FULL
    left: Relation
    right: Table
    criteria: Expression
    within: Within | None = None

    def to_sql(self) -> str:
        w = f" {self.within.to_sql()}" if self.within else ""
        kind = {"FULL": "FULL OUTER"}.get(self.join_type, self.join_type)
        return (f"{self.left.to_sql()} {kind} JOIN {self.right.to_sql()}{w} "
                f"ON {self.criteria.to_sql()}")


@dataclass(eq=False)
class WindowExpression(Node):
    window_type: str  # TUMBLING, HOPPING, SESSION
    size: Duration
    advance: Duration | None = None
    retention: Duration | None = None
    grace: Duration | None = None

    def to_sql(self) -> str:
        opts = ""
        if self.retention:
            opts += f", RETENTION {self.retention.to_sql()}"
        if self.grace:
            opts += f", GRACE PERIOD {self.grace.to_sql()}"
        if self.window_type == "SESSION":
            return f"SESSION ({self.size.to_sql()}{opts})"
        if self.window_type == "HOPPING":
            assert self.advance is not None
            return f"HOPPING (SIZE {self.size.to_sql()}, ADVANCE BY {self.advance.to_sql()}{opts})"
        return f"TUMBLING (SIZE {self.size.to_sql()}{opts})"


@dataclass(eq=False)
class Query(Node):
    select: list[SelectItem]
    from_: Relation
    window: WindowExpression | None = None
    where: Expression | None = None
    group_by: list[Expression] | None = None
    partition_by: list[Expression] | None = None
    having: Expression | None = None
    emit: str | None = None  # CHANGES or FINAL
    limit: int | None = None

    def to_sql(self) -> str:
        parts = ["SELECT " + ", ".join(s.to_sql() for s in self.select),
                 "FROM " + self.from_.to_sql()]
        if self.window:
            parts.append("WINDOW " + self.window.to_sql())
        if self.where is not None:
            parts.append("WHERE " + self.where.to_sql())
        if self.group_by is not None:
            parts.append("GROUP BY " + ", ".join(e.to_sql() for e in self.group_by))
        if self.partition_by is not None:
            parts.append("PARTITION BY " + ", ".join(e.to_sql() for e in self.partition_by))
        if self.having is not None:
            parts.append("HAVING " + self.having.to_sql())
        if self.emit:
            parts.append("EMIT " + self.emit)
        if self.limit is not None:
            parts.append(f"LIMIT {self.limit}")
        return " ".join(parts)


# =========================================================================== statements


@dataclass(eq=False)
class Statement(Node):
    text: str = field(default="", kw_only=True, repr=False, compare=False)


@dataclass(eq=False)
class TableElement(Node):
    name: str
    type: SqlType
    constraint: str | None = None  # KEY, PRIMARY KEY, HEADERS, HEADER
    header_key: str | None = None

    def to_sql(self) -> str:
        text = f"{ident(self.name)} {self.type}"
        if self.constraint == "HEADER":
            text += f" HEADER('{self.header_key}')"
        elif self.constraint:
            text += f" {self.constraint}"
        return text


def _props_sql(props: dict[str, Literal]) -> str:
    if not props:
        return ""
    return " WITH (" + ", ".join(f"{k}={v.to_sql()}" for k, v in props.items()) + ")"


@dataclass(eq=False)
class CreateSource(Statement):
    """CREATE [OR REPLACE] [SOURCE] STREAM|TABLE [IF NOT EXISTS] name (elements) WITH (...)."""

    source_type: str  # STREAM or TABLE
    name: str
    elements: list[TableElement]
    properties: dict[str, Literal]
    or_replace: bool = False
    if_not_exists: bool = False
    is_source: bool = False

    def to_sql(self) -> str:
        head = "CREATE " + ("OR REPLACE " if self.or_replace else "")
        head += ("SOURCE " if self.is_source else "") + self.source_type + " "
        head += ("IF NOT EXISTS " if self.if_not_exists else "") + ident(self.name)
        if self.elements:
            head += " (" + ", ".join(e.to_sql() for e in self.elements) + ")"
        return head + _props_sql(self.properties)


@dataclass(eq=False)
class CreateAsSelect(Statement):
    source_type: str
    name: str
    query: Query
    properties: dict[str, Literal]
    or_replace: bool = False
    if_not_exists: bool = False

    def to_sql(self) -> str:
        head = "CREATE " + ("OR REPLACE " if self.or_replace else "") + self.source_type + " "
        head += ("IF NOT EXISTS " if self.if_not_exists else "") + ident(self.name)
        return head + _props_sql(self.properties) + " AS " + self.query.to_sql()


@dataclass(eq=False)
class CreateType(Statement):
    name: str
    type: SqlType
    if_not_exists: bool = False

    def to_sql(self) -> str:
        return f"CREATE TYPE {'IF NOT EXISTS ' if self.if_not_exists else ''}{ident(self.name)} AS {self.type}"


@dataclass(eq=False)
class DropType(Statement):
    name: str
    if_exists: bool = False

    def to_sql(self) -> str:
        return f"DROP TYPE {'IF EXISTS ' if self.if_exists else ''}{ident(self.name)}"


@dataclass(eq=False)
class InsertInto(Statement):
    target: str
    query: Query
    properties: dict[str, Literal] = field(default_factory=dict)

    def to_sql(self) -> str:
        return f"INSERT INTO {ident(self.target)}{_props_sql(self.properties)} {self.query.to_sql()}"


@dataclass(eq=False)
class InsertValues(Statement):
    target: str
    columns: list[str] | None
    values: list[Expression]

    def to_sql(self) -> str:
        cols = "" if self.columns is None else " (" + ", ".join(ident(c) for c in self.columns) + ")"
        return (f"INSERT INTO {ident(self.target)}{cols} VALUES ("
                + ", ".join(v.to_sql() for v in self.values) + ")")


@dataclass(eq=False)
class DropSource(Statement):
    source_type: str
    name: str
    if_exists: bool = False
    delete_topic: bool = False

    def to_sql(self) -> str:
        return (f"DROP {self.source_type} {'IF EXISTS ' if self.if_exists else ''}{ident(self.name)}"
                + (" DELETE TOPIC" if self.delete_topic else ""))


@dataclass(eq=False)
class SetProperty(Statement):
    name: str
    value: str

    def to_sql(self) -> str:
        return f"SET '{self.name}'='{self.value}'"


@dataclass(eq=False)
class UnsetProperty(Statement):
    name: str

    def to_sql(self) -> str:
        return f"UNSET '{self.name}'"


@dataclass(eq=False)
class DefineVariable(Statement):
    name: str
    value: str

    def to_sql(self) -> str:
        return f"DEFINE {self.name}='" + self.value.replace("'", "''") + "'"


@dataclass(eq=False)
class UndefineVariable(Statement):
    name: str

    def to_sql(self) -> str:
        return f"UNDEFINE {self.name}"


@dataclass(eq=False)
class Show(Statement):
    what: str  # STREAMS, TABLES, TOPICS, ALL TOPICS, QUERIES, PROPERTIES, FUNCTIONS, ...
    extended: bool = False

    def to_sql(self) -> str:
        return f"SHOW {self.what}{' EXTENDED' if self.extended else ''}"


@dataclass(eq=False)
class Describe(Statement):
    target: str  # a source name, or STREAMS / TABLES (DESCRIBE STREAMS)
    extended: bool = False

    def to_sql(self) -> str:
        return f"DESCRIBE {ident(self.target)}{' EXTENDED' if self.extended else ''}"


@dataclass(eq=False)
class DescribeFunction(Statement):
    name: str

    def to_sql(self) -> str:
        return f"DESCRIBE FUNCTION {self.name}"


@dataclass(eq=False)
class Explain(Statement):
    query: Query | None = None
    query_id: str | None = None

    def to_sql(self) -> str:
        return "EXPLAIN " + (self.query.to_sql() if self.query else str(self.query_id))


@dataclass(eq=False)
class Terminate(Statement):
    query_id: str | None  # None: TERMINATE ALL

    def to_sql(self) -> str:
        return "TERMINATE " + (self.query_id or "ALL")


@dataclass(eq=False)
class PauseQuery(Statement):
    """PAUSE query_id | ALL (ksqlDB 0.26+): a persistent query stops processing, keeping its
    consumer group's offsets and its state, until RESUME."""

    query_id: str | None  # None: PAUSE ALL

    def to_sql(self) -> str:
        return "PAUSE " + (self.query_id or "ALL")


@dataclass(eq=False)
class ResumeQuery(Statement):
    query_id: str | None  # None: RESUME ALL

    def to_sql(self) -> str:
        return "RESUME " + (self.query_id or "ALL")


@dataclass(eq=False)
class QueryStatement(Statement):
    """A transient (push or pull) SELECT."""

    query: Query

    def to_sql(self) -> str:
        return self.query.to_sql()


@dataclass(eq=False)
class Assert(Statement):
    """ASSERT ... statements of ksqlDB's test format: kept as raw text."""

    body: str

    def to_sql(self) -> str:
        return "ASSERT " + self.body


@dataclass(eq=False)
class Alter(Statement):
    """ALTER STREAM|TABLE name ...: parsed so it can be refused with a statement error."""

    source_type: str
    name: str
    body: str

    def to_sql(self) -> str:
        return f"ALTER {self.source_type} {ident(self.name)} {self.body}"
