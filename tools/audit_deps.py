"""Audit the pinned requirements for known vulnerabilities with pip-audit (`make lint`).

Runs ``pip-audit --no-deps --disable-pip`` on each pinned requirements file, then gates:

* any vulnerability not listed in ``security/accepted-vulnerabilities.toml`` fails (exit 1);
* an accepted entry without a reason, or past its ``review_by`` date, is an error (exit 2);
* a package the vulnerability service could not answer for fails only with ``--strict``
  (CI); otherwise a loud warning says how many packages went unaudited.

The parsing and gating functions are pure (``tests/deploy/test_supply_chain.py``).
See docs/supply-chain.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = (
    "requirements-api.txt",
    "requirements-train.txt",
    "requirements-dev.txt",
    "requirements-checkov.txt",  # checkov's own virtualenv
)
ACCEPTED = ROOT / "security" / "accepted-vulnerabilities.toml"
ACCEPTED_KEYS = frozenset({"id", "package", "reason", "review_by"})
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")
EXIT_VULNERABLE = 1
EXIT_CONFIG = 2


def canonical(name: str) -> str:
    """PEP 503 normalised package name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Vulnerability:
    """One known vulnerability of one pinned package, as pip-audit reported it."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fix_versions: tuple[str, ...] = ()

    @property
    def ids(self) -> frozenset[str]:
        return frozenset((self.id, *self.aliases))


@dataclass(frozen=True)
class Skipped:
    """A pinned package the vulnerability service gave no answer for."""

    package: str
    version: str
    reason: str


@dataclass
class FileAudit:
    """pip-audit's result for one requirements file."""

    path: str
    audited: dict[str, str] = field(default_factory=dict)  # package -> version
    vulnerabilities: list[Vulnerability] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    error: str | None = None  # pip-audit itself failed: every pin is in ``skipped``


@dataclass(frozen=True)
class Acceptance:
    """An accepted finding from security/accepted-vulnerabilities.toml."""

    id: str
    package: str
    reason: str
    review_by: dt.date

    def matches(self, vulnerability: Vulnerability) -> bool:
        return (
            canonical(self.package) == canonical(vulnerability.package)
            and self.id in vulnerability.ids
        )


@dataclass
class Decision:
    """What the gate concluded from every file's audit."""

    unaccepted: list[tuple[Vulnerability, list[str]]]  # with the files that pin it
    accepted: list[tuple[Vulnerability, Acceptance]]
    unused: list[Acceptance]
    total: int  # distinct (package, version) pins over all files
    audited: int
    unaudited: list[Skipped]
    strict: bool

    @property
    def exit_code(self) -> int:
        if self.unaccepted or (self.strict and self.unaudited):
            return EXIT_VULNERABLE
        return 0


def pinned_packages(text: str) -> dict[str, str]:
    """``name==version`` pins of a requirements file (canonical name -> version)."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        match = PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def parse_report(report: Mapping[str, Any], path: str, pins: Mapping[str, str]) -> FileAudit:
    """A pip-audit ``--format json`` report for ``path`` as a FileAudit."""
    audit = FileAudit(path)
    for dependency in report.get("dependencies", []):
        name = canonical(str(dependency["name"]))
        if "skip_reason" in dependency:
            version = str(dependency.get("version") or pins.get(name, "?"))
            audit.skipped.append(Skipped(name, version, str(dependency["skip_reason"])))
            continue
        version = str(dependency["version"])
        audit.audited[name] = version
        for vuln in dependency.get("vulns", []):
            audit.vulnerabilities.append(
                Vulnerability(
                    package=name,
                    version=version,
                    id=str(vuln["id"]),
                    aliases=tuple(str(a) for a in vuln.get("aliases", [])),
                    fix_versions=tuple(str(v) for v in vuln.get("fix_versions", [])),
                )
            )
    return audit


def failed_audit(path: str, pins: Mapping[str, str], error: str) -> FileAudit:
    """pip-audit produced no report for ``path``: every pin counts as unaudited."""
    reason = f"pip-audit failed: {error}"
    skipped = [Skipped(name, version, reason) for name, version in sorted(pins.items())]
    return FileAudit(path, skipped=skipped, error=error)


def _date(value: object) -> dt.date | None:
    """A TOML local date (not a date-time), else None."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    return None


