"""The quality benchmark's Markdown table and PR-curve figure (``training.benchmark``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from training.reporting.markdown import markdown_table
from training.reporting.reports_io import pyplot

STYLES = ("-", "--", ":")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def quality_table(rows: list[dict[str, Any]], models: dict[str, str], k: int) -> str:
    """One Markdown line per data set and model."""
    header = ["data set", "model", "rows", "fraud", "AUPRC", "ROC-AUC", f"card P@{k}"]
    header += [f"recall@{k}/day", "cost", "approve-all cost", "training s"]
    lines = []
    for row in rows:
        for model, label in models.items():
            v = row["models"][model]
            lines.append(
                [row["data_set"], label, row["rows"], row["fraud"], v["auprc"], v["roc_auc"]]
                + [v["card_precision_at_k"], v["recall_at_k"], v["cost"], v["approve_all_cost"]]
                + [f"{v['training_seconds']:.1f}"]
            )
    return markdown_table(header, lines, _cell)


def write_pr_curves(curves: list[dict[str, Any]], models: dict[str, str], path: Path) -> None:
    """PR curves of the models, side by side in one panel per data set (``curves``: the
    data set's name, labels ``y`` and each model's ``scores``)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 4.2), squeeze=False)
    for ax, curve in zip(axes[0], curves, strict=True):
        ax.set(title=curve["data_set"], xlabel="recall", ylabel="precision", xlim=(0, 1))
        ax.set_ylim(0, 1.02)
        if curve["y"].min() == curve["y"].max():
            continue  # one class only: no curve
        # Styles differ so that identical curves (a classifier-only pipeline) stay visible.
        for (model, label), style in zip(models.items(), STYLES, strict=False):
            precision, recall, _ = precision_recall_curve(curve["y"], curve["scores"][model])
            auprc = average_precision_score(curve["y"], curve["scores"][model])
            ax.plot(recall, precision, style, label=f"{label} (AUPRC {auprc:.3f})", linewidth=1.3)
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
