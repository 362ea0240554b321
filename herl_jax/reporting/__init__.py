"""Reports over training runs (`python -m herl_jax.report`), from the bottom up:
- `stats`: means over seeds with a 95% t interval (quantile from scipy.stats);
- `runs`: finding run directories (single runs, sweep roots) and their status;
- `evaluations`: joining herl_jax.evaluate results to runs;
- `table`: per-run numbers, pooled per configuration; `plots`: learning curves, α × γ heatmaps;
- `write`: report.md, report.json; `baseline`: the base policy's validation score (its own CLI).
"""
