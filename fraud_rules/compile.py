"""One parsed condition tree, two evaluators: scalar closures over one row's values (the
single-transaction path, no numpy per node) and numpy functions over whole columns (the
batch path, no Python per row). Missing values (NaN, None) make every comparison and
membership false in both."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fraud_rules.schema import AllOf, AnyOf, Member, Node, NotOf

Row = Mapping[str, Any]  # field -> float (NaN missing) or str | None
ScalarFn = Callable[[Row], bool]
VectorFn = Callable[["Columns"], np.ndarray]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def member_values(
    node: Member, lists: Mapping[str, frozenset[str | float]], numeric: bool
) -> frozenset[Any]:
    """The values a membership test accepts: the literal ones, or the list's as it stands
    (file values plus the record's); text values of a numeric list are parsed as numbers."""
    raw = node.values if node.list_name is None else lists.get(node.list_name, frozenset())
    if not numeric:
        return frozenset(v for v in raw if isinstance(v, str))
    found: set[float] = set()
    for value in raw:
        try:
            number = float(value)
        except ValueError:
            continue
        if number == number:  # a NaN never matches
            found.add(number)
    return frozenset(found)


def scalar(node: Node, kinds: Mapping[str, str], lists: Mapping[str, frozenset[Any]]) -> ScalarFn:
    """A closure answering the condition for one row."""
    if isinstance(node, AllOf | AnyOf):
        parts = tuple(scalar(child, kinds, lists) for child in node.children)
        if isinstance(node, AllOf):

            def all_of(row: Row) -> bool:
                for part in parts:
                    if not part(row):
                        return False
                return True

            return all_of

        def any_of(row: Row) -> bool:
            for part in parts:
                if part(row):
                    return True
            return False

        return any_of
    if isinstance(node, NotOf):
        inner = scalar(node.child, kinds, lists)
        return lambda row: not inner(row)
    field = node.field
    if isinstance(node, Member):
        accepted = member_values(node, lists, kinds[field] == "numeric")
        return lambda row: row[field] in accepted  # None and NaN are never members
    value = node.value
    if node.op == "!=":  # the only operator a missing value would satisfy
        if kinds[field] == "numeric":
            return lambda row: row[field] == row[field] and row[field] != value
        return lambda row: row[field] is not None and row[field] != value
    compare = _OPS[node.op]  # NaN and None compare false
    return lambda row: compare(row[field], value)


class Columns:
    """The inputs as numpy columns, converted once per call and only for fields used."""

    def __init__(
        self, n: int, numeric: Mapping[str, Any], text: Mapping[str, Sequence[str | None]]
    ) -> None:
        self.n = n
        self._numeric = numeric
        self._text = text
        self._cache: dict[object, Any] = {}

    def number(self, field: str) -> np.ndarray:
        if field not in self._cache:
            raw = self._numeric.get(field)
            self._cache[field] = (
                np.full(self.n, np.nan) if raw is None else np.asarray(raw, dtype=np.float64)
            )
        return self._cache[field]  # type: ignore[no-any-return]

    def text(self, field: str) -> tuple[list[str | None], np.ndarray]:
        """The column's distinct values (None included) and each row's position in them."""
        if field not in self._cache:
            raw = self._text.get(field)
            if raw is None:
                self._cache[field] = ([None], np.zeros(self.n, dtype=np.intp))
            else:
                position = {value: i for i, value in enumerate(dict.fromkeys(raw))}
                codes = np.fromiter(map(position.__getitem__, raw), dtype=np.intp, count=self.n)
                self._cache[field] = (list(position), codes)
        return self._cache[field]  # type: ignore[no-any-return]

    def text_test(self, field: str, test: Callable[[str | None], bool], key: object) -> np.ndarray:
        """``test`` applied once per distinct value (memoised by ``key`` for the call), then
        spread to the rows by a gather: text columns repeat few values (channels,
        categories, listed ids), so this costs far less than comparing every row."""
        cache_key = (field, key)
        if cache_key not in self._cache:
            distinct, codes = self.text(field)
            answers = np.fromiter(map(test, distinct), dtype=bool, count=len(distinct))
            self._cache[cache_key] = answers[codes]
        return self._cache[cache_key]  # type: ignore[no-any-return]


def vector(node: Node, kinds: Mapping[str, str], lists: Mapping[str, frozenset[Any]]) -> VectorFn:
    """A function answering the condition for every row of the columns at once."""
    if isinstance(node, AllOf | AnyOf):
        parts = tuple(vector(child, kinds, lists) for child in node.children)
        combine = np.logical_and if isinstance(node, AllOf) else np.logical_or

        def logic(cols: Columns) -> np.ndarray:
            out = parts[0](cols).copy()
            for part in parts[1:]:
                combine(out, part(cols), out=out)
            return out

        return logic
    if isinstance(node, NotOf):
        inner = vector(node.child, kinds, lists)
        return lambda cols: ~inner(cols)
    field = node.field
    numeric = kinds[field] == "numeric"
    if isinstance(node, Member):
        members = member_values(node, lists, numeric)
        if not members:
            return lambda cols: np.zeros(cols.n, dtype=bool)
        if numeric:
            accepted = np.array(sorted(members))
            return lambda cols: np.isin(cols.number(field), accepted)
        return lambda cols: cols.text_test(field, members.__contains__, ("in", id(members)))
    compare = _OPS[node.op]
    value = node.value
    if numeric:
        if node.op == "!=":
            return lambda cols: (cols.number(field) != value) & ~np.isnan(cols.number(field))
        return lambda cols: np.asarray(compare(cols.number(field), value))
    if node.op == "!=":
        differs: Callable[[str | None], bool] = lambda v: v is not None and v != value  # noqa: E731
        return lambda cols: cols.text_test(field, differs, ("!=", value))
    return lambda cols: cols.text_test(field, lambda v: compare(v, value), (node.op, value))