def parse_accepted(data: Mapping[str, Any], today: dt.date) -> tuple[list[Acceptance], list[str]]:
    """Accepted findings from the parsed TOML, and every problem with them."""
    entries = data.get("accepted", [])
    unknown = sorted(set(data) - {"accepted"})
    errors = [f"unknown top-level key(s): {', '.join(unknown)}"] if unknown else []
    if not isinstance(entries, list):
        return [], [*errors, "`accepted` must be an array of tables ([[accepted]])"]
    accepted: list[Acceptance] = []
    seen: set[tuple[str, str]] = set()
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            errors.append(f"entry {number}: not a table")
            continue
        label = f"entry {number} ({entry.get('id', '?')} in {entry.get('package', '?')})"
        problems = [f"unknown key {key!r}" for key in sorted(set(entry) - ACCEPTED_KEYS)]
        for key in ("id", "package", "reason"):
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"`{key}` is missing or empty")
        review_by = _date(entry.get("review_by"))
        if review_by is None:
            problems.append("`review_by` must be a TOML date (review_by = 2026-06-30)")
        elif review_by < today:
            problems.append(f"review date {review_by} has passed: review it again or remove it")
        if problems or review_by is None:
            errors.extend(f"{label}: {problem}" for problem in problems)
            continue
        ident = (str(entry["id"]), canonical(str(entry["package"])))
        if ident in seen:
            errors.append(f"{label}: listed twice")
            continue
        seen.add(ident)
        accepted.append(
            Acceptance(ident[0], str(entry["package"]), str(entry["reason"]).strip(), review_by)
        )
    return accepted, errors


def load_accepted(path: Path, today: dt.date) -> tuple[list[Acceptance], list[str]]:
    """parse_accepted() of a TOML file; a missing file accepts nothing."""
    if not path.exists():
        return [], []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        return [], [f"{path.name}: not valid TOML: {error}"]
    return parse_accepted(data, today)


def decide(audits: Sequence[FileAudit], accepted: Iterable[Acceptance], strict: bool) -> Decision:
    """Match the findings of every file against the accepted ones."""
    accepted = list(accepted)
    found: dict[Vulnerability, list[str]] = {}
    for audit in audits:
        for vulnerability in audit.vulnerabilities:
            found.setdefault(vulnerability, []).append(audit.path)
    unaccepted: list[tuple[Vulnerability, list[str]]] = []
    matched: list[tuple[Vulnerability, Acceptance]] = []
    for vulnerability, paths in found.items():
        acceptance = next((a for a in accepted if a.matches(vulnerability)), None)
        if acceptance is None:
            unaccepted.append((vulnerability, paths))
        else:
            matched.append((vulnerability, acceptance))
    used = {id(acceptance) for _, acceptance in matched}
    audited = {(name, version) for audit in audits for name, version in audit.audited.items()}
    unaudited: dict[tuple[str, str], Skipped] = {}
    for audit in audits:
        for skip in audit.skipped:
            if (skip.package, skip.version) not in audited:
                unaudited.setdefault((skip.package, skip.version), skip)
    return Decision(
        unaccepted=unaccepted,
        accepted=matched,
        unused=[a for a in accepted if id(a) not in used],
        total=len(audited) + len(unaudited),
        audited=len(audited),
        unaudited=sorted(unaudited.values(), key=lambda s: s.package),
        strict=strict,
    )


def _describe(vulnerability: Vulnerability) -> str:
    aliases = f" ({', '.join(vulnerability.aliases)})" if vulnerability.aliases else ""
    fixes = ", ".join(vulnerability.fix_versions) or "none known"
    return (
        f"{vulnerability.package}=={vulnerability.version} {vulnerability.id}{aliases}, "
        f"fixed in: {fixes}"
    )


