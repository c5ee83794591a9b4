"""tools/audit_deps.py: pip-audit's JSON and the accepted findings decide the `make lint` gate.

The reports below are in pip-audit's ``--format json`` shape, so the gate is checked without
a network (the vulnerability services are not reachable from every machine).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tools import audit_deps
from tools.audit_deps import (
    Acceptance,
    FileAudit,
    decide,
    load_accepted,
    parse_accepted,
    parse_report,
    pinned_packages,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 6, 1)
PINS = {"jinja2": "3.1.2", "requests": "2.32.3", "idna": "3.7"}
VULNERABLE: dict[str, Any] = {
    "dependencies": [
        {
            "name": "jinja2",
            "version": "3.1.2",
            "vulns": [
                {
                    "id": "GHSA-h5c8-rqwp-cp95",
                    "fix_versions": ["3.1.3"],
                    "aliases": ["CVE-2024-22195"],
                    "description": "xmlattr filter accepts keys containing spaces",
                }
            ],
        },
        {"name": "requests", "version": "2.32.3", "vulns": []},
        {
            "name": "idna",
            "skip_reason": "Dependency not found on PyPI and could not be audited: idna (3.7)",
        },
    ],
    "fixes": [],
}
CLEAN: dict[str, Any] = {
    "dependencies": [
        {"name": "Jinja2", "version": "3.1.6", "vulns": []},
        {"name": "requests", "version": "2.32.3", "vulns": []},
    ],
    "fixes": [],
}


def acceptance(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "CVE-2024-22195",
        "package": "Jinja2",
        "reason": "xmlattr is never given user-controlled keys here",
        "review_by": dt.date(2026, 12, 31),
    }
    return entry | overrides


def accepted(*entries: dict[str, Any]) -> list[Acceptance]:
    parsed, errors = parse_accepted({"accepted": list(entries)}, TODAY)
    assert errors == []
    return parsed


def test_pinned_packages_reads_uv_compile_output() -> None:
    text = (
        "fastapi==0.165.0          # via -r requirements/api.in\n"
        "# a comment\n"
        "uvicorn[standard]==0.54.0  # via -r requirements/api.in\n"
        "Typing_Extensions==4.16.0\n"
        "--index-url https://example.invalid/simple\n"
    )
    assert pinned_packages(text) == {
        "fastapi": "0.165.0",
        "uvicorn": "0.54.0",
        "typing-extensions": "4.16.0",
    }


def test_parse_report_collects_vulnerabilities_and_skipped() -> None:
    audit = parse_report(VULNERABLE, "requirements-x.txt", PINS)
    assert audit.audited == {"jinja2": "3.1.2", "requests": "2.32.3"}
    [vulnerability] = audit.vulnerabilities
    assert (vulnerability.package, vulnerability.version) == ("jinja2", "3.1.2")
    assert vulnerability.id == "GHSA-h5c8-rqwp-cp95"
    assert vulnerability.aliases == ("CVE-2024-22195",)
    assert vulnerability.fix_versions == ("3.1.3",)
    [skipped] = audit.skipped
    assert (skipped.package, skipped.version) == ("idna", "3.7")  # version from the pins


def test_an_unaccepted_vulnerability_fails() -> None:
    decision = decide([parse_report(VULNERABLE, "r.txt", PINS)], [], strict=False)
    assert decision.exit_code == 1
    [(vulnerability, paths)] = decision.unaccepted
    assert vulnerability.id == "GHSA-h5c8-rqwp-cp95" and paths == ["r.txt"]
    assert "FAIL jinja2==3.1.2 GHSA-h5c8-rqwp-cp95" in render([], decision)


def test_the_same_vulnerability_accepted_with_a_reason_passes() -> None:
    audits = [parse_report(VULNERABLE, "r.txt", PINS)]
    # accepted through its CVE alias, under the package's non-canonical name
    decision = decide(audits, accepted(acceptance()), strict=False)
    assert decision.unaccepted == []
    assert [v.id for v, _ in decision.accepted] == ["GHSA-h5c8-rqwp-cp95"]
    assert decision.exit_code == 0
    assert "accepted jinja2==3.1.2 GHSA-h5c8-rqwp-cp95" in render(audits, decision)


def test_an_acceptance_for_another_package_or_id_does_not_cover_it() -> None:
    audits = [parse_report(VULNERABLE, "r.txt", PINS)]
    others = accepted(acceptance(package="markupsafe"), acceptance(id="GHSA-0000-0000-0000"))
    decision = decide(audits, others, strict=False)
    assert decision.exit_code == 1
    assert len(decision.unused) == 2


def test_a_vulnerability_in_several_files_is_reported_once() -> None:
    audits = [parse_report(VULNERABLE, name, PINS) for name in ("a.txt", "b.txt")]
    decision = decide(audits, [], strict=False)
    [(_, paths)] = decision.unaccepted
    assert paths == ["a.txt", "b.txt"]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (acceptance(reason=""), "`reason` is missing or empty"),
        (acceptance(reason="   "), "`reason` is missing or empty"),
        ({k: v for k, v in acceptance().items() if k != "reason"}, "`reason` is missing"),
        (acceptance(review_by=dt.date(2026, 5, 31)), "has passed"),
        (acceptance(review_by="2026-12-31"), "must be a TOML date"),
        (acceptance(review_by=dt.datetime(2026, 12, 31, 12, 0)), "must be a TOML date"),
        ({k: v for k, v in acceptance().items() if k != "review_by"}, "must be a TOML date"),
        (acceptance(package=""), "`package` is missing"),
        (acceptance(reson="typo"), "unknown key 'reson'"),
    ],
)
def test_an_acceptance_without_reason_or_past_review_is_an_error(
    entry: dict[str, Any], problem: str
) -> None:
    parsed, errors = parse_accepted({"accepted": [entry]}, TODAY)
    assert parsed == []
    assert any(problem in error for error in errors), errors
    # and it accepts nothing: the vulnerability still fails
    assert decide([parse_report(VULNERABLE, "r.txt", PINS)], parsed, False).exit_code == 1


def test_review_date_today_is_still_valid_and_duplicates_are_errors() -> None:
    assert len(accepted(acceptance(review_by=TODAY))) == 1
    _, errors = parse_accepted({"accepted": [acceptance(), acceptance()]}, TODAY)
    assert errors and "listed twice" in errors[0]


def test_skipped_packages_fail_only_when_strict() -> None:
    audits = [parse_report(CLEAN, "r.txt", PINS), parse_report(VULNERABLE, "s.txt", PINS)]
    everything_accepted = accepted(acceptance())
    lenient = decide(audits, everything_accepted, strict=False)
    strict = decide(audits, everything_accepted, strict=True)
    assert [s.package for s in lenient.unaudited] == ["idna"]
    assert (lenient.total, lenient.audited) == (4, 3)  # jinja2 3.1.6 and 3.1.2, requests, idna
    assert lenient.exit_code == 0
    assert "WARNING: 1 of 4 packages could not be audited" in render(audits, lenient)
    assert strict.exit_code == 1
    assert "FAIL (--strict): 1 of 4 packages could not be audited" in render(audits, strict)


def test_a_clean_audit_passes_even_when_strict() -> None:
    decision = decide([parse_report(CLEAN, "r.txt", PINS)], [], strict=True)
    assert (decision.exit_code, decision.unaudited, decision.audited) == (0, [], 2)


def test_a_failed_pip_audit_run_leaves_every_pin_unaudited() -> None:
    audit = audit_deps.failed_audit("r.txt", PINS, "ConnectionError: api.osv.dev")
    assert sorted(s.package for s in audit.skipped) == sorted(PINS)
    assert decide([audit], [], strict=True).exit_code == 1
    assert decide([audit], [], strict=False).exit_code == 0


def test_main_exit_codes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """main() end to end, with pip-audit replaced by a canned report."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jinja2==3.1.2\nrequests==2.32.3\nidna==3.7\n")
    rules = tmp_path / "accepted.toml"

    def fake(path: Path, service: str, timeout: float, run_timeout: float) -> FileAudit:
        return parse_report(VULNERABLE, path.name, pinned_packages(path.read_text()))

    monkeypatch.setattr(audit_deps, "audit_file", fake)
    run = [str(requirements), "--accepted", str(rules)]
    rules.write_text("accepted = []\n")
    assert audit_deps.main(run) == 1
    rules.write_text(
        '[[accepted]]\nid = "GHSA-h5c8-rqwp-cp95"\npackage = "jinja2"\n'
        'reason = "not reachable"\nreview_by = 2999-01-01\n'
    )
    assert audit_deps.main(run) == 0
    assert audit_deps.main([*run, "--strict"]) == 1  # idna was not audited
    rules.write_text(rules.read_text().replace("2999-01-01", "2000-01-01"))
    assert audit_deps.main(run) == 2


