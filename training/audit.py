"""Stage ``audit``: one report from the audit stages, and the fairness gate.

Reads what the ``evaluate``, ``explain``, ``fairness``, ``drift`` and ``poisoning`` stages
wrote (``metrics/*.json`` and their plots under ``reports/``). It writes
``reports/report.md``, with sections Metrics, SHAP, Fairness, Drift and Poisoning whose
plots are linked beside it, and ``reports/report.html``, the same report with the plots
embedded so that it stands alone. If ``reports/metrics-diff.md`` exists (the audit
workflow writes it with ``dvc metrics diff`` against the base branch), it goes under
Metrics. Every number comes from those files.

When the fairness gate failed, this stage exits 1 after writing the report, so reviewers
still see why. ``dvc repro`` and ``make audit`` fail with it.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from pathlib import Path
from typing import Any

from training.reporting.audit_sections import (
    drift_section,
    fairness_section,
    metrics_section,
    poisoning_section,
    shap_section,
    summary_section,
)

INPUTS = ("evaluate", "shap", "fairness", "drift", "poisoning")
STAGE_OF = {"shap": "explain"}  # metrics file -> the dvc stage that writes it
HTML_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2rem auto;
       padding: 0 1rem; color: #1f2328; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; }
th { background: #f6f8fa; }
img { max-width: 100%; height: auto; margin: 0.4rem 0; }
blockquote { margin: 0.8rem 0; padding: 0.4rem 1rem; border-left: 4px solid #0969da;
             background: #f6f8fa; }
code { background: #f6f8fa; padding: 0 3px; }
"""


def load_inputs(metrics_dir: Path) -> dict[str, dict[str, Any]]:
    """Each audit input, by stage name; a missing file is an error that names its stage."""
    inputs = {}
    for name in INPUTS:
        path = metrics_dir / f"{name}.json"
        if not path.exists():
            stage = STAGE_OF.get(name, name)
            raise FileNotFoundError(f"{path} is missing: run `dvc repro {stage}` first")
        inputs[name] = json.loads(path.read_text())
    return inputs


def render_markdown(
    inputs: dict[str, dict[str, Any]], bundle_meta: dict[str, Any], metrics_diff: str | None
) -> str:
    """The whole report as GitHub-flavoured Markdown (plots linked relative to it)."""
    sections = [
        summary_section(inputs, bundle_meta),
        metrics_section(inputs["evaluate"], metrics_diff),
        shap_section(inputs["shap"]),
        fairness_section(inputs["fairness"]),
        drift_section(inputs["drift"]),
        poisoning_section(inputs["poisoning"], inputs["evaluate"]["test"]["k"]),
    ]
    return "\n\n".join(s.strip() for s in sections) + "\n"


def render_html(markdown: str, base: Path) -> str:
    """A standalone HTML page: the Markdown rendered and every local PNG inlined."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)

    def inline(match: re.Match[str]) -> str:
        source = match.group(1)
        path = base / source
        if source.startswith(("http:", "https:", "data:")) or not path.is_file():
            return match.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^"]+)"', inline, body)
    title = markdown.splitlines()[0].lstrip("# ").strip()
    return (
        f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{HTML_STYLE}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )


def missing_plots(markdown: str, base: Path) -> list[str]:
    """Local images the report links to that do not exist."""
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    return [link for link in links if not (base / link).is_file()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics-dir", type=Path, default=Path("metrics"))
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--out", type=Path, default=Path("reports/report.md"))
    parser.add_argument(
        "--metrics-diff",
        type=Path,
        default=Path("reports/metrics-diff.md"),
        help="`dvc metrics diff --md` output to include, when the file exists",
    )
    args = parser.parse_args(argv)
    from fraud_model.bundle import SPEC_FILE

    inputs = load_inputs(args.metrics_dir)
    bundle_meta = json.loads((args.bundle / SPEC_FILE).read_text())["metadata"]
    diff = args.metrics_diff.read_text() if args.metrics_diff.is_file() else None
    markdown = render_markdown(inputs, bundle_meta, diff)
    base = args.out.parent
    missing = missing_plots(markdown, base)
    if missing:
        raise FileNotFoundError(f"the report links to missing plots: {', '.join(missing)}")
    args.out.write_text(markdown)
    html = args.out.with_suffix(".html")
    html.write_text(render_html(markdown, base))
    fairness = inputs["fairness"]
    print(f"audit: wrote {args.out} and {html} ({len(markdown):,} characters of Markdown)")
    if not fairness["passed"]:
        for violation in fairness["violations"]:
            print(f"audit: fairness gate FAILED: {violation}", file=sys.stderr)
        sys.exit(1)
    print("audit: fairness gate passed")


if __name__ == "__main__":
    main()