def render(
    audits: Sequence[FileAudit],
    decision: Decision,
    seconds: float | None = None,
    list_limit: int = 20,
) -> str:
    """The human-readable summary printed by main()."""
    lines = ["pip-audit of the pinned requirements:"]
    for audit in audits:
        lines.append(
            f"  {audit.path}: {len(audit.audited) + len(audit.skipped)} pins, "
            f"{len(audit.audited)} audited, {len(audit.skipped)} not audited, "
            f"{len(audit.vulnerabilities)} vulnerabilities"
        )
        if audit.error:
            lines.append(f"    pip-audit failed: {audit.error}")
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    lines.append(
        f"Packages: {decision.total} distinct pins, {decision.audited} audited, "
        f"{len(decision.unaudited)} not audited{took}"
    )
    lines.append(
        f"Vulnerabilities: {len(decision.unaccepted)} not accepted, "
        f"{len(decision.accepted)} accepted"
    )
    for vulnerability, paths in decision.unaccepted:
        lines.append(f"  FAIL {_describe(vulnerability)} [{', '.join(paths)}]")
    for vulnerability, acceptance in decision.accepted:
        lines.append(
            f"  accepted {_describe(vulnerability)}: {acceptance.reason} "
            f"(review by {acceptance.review_by})"
        )
    for acceptance in decision.unused:
        lines.append(
            f"  note: accepted {acceptance.id} in {acceptance.package} matched no finding"
            + ("" if decision.unaudited else ": remove it if it no longer applies")
        )
    if decision.unaudited:
        shown = [f"{s.package}=={s.version}" for s in decision.unaudited[:list_limit]]
        more = len(decision.unaudited) - len(shown)
        reasons = sorted({s.reason.split(":")[0] for s in decision.unaudited})
        every = " (every pin)" if decision.audited == 0 else ""
        lines.append(
            f"Not audited{every}: {', '.join(shown)}" + (f" and {more} more" if more else "")
        )
        lines.append(f"  why: {'; '.join(reasons)}")
        banner = (
            f"{len(decision.unaudited)} of {decision.total} packages could not be audited "
            "(vulnerability service unreachable from this machine)"
        )
        if decision.strict:
            lines.append(f"FAIL (--strict): {banner}")
        else:
            rule = "!" * 78
            lines += [
                rule,
                f"WARNING: {banner}.",
                "Nothing is known about their vulnerabilities from this run; CI runs it with",
                "--strict (make lint AUDIT_STRICT=1), where an unaudited package fails.",
                rule,
            ]
    verdict = "FAILED" if decision.exit_code else "passed"
    lines.append(f"audit_deps: {verdict}" + ("" if decision.strict else " (not strict)"))
    return "\n".join(lines)


def pip_audit_command(path: Path, service: str, timeout: float) -> list[str]:
    """pip-audit's argv for one pinned file (--no-deps: the file is already the closure)."""
    return [
        sys.executable,
        "-m",
        "pip_audit",
        "--requirement",
        str(path),
        "--no-deps",
        "--disable-pip",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--vulnerability-service",
        service,
        "--timeout",
        f"{timeout:g}",
    ]


def audit_file(path: Path, service: str, timeout: float, run_timeout: float) -> FileAudit:
    """Run pip-audit on one file; a run without a JSON report leaves every pin unaudited."""
    name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    pins = pinned_packages(path.read_text(encoding="utf-8"))
    try:
        done = subprocess.run(  # nosec B603 # fixed argv (this interpreter, -m pip_audit)
            pip_audit_command(path, service, timeout),
            capture_output=True,
            text=True,
            check=False,
            timeout=run_timeout,
        )
    except subprocess.TimeoutExpired:
        return failed_audit(name, pins, f"no answer within {run_timeout:g} s")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return failed_audit(name, pins, last[-300:])
    return parse_report(report, name, pins)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "requirements",
        nargs="*",
        type=Path,
        default=[ROOT / name for name in REQUIREMENTS],
        help="pinned requirements files (default: %(default)s)",
    )
    parser.add_argument("--accepted", type=Path, default=ACCEPTED, help="accepted findings")
    parser.add_argument(
        "--service",
        choices=("pypi", "osv"),
        default="pypi",
        help="pip-audit's vulnerability service (default: pypi)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail when any package could not be audited (CI)"
    )
    parser.add_argument(
        "--timeout", type=float, default=5, help="pip-audit's socket timeout, seconds"
    )
    parser.add_argument(
        "--run-timeout", type=float, default=300, help="limit for one file's pip-audit, seconds"
    )
    parser.add_argument(
        "--list-limit",
        type=int,
        default=20,
        help="list at most this many unaudited packages (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    accepted, problems = load_accepted(args.accepted, dt.date.today())
    errors = [f"{args.accepted}: {problem}" for problem in problems]
    missing = [str(path) for path in args.requirements if not path.is_file()]
    errors += [f"no such requirements file: {path}" for path in missing]
    if errors:
        print("audit_deps: configuration errors:", *errors, sep="\n  ", file=sys.stderr)
        return EXIT_CONFIG

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(args.requirements)) as pool:
        audits = list(
            pool.map(
                lambda p: audit_file(p.resolve(), args.service, args.timeout, args.run_timeout),
                args.requirements,
            )
        )
    decision = decide(audits, accepted, args.strict)
    print(render(audits, decision, time.monotonic() - started, args.list_limit), flush=True)
    return decision.exit_code


if __name__ == "__main__":
    sys.exit(main())
