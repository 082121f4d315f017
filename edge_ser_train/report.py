"""The report folder of a cross-validation run: metrics JSON, classification report, plots, and
report.md with the headline tables (the whole CV, each corpus's own speaker-independent figures,
and leave-one-corpus-out when it was run)."""

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


def curves_figure(histories: list[History]) -> Any:
    """Loss per epoch for every fold and, when there were early-stopping speakers, their clip UA
    with the chosen epoch marked; a fixed schedule has no validation curve to show, only the
    training loss (the last epoch is the model).

    Readable for a short run too: epochs are whole numbers on the axis (not 0.5 steps), every epoch
    is a marker when there are few (a one-epoch curve is otherwise an invisible line of one point),
    and the legend stays out of the curves' way."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    validated = any(np.isfinite(h.val_loss).any() for h in histories)
    longest = max([1, *(len(h.train_loss) for h in histories)])  # a report of folds without a history: one
    marker = "o" if longest <= 30 else None
    fig, axes = plt.subplots(1, 2 if validated else 1, figsize=(11 if validated else 6, 4), squeeze=False)
    loss_ax = axes[0, 0]
    for i, h in enumerate(histories):
        epochs = np.arange(1, len(h.train_loss) + 1)
        line = loss_ax.plot(epochs, h.train_loss, "--" if validated else "-", marker=marker, markersize=3,
                            alpha=0.7, label=f"fold {i + 1}")[0]
        if validated:
            loss_ax.plot(epochs, h.val_loss, color=line.get_color(), marker=marker, markersize=3)
            axes[0, 1].plot(epochs, h.val_ua, color=line.get_color(), marker=marker, markersize=3)
            axes[0, 1].axvline(h.best_epoch + 1, color=line.get_color(), alpha=0.3)
    if validated:
        loss_ax.set(xlabel="epoch", ylabel="loss (dashed: train, solid: held-out speakers)")
        axes[0, 1].set(xlabel="epoch", ylabel="clip UA on early-stopping speakers", ylim=(0, 1))
    else:
        loss_ax.set(xlabel="epoch", ylabel="training loss")
        loss_ax.set_title("fixed schedule, no validation speakers: the last epoch is the model", fontsize=9)
    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, longest + 0.5)
        ax.grid(alpha=0.3)
    loss_ax.legend(fontsize=8, ncols=max(1, len(histories) // 5), loc="best")
    fig.tight_layout()
    return fig


def plot_curves(histories: list[History], path: Path) -> None:
    """training_curves.png (curves_figure)."""
    import matplotlib.pyplot as plt

    fig = curves_figure(histories)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curve(history: History) -> dict[str, Any]:
    """A fold's per-epoch history for metrics.json, NaN (no validation speakers) as null: strict JSON."""
    def clean(values: list[float]) -> list[float | None]:
        return [v if np.isfinite(v) else None for v in values]

    return {"train_loss": history.train_loss, "val_loss": clean(history.val_loss),
            "val_ua": clean(history.val_ua), "best_epoch": history.best_epoch + 1}