def test_pip_audit_command_is_offline_safe() -> None:
    command = audit_deps.pip_audit_command(Path("r.txt"), "pypi", 5)
    for flag in ("--no-deps", "--disable-pip", "--format", "--timeout"):
        assert flag in command
    assert command[command.index("--vulnerability-service") + 1] == "pypi"


def test_loader_on_files(tmp_path: Path) -> None:
    path = tmp_path / "accepted.toml"
    assert load_accepted(path, TODAY) == ([], [])  # no file accepts nothing
    path.write_text("# only comments\n")
    assert load_accepted(path, TODAY) == ([], [])
    path.write_text(
        '[[accepted]]\nid = "PYSEC-2024-1"\npackage = "x"\nreason = "why"\n'
        "review_by = 2026-07-01\n"
        '[[accepted]]\nid = "PYSEC-2024-2"\npackage = "y"\nreason = ""\n'
        "review_by = 2026-07-01\n"
    )
    parsed, errors = load_accepted(path, TODAY)
    assert [a.id for a in parsed] == ["PYSEC-2024-1"]
    assert parsed[0].review_by == dt.date(2026, 7, 1)
    assert len(errors) == 1 and "PYSEC-2024-2" in errors[0] and "reason" in errors[0]
    path.write_text("accepted = [\n")
    assert "not valid TOML" in load_accepted(path, TODAY)[1][0]


def test_the_repository_accepted_findings_are_valid_today() -> None:
    """Every accepted finding in security/ has a reason and a review date still ahead."""
    path = ROOT / "security" / "accepted-vulnerabilities.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data.get("accepted", []), list)
    parsed, errors = load_accepted(path, dt.date.today())
    assert errors == []
    assert len(parsed) == len(data.get("accepted", []))  # none silently dropped
    for entry in parsed:
        assert entry.reason and entry.review_by >= dt.date.today()


def test_requirements_files_audited_are_the_pinned_ones() -> None:
    """Every requirements-*.txt at the root is audited, and each is fully pinned."""
    pinned = {path.name for path in ROOT.glob("requirements-*.txt")}
    assert set(audit_deps.REQUIREMENTS) == pinned
    for name in pinned:
        lines = [
            line
            for line in (ROOT / name).read_text().splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "-"))
        ]
        assert len(pinned_packages("\n".join(lines))) == len(lines), name
