"""Property-based fuzzing of the OpenAPI schema with schemathesis, in process (ASGI).

Every operation gets at least ``MIN_CASES`` generated requests (``OPERATIONS_CASES`` for
the fraud-operations routes): schemathesis's positive cases (data the schema allows) and
negative cases (data it forbids: wrong types, missing fields, out-of-range values, bodies
that are not JSON, a missing API key), each with a few generated extra headers and query
parameters (hostile ``X-Request-Id``, ``traceparent`` and ``tracestate`` values, unknown
names) that every route must ignore, but a route that declares query parameters of its
own (the review queue, the shadow view), which refuses unknown ones with a 422.
The three routes that take no input at all get positive cases only. Each answer passes:

- ``not_a_server_error``: no 5xx;
- ``status_code_conformance``: the status is documented for the operation;
- ``content_type_conformance`` and ``response_schema_conformance``: the body is what the
  OpenAPI schema says for that status; ``response_headers_conformance``;
- ``negative_data_rejection``: data the schema forbids gets a 4xx;
- and the ``X-Request-Id`` answered is always a plain token.

Generation is derandomized (a fixed seed per operation, no example database), so a run
is reproducible. The timestamps of positive cases are moved into 2000-2023 (year only):
the schema cannot say "not before 2000, not after tomorrow", and without this almost no
positive case would reach the model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.core.config import Settings
from app.main import create_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "fuzz-key"
MIN_CASES = 300
# The fraud-operations routes (rules, review, shadow) answer from the rule set and the
# system of record, not the scorer: fewer cases each keep CI in its budget.
OPERATIONS_CASES = 120
NO_INPUT = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
OPERATIONS = NO_INPUT | {
    ("GET", "/v1/model"),
    ("GET", "/v1/features/status"),
    ("POST", "/v1/model/reload"),
    ("POST", "/v1/predict"),
    ("POST", "/v1/predict/batch"),
    ("POST", "/v1/feedback"),
    ("GET", "/v1/rules"),
    ("GET", "/v1/rules/lists"),
    ("POST", "/v1/rules/dry-run"),
    ("PUT", "/v1/rules/lists/{name}/{value}"),
    ("DELETE", "/v1/rules/lists/{name}/{value}"),
    ("GET", "/v1/review/queue"),
    ("GET", "/v1/review/{transaction_id}"),
    ("POST", "/v1/review/{transaction_id}/claim"),
    ("POST", "/v1/review/{transaction_id}/release"),
    ("POST", "/v1/review/{transaction_id}/outcome"),
    ("GET", "/v1/shadow"),
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
TOKEN = re.compile(r"[A-Za-z0-9._-]{1,64}")

# What HTTP allows in a header value: printable Latin-1, no CR or LF, no blank at either end.
_VALUE = st.from_regex(r"\A[!-~\xa1-\xff]([ -~\xa1-\xff]{0,60}[!-~\xa1-\xff])?\Z")
_HEX = "0123456789abcdef"
_TRACEPARENT = st.builds(
    "{}-{}-{}-{}".format,
    *(st.text(_HEX + "zX-", min_size=n, max_size=n) for n in (2, 32, 16, 2)),
)
EXTRA_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "X-Request-Id": _VALUE | st.from_regex(r"\A[A-Za-z0-9._-]{1,80}\Z"),
        "traceparent": _VALUE | _TRACEPARENT,
        "tracestate": _VALUE,
        "X-Forwarded-For": _VALUE,
        "X-Unknown-Header": _VALUE,
    },
)
EXTRA_QUERY = st.dictionaries(st.from_regex(r"\A[a-z_]{1,12}\Z"), st.text(max_size=20), max_size=3)


def _plausible_years(value: Any) -> Any:
    """``value`` with every RFC 3339 ``timestamp`` moved to a year in 2000-2023 (a
    multiple of 4 away, so February 29th stays valid)."""
    if isinstance(value, list):
        return [_plausible_years(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: _plausible_years(item) for key, item in value.items()}
    stamp = out.get("timestamp")
    if isinstance(stamp, str) and re.match(r"\d{4}-", stamp):
        out["timestamp"] = f"{2000 + int(stamp[:4]) % 24}{stamp[4:]}"
    return out


@pytest.fixture
def schema(settings_for: Callable[..., Settings]) -> schemathesis.BaseSchema:
    """The real app (tiny bundle, tiny Feast repo) behind an API key. Schemathesis starts
    its lifespan with the first request, and its pytest plugin ends it with the test."""
    app = create_app(settings_for(api_keys=KEY, audit_synchronous="NORMAL"))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_fuzzed(schema: schemathesis.BaseSchema) -> None:
    found = {
        (result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()
    }
    assert found == OPERATIONS


def _fuzz(operation: Any, mode: str, examples: int, statuses: Counter[int]) -> int:
    """Run ``examples`` generated cases; the number that ran."""
    ran = 0

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        case=operation.as_strategy(generation_mode=GenerationMode(mode)),
        headers=EXTRA_HEADERS,
        query=EXTRA_QUERY,
    )
    def run(case: Any, headers: dict[str, str], query: dict[str, str]) -> None:
        nonlocal ran
        if mode == "positive" and isinstance(case.body, dict):
            case.body = _plausible_years(case.body)
        response = case.call_and_validate(
            headers={"X-API-Key": KEY, **headers}, params=query, checks=CHECKS
        )
        assert TOKEN.fullmatch(response.headers["x-request-id"][0])
        ran += 1
        statuses[response.status_code] += 1

    run()
    return ran


@pytest.mark.parametrize(
    "method,path", sorted(OPERATIONS), ids=[f"{m} {p}" for m, p in sorted(OPERATIONS)]
)
def test_fuzz(
    schema: schemathesis.BaseSchema,
    method: str,
    path: str,
    record_property: Callable[[str, object], None],
) -> None:
    operation = schema[path][method]
    modes = ["positive"] if (method, path) in NO_INPUT else ["positive", "negative"]
    statuses: Counter[int] = Counter()
    least = (
        OPERATIONS_CASES
        if path.startswith(("/v1/rules", "/v1/review", "/v1/shadow"))
        else MIN_CASES
    )
    examples = (least + 20) // len(modes)
    cases = {mode: _fuzz(operation, mode, examples, statuses) for mode in modes}

    total = sum(cases.values())
    summary = f"{method} {path}: {total} cases {cases}, statuses {dict(sorted(statuses.items()))}"
    print(summary)
    record_property("fuzz_cases", summary)
    assert total >= least, summary
    assert all(count >= least // 3 for count in cases.values()), summary
    assert not {code for code in statuses if code >= 500}, summary
