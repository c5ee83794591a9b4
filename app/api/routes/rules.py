"""The analysts' rule set: what is in force, a dry-run over recorded decisions, and the
lists (blocked terminals, allow-listed customers...) kept in the system of record.

The rule file itself is changed where it lives (the ``fraud-rules`` ConfigMap; each pod
reloads it within ``RULES_REFRESH_SECONDS`` of the mount changing): docs/fraud-operations.md.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from app.api.deps import Runtime, RuntimeDep
from app.api.errors import ERROR_RESPONSES, RECORD_DOWN, record_unavailable
from app.api.json_body import StrictJSONRoute
from app.schemas import ErrorOut
from app.schemas.operations import (
    DryRunIn,
    DryRunOut,
    ListEntryIn,
    ListEntryOut,
    RuleOut,
    RuleSetOut,
)
from app.services.rule_dry_run import run_dry_run
from fraud_rules.load import RuleSetError
from system_of_record.rule_lists import add_entry, entry_details, list_entries, remove_entry
from system_of_record.store import RecordStore, RecordUnavailable

log = logging.getLogger(__name__)

router = APIRouter(tags=["rules"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)
NO_LIST: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such list is declared in the rule set in force"}
}
ListName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
ListValue = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/v1/rules", response_model=RuleSetOut, summary="The rule set in force")
async def rules(runtime: RuntimeDep) -> RuleSetOut:
    """The rules in force (in file order), the lists' sizes, and why the last file was
    refused, if it was (the set in force then stays)."""
    state = runtime.rulebook.state()
    active = state.active
    return RuleSetOut(
        version=active.version if active else None,
        label=active.label if active else None,
        source=state.source,
        loaded_at=datetime.fromtimestamp(state.loaded_at, UTC) if state.loaded_at else None,
        problem=state.problem,
        rules=[
            RuleOut(
                id=r.id,
                description=r.description,
                stage=r.stage,  # type: ignore[arg-type]
                enabled=r.enabled,
                reason=r.reason,
                decision=r.decision,
                risk_level=r.risk_level,
                fields=list(r.fields),
            )
            for r in (active.rules if active else ())
        ],
        lists={name: len(values) for name, values in (active.lists if active else {}).items()},
    )


@router.post(
    "/v1/rules/dry-run",
    response_model=DryRunOut,
    responses=RECORD_DOWN,
    summary="Try a rule set over recorded decisions",
)
async def dry_run(body: DryRunIn, runtime: RuntimeDep) -> DryRunOut:
    """Run a candidate rule set (or the set in force) over the decisions on record with a
    transaction time in [since, until) and compare it with the set in force: decisions it
    would change, and precision/recall on the rows whose label has arrived. A rule set
    that does not validate is a 422 listing every problem."""
    baseline = runtime.rulebook.active
    if body.rules is None:
        if baseline is None:  # a pod not ready (rules invalid): nothing to replay
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no rule set is in force")
        candidate = baseline
    else:
        try:
            candidate = runtime.rulebook.parse(body.rules)
        except RuleSetError as exc:  # the API's 422: one field error per problem
            problems = [
                {"loc": ("body", "rules"), "msg": problem, "type": "rule_set"}
                for problem in exc.problems
            ]
            raise RequestValidationError(problems) from exc
    limit = min(
        body.limit or runtime.settings.rules_dry_run_max_rows,
        runtime.settings.rules_dry_run_max_rows,
    )
    names = runtime.service.predictor.feature_names

    def work() -> DryRunOut:
        store = runtime.desk.open()  # a long read: a connection of its own
        try:
            result = run_dry_run(
                store,
                candidate,
                baseline,
                body.since,
                body.until,
                limit,
                names,
                runtime.settings.feature_service,
            )
        finally:
            store.close()
        return DryRunOut(
            rule_set=candidate.label,
            baseline=baseline.label if baseline else None,
            since=body.since,
            until=body.until,
            truncated=result.truncated,
            features_missing=result.features_missing,
            report=result.report,
        )

    try:
        return await run_in_threadpool(work)
    except RecordUnavailable as exc:
        raise record_unavailable(exc) from exc


@router.get("/v1/rules/lists", responses=RECORD_DOWN, summary="The rule lists' entries")
async def lists(runtime: RuntimeDep) -> dict[str, object]:
    """Every entry of the lists kept in the system of record, with who added it and when
    (the values written in the rule file itself are in ``GET /v1/rules``)."""
    try:
        version, _ = await run_in_threadpool(runtime.desk.run, list_entries)
        entries = await run_in_threadpool(runtime.desk.run, entry_details)
    except RecordUnavailable as exc:
        raise record_unavailable(exc) from exc
    return {"version": version, "entries": entries}


async def _change_list(
    runtime: Runtime, request: Request, name: str, value: str, note: str | None
) -> ListEntryOut:
    active = runtime.rulebook.active
    if active is None or name not in active.lists:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no list {name!r} is declared in the rule set in force"
        )
    who: str = request.state.api_key
    now = datetime.now(UTC)

    def work(store: RecordStore) -> str:
        if note is None:
            outcome: str = remove_entry(store, name, value, who, now)
        else:
            outcome = add_entry(store, name, value, who, note, now)
        version, entries = list_entries(store)
        runtime.rulebook.apply_lists(version, entries)  # this pod at once, others soon
        return outcome

    try:
        outcome = await run_in_threadpool(runtime.desk.run, work)
    except RecordUnavailable as exc:
        raise record_unavailable(exc) from exc
    log.info("rule list changed", extra={"fields": {"list": name, "status": outcome, "by": who}})
    label = runtime.rulebook.active.label if runtime.rulebook.active else None
    return ListEntryOut(list=name, value=value, status=outcome, rule_set_version=label)  # type: ignore[arg-type]


@router.put(
    "/v1/rules/lists/{name}/{value}",
    response_model=ListEntryOut,
    responses={
        **RECORD_DOWN,
        **NO_LIST,
        200: {"model": ListEntryOut, "description": "The value was in the list already"},
    },
    status_code=status.HTTP_201_CREATED,
    summary="Add a value to a rule list",
)
async def add_to_list(
    name: ListName,
    value: ListValue,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    body: ListEntryIn | None = None,
) -> ListEntryOut:
    """Add ``value`` to the list ``name`` (declared in the rule file) for every pod: this
    one at once, the others within RULE_LISTS_REFRESH_SECONDS. Idempotent: ``present``
    when it was there already. Who added it is recorded."""
    out = await _change_list(runtime, request, name, value, body.note if body else "")
    response.status_code = status.HTTP_201_CREATED if out.status == "added" else status.HTTP_200_OK
    return out


@router.delete(
    "/v1/rules/lists/{name}/{value}",
    response_model=ListEntryOut,
    responses={**RECORD_DOWN, **NO_LIST},
    summary="Remove a value from a rule list",
)
async def remove_from_list(
    name: ListName, value: ListValue, request: Request, runtime: RuntimeDep
) -> ListEntryOut:
    """Remove ``value`` from the list ``name``; ``absent`` when it was not there. Values
    written in the rule file itself stay (change the file for those)."""
    return await _change_list(runtime, request, name, value, None)
