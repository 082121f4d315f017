"""The report folder of a cross-validation run: metrics JSON, classification report, plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edge_ser_train.fit import History
from edge_ser_train.metrics import classification_report, scores
from edge_ser_train.robustness import robustness_markdown, robustness_table


def pooled_scores(folds: list[dict[str, Any]], variant: str, level: str, labels: tuple[str, ...]) -> dict:
    """Scores of all folds' test clips pooled together (every clip is tested exactly once in CV)."""
    matrix = np.sum([f[variant][level]["confusion"] for f in folds], axis=0)
    y_true = np.repeat(np.arange(len(labels)), matrix.sum(axis=1))
    y_pred = np.concatenate([np.repeat(np.arange(len(labels)), row) for row in matrix])
    missing = sum(f[variant][level]["no_prediction"] for f in folds)
    pooled = scores(y_true, y_pred, labels)
    pooled["no_prediction"] = missing
    return pooled


def plot_confusion(matrix: np.ndarray, labels: tuple[str, ...], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{rows[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(histories: list[History], path: Path) -> None:
    """Loss per epoch for every fold and, when there were early-stopping speakers, their clip UA
    with the chosen epoch marked; a fixed schedule has no validation curve to show, only the
    training loss (the last epoch is the model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    validated = any(np.isfinite(h.val_loss).any() for h in histories)
    fig, axes = plt.subplots(1, 2 if validated else 1, figsize=(11 if validated else 6, 4), squeeze=False)
    loss_ax = axes[0, 0]
    for i, h in enumerate(histories):
        epochs = np.arange(1, len(h.train_loss) + 1)
        line = loss_ax.plot(epochs, h.train_loss, "--" if validated else "-", alpha=0.7, label=f"fold {i + 1}")[0]
        if validated:
            loss_ax.plot(epochs, h.val_loss, color=line.get_color())
            axes[0, 1].plot(epochs, h.val_ua, color=line.get_color())
            axes[0, 1].axvline(h.best_epoch + 1, color=line.get_color(), alpha=0.3)
    if validated:
        loss_ax.set(xlabel="epoch", ylabel="loss (dashed: train, solid: held-out speakers)")
        axes[0, 1].set(xlabel="epoch", ylabel="clip UA on early-stopping speakers", ylim=(0, 1))
    else:
        loss_ax.set(xlabel="epoch", ylabel="training loss",
                    title="fixed schedule, no validation speakers: the last epoch is the model")
    loss_ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _curve(history: History) -> dict[str, Any]:
    """A fold's per-epoch history for metrics.json, NaN (no validation speakers) as null: strict JSON."""
    def clean(values: list[float]) -> list[float | None]:
        return [v if np.isfinite(v) else None for v in values]

    return {"train_loss": history.train_loss, "val_loss": clean(history.val_loss),
            "val_ua": clean(history.val_ua), "best_epoch": history.best_epoch + 1}


def write_report(out: Path, labels: tuple[str, ...], folds: list[dict[str, Any]], histories: list[History],
                 settings: dict[str, Any]) -> dict[str, Any]:
    """metrics.json, classification_report.txt, confusion_int8.png, training_curves.png (and
    robustness.md when the folds were scored under room conditions); returns the summary (mean ± std
    over folds, per variant and level, and the robustness table)."""
    from edge_ser_train.metrics import mean_std

    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    for variant in ("float", "int8"):
        for level in ("clip", "window"):
            summary[f"{variant}_{level}"] = mean_std([f[variant][level] for f in folds])
    summary["top1_agreement"] = {"mean": float(np.mean([f["top1_agreement"] for f in folds])),
                                 "min": float(np.min([f["top1_agreement"] for f in folds]))}
    pooled = {v: pooled_scores(folds, v, "clip", labels) for v in ("float", "int8")}
    if all("robustness" in f for f in folds):
        summary["robustness"] = robustness_table(folds)
        (out / "robustness.md").write_text(
            f"Test clips under room conditions: int8, clip level, mean ± std over {len(folds)} folds split by "
            "speaker; drop in points of UA against the same clips clean (positive = worse).\n\n"
            + robustness_markdown(summary["robustness"]))
    (out / "metrics.json").write_text(json.dumps(
        {"settings": settings, "labels": list(labels), "summary": summary, "pooled_clip": pooled,
         "folds": folds, "curves": [_curve(h) for h in histories]}, indent=1) + "\n")
    text = [f"Speaker-independent {len(folds)}-fold CV, clip level, all test folds pooled\n"]
    for variant in ("float", "int8"):
        text += [f"== {variant} ==", classification_report(pooled[variant], labels), ""]
    (out / "classification_report.txt").write_text("\n".join(text))
    plot_confusion(np.array(pooled["int8"]["confusion"]), labels,
                   f"int8, clip level, {len(folds)} folds pooled (row-normalised)", out / "confusion_int8.png")
    plot_curves(histories, out / "training_curves.png")
    return summary
