"""Feature drift between a reference and a current table: two-sample KS test and PSI.

A feature drifts when the Kolmogorov-Smirnov test rejects "same distribution" at
``alpha``; the population stability index (PSI, reference-quantile bins) says how much it
moved (< 0.1 stable, 0.1-0.25 moderate, > 0.25 major). The check alerts when more than
``max_drift_share`` of the features drift. Works on any two tables with shared numeric
columns, so the same check runs on production samples::

    python -m training.drift --reference data/v0/transactions.parquet \\
        --current data/v1/transactions.parquet --out drift.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from training.params import load_params


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    ks_statistic: float
    ks_pvalue: float
    psi: float
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    features: list[FeatureDrift]
    alpha: float
    max_drift_share: float

    @property
    def drift_share(self) -> float:
        return sum(f.drifted for f in self.features) / max(len(self.features), 1)

    @property
    def alert(self) -> bool:
        return self.drift_share > self.max_drift_share

    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, object]:
        return {
            "alpha": self.alpha,
            "max_drift_share": self.max_drift_share,
            "drift_share": round(self.drift_share, 4),
            "alert": self.alert,
            "drifted": self.drifted(),
            "features": [asdict(f) for f in self.features],
        }


def population_stability_index(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI over quantile bins of ``reference``; a feature with at most ``bins`` distinct
    values (flags, codes) is binned by value. Empty bins get a small floor."""
    values = np.unique(reference)
    if values.size <= bins:
        edges = np.union1d(values, np.unique(current))
        ref_counts = np.searchsorted(edges, reference)
        cur_counts = np.searchsorted(edges, current)
        n_bins = edges.size
    else:
        inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))[1:-1]
        ref_counts = np.searchsorted(inner, reference, side="right")
        cur_counts = np.searchsorted(inner, current, side="right")
        n_bins = inner.size + 1
    ref_p = np.clip(np.bincount(ref_counts, minlength=n_bins) / reference.size, 1e-4, None)
    cur_p = np.clip(np.bincount(cur_counts, minlength=n_bins) / current.size, 1e-4, None)
    return float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))


def numeric_view(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric and boolean columns as floats; ``channel`` becomes ``is_online``."""
    out = frame.select_dtypes(include=["number", "bool"]).astype(np.float64)
    if "channel" in frame and "is_online" not in out:
        out["is_online"] = (frame["channel"] == "online").astype(np.float64)
    return out


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str] | None = None,
    alpha: float = 0.01,
    max_drift_share: float = 0.30,
    psi_bins: int = 10,
) -> DriftReport:
    """KS and PSI for every shared numeric feature (or ``features``)."""
    ref, cur = numeric_view(reference), numeric_view(current)
    names = features or sorted(set(ref.columns) & set(cur.columns))
    results = []
    for name in names:
        a, b = ref[name].dropna().to_numpy(), cur[name].dropna().to_numpy()
        if a.size == 0 or b.size == 0:
            continue
        ks = ks_2samp(a, b)
        results.append(
            FeatureDrift(
                feature=name,
                ks_statistic=round(float(ks.statistic), 6),
                ks_pvalue=float(ks.pvalue),
                psi=round(population_stability_index(a, b, psi_bins), 6),
                drifted=bool(ks.pvalue < alpha),
            )
        )
    return DriftReport(results, alpha, max_drift_share)


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def main(argv: list[str] | None = None) -> None:
    defaults = load_params()["drift"] if Path("params.yaml").exists() else {}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="parquet or CSV table")
    parser.add_argument("--current", type=Path, required=True, help="parquet or CSV table")
    parser.add_argument("--features", nargs="*", help="columns to compare (default: all shared)")
    parser.add_argument("--alpha", type=float, default=defaults.get("alpha", 0.01))
    parser.add_argument(
        "--max-drift-share", type=float, default=defaults.get("max_drift_share", 0.30)
    )
    parser.add_argument("--psi-bins", type=int, default=defaults.get("psi_bins", 10))
    parser.add_argument("--out", type=Path, help="write the report as JSON")
    parser.add_argument("--fail-on-alert", action="store_true", help="exit 1 on an alert")
    args = parser.parse_args(argv)
    report = feature_drift(
        read_table(args.reference),
        read_table(args.current),
        args.features,
        args.alpha,
        args.max_drift_share,
        args.psi_bins,
    )
    for f in report.features:
        flag = "DRIFT" if f.drifted else "ok"
        print(f"{f.feature:28s} KS {f.ks_statistic:.4f} p={f.ks_pvalue:.2e} PSI {f.psi:.4f} {flag}")
    print(
        f"drift share {report.drift_share:.0%} (alert above {report.max_drift_share:.0%}): "
        f"{'ALERT' if report.alert else 'no alert'}"
    )
    if args.out:
        args.out.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if args.fail_on_alert and report.alert:
        sys.exit(1)


if __name__ == "__main__":
    main()