def per_corpus_cv(folds: list[dict[str, Any]], settings: dict[str, Any],
                  labels: tuple[str, ...]) -> dict[str, Any]:
    """Each corpus's test clips pooled over the folds that tested them; a corpus no fold could test
    (one speaker) is listed with why it has no figure."""
    result: dict[str, Any] = {}
    for corpus, speakers in settings.get("speakers", {}).items():
        tested = [f["corpora"][corpus] for f in folds if corpus in f.get("corpora", {})]
        entry: dict[str, Any] = {"speakers": len(speakers)}
        if tested:
            entry["pooled_clip"] = {v: pooled_scores(tested, v, "clip", labels) for v in ("float", "int8")}
        else:
            entry["note"] = ("one speaker: cannot be split by speaker, so it trained in every fold and was "
                             "tested in none (see leave-one-corpus-out)" if len(speakers) == 1 else "not tested")
        result[corpus] = entry
    return result


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def markdown(labels: tuple[str, ...], folds: list[dict[str, Any]], summary: dict[str, Any],
             corpora: dict[str, Any], loco: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    """report.md: the leave-one-corpus-out table (the headline when it was run: the closest stand-in
    for voices and rooms no corpus had) next to the per-corpus CV table. Clip level, int8 scored."""
    lines = [f"# edge-ser-train ({settings.get('protocol', 'cv')}): {', '.join(settings.get('corpora', []))}", "",
             f"Labels: {', '.join(labels)}. Clip level (windows averaged per clip); the int8 model is the one "
             "scored, float UA beside it."]
    if settings.get("dropped_clips"):
        lines.append("Clips of labels this label set drops: "
                     + ", ".join(f"{k} {v}" for k, v in settings["dropped_clips"].items()) + ".")
    if loco:
        lines += ["", "## Leave one corpus out (train on the others, test on it)", "",
                  "| test corpus | trained on | test clips | int8 UA | int8 WA | int8 macro-F1 | float UA "
                  "| agreement |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in loco:
            clips = sum(r["int8"]["clip"]["support"].values())
            lines.append(f"| {r['corpus']} | {', '.join(r['train_corpora'])} | {clips} | "
                         f"{_pct(r['int8']['clip']['ua'])} | {_pct(r['int8']['clip']['wa'])} | "
                         f"{_pct(r['int8']['clip']['macro_f1'])} | {_pct(r['float']['clip']['ua'])} | "
                         f"{_pct(r['top1_agreement'])} |")
        mean = summary["loco"]["int8_clip"]
        lines.append(f"| **mean over corpora** | | | **{_pct(mean['ua']['mean'])}** | {_pct(mean['wa']['mean'])} | "
                     f"{_pct(mean['macro_f1']['mean'])} | {_pct(summary['loco']['float_clip']['ua']['mean'])} | |")
    if folds:
        lines += ["", f"## Cross-validation by speaker, {len(folds)} folds, per corpus", "",
                  "Each corpus's test clips pooled over the folds (speakers dealt out within every corpus).", "",
                  "| corpus | speakers | test clips | int8 UA | int8 WA | int8 macro-F1 | float UA |",
                  "|---|---|---|---|---|---|---|"]
        for corpus, entry in corpora.items():
            if "pooled_clip" not in entry:
                lines.append(f"| {corpus} | {entry['speakers']} | – | – | – | – | – ({entry['note']}) |")
                continue
            i8, fl = entry["pooled_clip"]["int8"], entry["pooled_clip"]["float"]
            lines.append(f"| {corpus} | {entry['speakers']} | {sum(i8['support'].values())} | {_pct(i8['ua'])} | "
                         f"{_pct(i8['wa'])} | {_pct(i8['macro_f1'])} | {_pct(fl['ua'])} |")
        cv = summary["int8_clip"]
        lines.append(f"| **all, mean ± std over folds** | | | **{_pct(cv['ua']['mean'])} ± {_pct(cv['ua']['std'])}** "
                     f"| {_pct(cv['wa']['mean'])} | {_pct(cv['macro_f1']['mean'])} | "
                     f"{_pct(summary['float_clip']['ua']['mean'])} |")
        window, clip, ties = summary["top1_agreement"], summary["clip_agreement"], summary["int8_ties"]
        lines += ["", f"int8/float agreement, lowest fold (mean over folds): windows {_pct(window['min'])} % "
                      f"({_pct(window['mean'])} %), clips {_pct(clip['min'])} % ({_pct(clip['mean'])} %). Windows "
                      f"whose two highest int8 outputs tie (1/256 steps; argmax takes the first label): "
                      f"{_pct(ties['mean'])} % (at most {_pct(ties['max'])} % in a fold)."]
    lines += ["", "Per-class recall and confusion matrices: classification_report.txt and metrics.json.", ""]
    return "\n".join(lines)


def write_report(out: Path, labels: tuple[str, ...], folds: list[dict[str, Any]], histories: list[History],
                 settings: dict[str, Any], calibration: dict[str, Any] | None = None,
                 loco: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """metrics.json, classification_report.txt, report.md and, for a CV, confusion_int8.png and
    training_curves.png (and robustness.md when the folds were scored under room conditions);
    returns the summary (mean ± std over folds, per variant and level; the robustness table; over
    held-out corpora under "loco"; with `calibration` (edge_ser_train.calibration.calibration_summary)
    its temperature and ECE)."""
    from edge_ser_train.metrics import mean_std

    out.mkdir(parents=True, exist_ok=True)
    loco = loco or []
    summary: dict[str, Any] = {}
    report: dict[str, Any] = {"settings": settings, "labels": list(labels), "summary": summary}
    text = []
    if folds:
        for variant in ("float", "int8"):
            for level in ("clip", "window"):
                summary[f"{variant}_{level}"] = mean_std([f[variant][level] for f in folds])
        for key in ("top1_agreement", "clip_agreement"):
            summary[key] = {"mean": float(np.mean([f[key] for f in folds])),
                            "min": float(np.min([f[key] for f in folds]))}
        summary["int8_ties"] = {"mean": float(np.mean([f["int8_ties"] for f in folds])),
                                "max": float(np.max([f["int8_ties"] for f in folds]))}
        pooled = {v: pooled_scores(folds, v, "clip", labels) for v in ("float", "int8")}
        corpora = per_corpus_cv(folds, settings, labels)
        report.update(pooled_clip=pooled, per_corpus=corpora, folds=folds, curves=[curve(h) for h in histories])
        if all("robustness" in f for f in folds):
            summary["robustness"] = robustness_table(folds)
            (out / "robustness.md").write_text(
                f"Test clips under room conditions: int8, clip level, mean ± std over {len(folds)} folds split by "
                "speaker; drop in points of UA against the same clips clean (positive = worse).\n\n"
                + robustness_markdown(summary["robustness"]))
        text.append(f"Speaker-independent {len(folds)}-fold CV, clip level, all test folds pooled\n")
        for variant in ("float", "int8"):
            text += [f"== {variant} ==", classification_report(pooled[variant], labels), ""]
        for corpus, entry in corpora.items():
            if "pooled_clip" in entry:
                text += [f"== int8, {corpus} only ==", classification_report(entry["pooled_clip"]["int8"], labels), ""]
    if calibration is not None:
        summary["calibration"] = {k: calibration[k] for k in ("temperature", "fitted_on", "ece_before", "ece_after")}
        report["calibration"] = calibration
        text += ["== int8 confidence (clip level, top label, 10 bins) ==",
                 f"ECE {calibration['ece_before']:.4f} before, {calibration['ece_after']:.4f} after temperature "
                 f"scaling ({calibration['ece_after_note']}); temperature to ship T = {calibration['temperature']:.3f}",
                 ""]
    if loco:
        summary["loco"] = {f"{v}_clip": mean_std([r[v]["clip"] for r in loco]) for v in ("float", "int8")}
        report["loco"] = loco
        for r in loco:
            text += [f"== int8, leave {r['corpus']} out (trained on {', '.join(r['train_corpora'])}) ==",
                     classification_report(r["int8"]["clip"], labels), ""]
    (out / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "classification_report.txt").write_text("\n".join(text))
    (out / "report.md").write_text(markdown(labels, folds, summary, report.get("per_corpus", {}), loco, settings))
    if folds:
        plot_confusion(np.array(report["pooled_clip"]["int8"]["confusion"]), labels,
                       f"int8, clip level, {len(folds)} folds pooled (row-normalised)", out / "confusion_int8.png")
        plot_curves(histories, out / "training_curves.png")
    return summary
