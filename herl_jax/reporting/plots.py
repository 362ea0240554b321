"""The report's PNGs (matplotlib, Agg): learning curves, training dynamics and the α × γ heatmap of the final
validation reward.

learning_curves.png: validation reward against step, one line per row of the table, the 95% t interval
over seeds shaded (rows of one run: the line alone), and the base model's reward when given.
training_dynamics.png: the paper's Figure 5 panels (policy entropy, training reward, validation reward)
plus revision rate and revision success, each against step, every row on the same axes, drawn alike.
heatmap*.png: for a sweep over `herl.alpha` and/or `train.loss.shaping_gamma`, the mean final validation
reward of each (α, γ) cell of the finished rows, annotated with its interval; one heatmap per combination
of the other varying keys (e.g. per variant).
"""

from __future__ import annotations

import re
from pathlib import Path

from herl_jax.reporting.table import CURVES, Row, label_of
from herl_jax.step.validation_keys import VALIDATION_REWARD

ALPHA, GAMMA = "herl.alpha", "train.loss.shaping_gamma"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(rows: list[Row], path: Path, base: dict | None = None) -> Path | None:
    """Writes `path` when some row has validation points; `base` (a baseline's reward_mean and reward_se)
    is drawn as a dotted line with its ± 1 standard error band."""
    if not any(row.curves[VALIDATION_REWARD] for row in rows):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    _draw(ax, rows, VALIDATION_REWARD)
    if base:
        mean, se = base["reward_mean"], base["reward_se"]
        ax.axhline(mean, color="gray", ls=":", label="base model (± 1 SE)")
        ax.axhspan(mean - se, mean + se, color="gray", alpha=0.15)
        ax.set_xlim(left=0)  # the base model is step 0
    ax.set_title("Validation reward: mean over seeds, 95% t interval shaded (dashed: unfinished run)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def training_dynamics(rows: list[Row], path: Path) -> Path | None:
    """Writes `path` (one panel per CURVES key, a legend panel last) when some row has a training curve."""
    if not any(points for row in rows for key, points in row.curves.items() if key != VALIDATION_REWARD):
        return None
    plt = _pyplot()
    columns = 3
    panels = len(CURVES) + 1
    fig, axes = plt.subplots((panels + columns - 1) // columns, columns, figsize=(13, 7.5), squeeze=False)
    axes = list(axes.flat)
    for ax, key in zip(axes, CURVES):
        _draw(ax, rows, key)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[len(CURVES):]:
        ax.axis("off")
    axes[len(CURVES)].legend(handles, labels, loc="center", fontsize=8, title="n = seeds")
    fig.suptitle("Training dynamics: mean over seeds, 95% t interval shaded (dashed: unfinished run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _draw(ax, rows: list[Row], key: str) -> None:
    """One line per row for metric `key` against step, its interval shaded where it has one; the same
    colour per row on every axis."""
    for i, row in enumerate(rows):
        points = row.curves[key]
        color = f"C{i % 10}"
        if points:
            steps = [s for s, _ in points]
            style = "-" if row.status.startswith("finished") else "--"
            ax.plot(steps, [e.mean for _, e in points], style, marker="o", ms=3, color=color,
                    label=f"{row.label} (n={len(row.runs)})")
            if any(e.half_width is not None for _, e in points):
                ax.fill_between(steps, [e.low if e.low is not None else e.mean for _, e in points],
                                [e.high if e.high is not None else e.mean for _, e in points], color=color, alpha=0.2)
        else:  # keeps the legend's rows and colours the same on every panel
            ax.plot([], [], color=color, label=f"{row.label} (n={len(row.runs)})")
    ax.set_xlabel("RL step")
    ax.set_ylabel(CURVES[key])
    ax.grid(alpha=0.3)


def heatmaps(rows: list[Row], directory: Path) -> list[Path]:
    """One heatmap per group of finished rows that vary α or γ; [] when the sweep varies neither."""
    finished = [r for r in rows if r.status.startswith("finished") and r.metrics.get("final_reward")
                and r.runs[0].config is not None]
    if not any(ALPHA in r.params or GAMMA in r.params for r in finished):
        return []
    groups: dict[str, list[Row]] = {}
    for row in finished:
        others = {k: v for k, v in row.params.items() if k not in (ALPHA, GAMMA)}
        groups.setdefault(label_of(others, ""), []).append(row)
    written = []
    for group, members in groups.items():
        suffix = "_" + re.sub(r"[^A-Za-z0-9._=-]+", "_", group) if group else ""
        written.append(_heatmap(members, group, directory / f"heatmap{suffix}.png"))
    return written


def _heatmap(rows: list[Row], title: str, path: Path) -> Path:
    alphas = sorted({r.runs[0].config.get(ALPHA) for r in rows}, key=float)
    gammas = sorted({r.runs[0].config.get(GAMMA) for r in rows}, key=float)
    grid = [[None] * len(alphas) for _ in gammas]
    for row in rows:
        config = row.runs[0].config
        grid[gammas.index(config.get(GAMMA))][alphas.index(config.get(ALPHA))] = row.metrics["final_reward"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.6 * len(alphas) + 2.5, 1.2 * len(gammas) + 1.8))
    values = [[e.mean if e else float("nan") for e in line] for line in grid]
    image = ax.imshow(values, cmap="viridis", origin="lower", aspect="auto")
    low, high = image.get_clim()
    for y, line in enumerate(grid):
        for x, e in enumerate(line):
            text = "—" if e is None else f"{e.mean:.3f}" + (f"\n±{e.half_width:.3f}" if e.half_width else "")
            bright = e is not None and e.mean > (low + high) / 2  # viridis turns yellow: dark text there
            ax.text(x, y, text, ha="center", va="center", color="black" if bright else "white", fontsize=8)
    ax.set_xticks(range(len(alphas)), [str(a) for a in alphas])
    ax.set_yticks(range(len(gammas)), [str(g) for g in gammas])
    ax.set_xlabel("α (herl.alpha)")
    ax.set_ylabel("γ (train.loss.shaping_gamma)")
    ax.set_title(f"final validation reward{': ' + title if title else ''}", fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
