"""The report of an output folder: every checkpoint's `summary.json` -> results.json, results.md, PNGs.

results.md opens with tables shaped like the paper's Table 1 (in-domain: instruction following, writing,
medical) and Table 2 (out-of-domain: MATH-500, GPQA, MMLU-Pro): rows are checkpoints, columns benchmarks, and
under them the paper's rows for a base model a checkpoint's label or source names (paper_results.py). Then
each benchmark's full metrics, pass@k and guided revision vs pass@k. The plots:
passk.png (pass@k against k) and revision.png (guided-revision rounds against pass@k at the same
number of samples per prompt), one panel per benchmark, one colour per checkpoint.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from herl_jax.evaluation.paper_results import base_model, paper_rows
from herl_jax.evaluation.summarize import ANSWERED, INSTRUCTION_FOLLOWING
from herl_jax.own_files import write_file

TABLE1 = {"ifeval": "IFEval", "ifbench": "IFBench", "muldimif": "MulDimIF", "writingbench": "WritingBench",
          "llmeval_med": "LLMEval-Med", "healthbench": "HealthBench-500", "heldout": "Held-out"}
TABLE2 = {"math500": "MATH-500", "gpqa": "GPQA", "mmlu_pro": "MMLU-Pro"}
BENCHMARK_TITLES = {**TABLE1, **TABLE2}
TABLE1_NOTE = ("IFEval / IFBench / MulDimIF / Held-out: prompt-level strict accuracy (%); LLMEval-Med: usable responses "
               "(%, judge score >= 4 of 5); HealthBench-500: score (%) ± bootstrap standard error; WritingBench: mean "
               "criterion score (1-10). Greedy decoding (Pass@1).")
TABLE2_NOTE = "Accuracy (%): MATH-500's boxed answer, GPQA's and MMLU-Pro's stated letter. Greedy decoding (Pass@1)."
PAPER_NOTE = "Rows `paper: ...`: the paper's numbers (%) for the same base model, as printed there."


def load_summaries(output: Path) -> dict[str, dict]:
    """label -> summary, for every checkpoint evaluated into `output`."""
    summaries = {}
    for path in sorted(Path(output).glob("*/summary.json")):
        summary = json.loads(path.read_text())
        summaries[summary["label"]] = summary
    return summaries


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def headline(benchmark: str, result: dict) -> str:
    """The Table 1 cell of one benchmark."""
    if "skipped" in result:
        return f"skipped ({result['skipped']})"
    p1 = result.get("pass@1", {})
    if not p1.get("n"):
        return "no graded examples"
    if benchmark in INSTRUCTION_FOLLOWING:
        return _pct(p1["prompt_strict"])
    if benchmark in ANSWERED:
        return _pct(p1["accuracy"])
    if benchmark == "llmeval_med":
        return _pct(p1["usable"])
    if benchmark == "healthbench":
        return f"{_pct(p1['score'])} ± {_pct(p1['stderr'])}"
    return f"{p1['score']:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def _paper(summaries: dict[str, dict]) -> dict[str, dict[str, float]]:
    """`paper: MODEL METHOD` -> benchmark -> number, for each base model a checkpoint names."""
    models = dict.fromkeys(m for s in summaries.values() if (m := base_model(s["label"], s["source"])))
    return {f"paper: {model}" + ("" if method == "base" else f" {method}"): numbers
            for model in models for method, numbers in paper_rows(model).items()}


def _results_table(title: str, titles: dict[str, str], note: str, summaries: dict[str, dict],
                   paper: dict[str, dict[str, float]]) -> list[str]:
    names = [b for b in titles if any(b in s["benchmarks"] for s in summaries.values())]
    if not names:
        return []
    rows = [[label, *(headline(b, s["benchmarks"][b]) if b in s["benchmarks"] else "—" for b in names)]
            for label, s in summaries.items()]
    rows += [[label, *(f"{numbers[b]:.1f}" if b in numbers else "—" for b in names)]
             for label, numbers in paper.items() if any(b in numbers for b in names)]
    notes = [note] + ([PAPER_NOTE] if any(any(b in n for b in names) for n in paper.values()) else [])
    return [f"## {title}", "", *_table(["Checkpoint", *(titles[b] for b in names)], rows), "", *notes, ""]


def markdown(summaries: dict[str, dict]) -> str:
    names = [b for b in BENCHMARK_TITLES if any(b in s["benchmarks"] for s in summaries.values())]
    paper = _paper(summaries)
    lines = ["# Evaluation", ""]
    lines += _results_table("Table 1 (in-domain)", TABLE1, TABLE1_NOTE, summaries, paper)
    lines += _results_table("Table 2 (out-of-domain)", TABLE2, TABLE2_NOTE, summaries, paper)
    lines += _details(summaries, names)
    lines += _passk_tables(summaries, names)
    lines += _revision_tables(summaries, names)
    skipped = {s["benchmarks"][b]["message"] for s in summaries.values() for b in names
               if "skipped" in s["benchmarks"].get(b, {})}
    if skipped:
        lines += ["## Skipped", "", *(f"- {why}" for why in sorted(skipped)), ""]
    return "\n".join(lines)


def _counts(p1: dict) -> str:
    extra = [f"{p1[k]} {k}" for k in ("skipped", "incomplete") if p1.get(k)]
    return str(p1.get("n", 0)) + (f" ({', '.join(extra)})" if extra else "")


def _details(summaries, names) -> list[str]:
    lines = []
    for b in names:
        graded = {label: s["benchmarks"][b]["pass@1"] for label, s in summaries.items()
                  if "pass@1" in s["benchmarks"].get(b, {}) and s["benchmarks"][b]["pass@1"].get("n")}
        if not graded:
            continue
        lines += [f"## {BENCHMARK_TITLES[b]} (Pass@1)", ""]
        if b in INSTRUCTION_FOLLOWING:
            keys = ["prompt_strict", "instruction_strict", "prompt_loose", "instruction_loose"]
            rows = [[label, *(_pct(p1[k]) for k in keys), _counts(p1), str(p1["unscored_items"])]
                    for label, p1 in graded.items()]
            lines += _table(["Checkpoint", "Prompt strict", "Instruction strict", "Prompt loose",
                             "Instruction loose", "Examples", "Unscored items"], rows)
            if b == "muldimif":
                lines += ["", "Over the constraints our parser reads; not graded: " + ", ".join(
                    f"{label} {p1['unparsed_constraints']}" for label, p1 in graded.items()) + " constraints."]
        elif b in ANSWERED:
            rows = [[label, _pct(p1["accuracy"]), str(p1["no_answer"]), _counts(p1)] for label, p1 in graded.items()]
            lines += _table(["Checkpoint", "Accuracy", "No answer stated", "Examples"], rows)
        elif b == "llmeval_med":
            categories = sorted({c for p1 in graded.values() for c in p1["categories"]})
            rows = [[label, _pct(p1["usable"]), f"{p1['mean_score']:.2f}",
                     *(_pct(p1["categories"][c]["usable"]) if c in p1["categories"] else "—" for c in categories),
                     _counts(p1)] for label, p1 in graded.items()]
            lines += _table(["Checkpoint", "Usable (%)", "Mean score (1-5)", *categories, "Examples"], rows)
        elif b == "healthbench":
            axes = sorted({a for p1 in graded.values() for a in p1["axes"]})
            rows = [[label, f"{_pct(p1['score'])} ± {_pct(p1['stderr'])}",
                     *(f"{_pct(p1['axes'][a]['score'])} ± {_pct(p1['axes'][a]['stderr'])}" if a in p1["axes"]
                       else "—" for a in axes), _counts(p1)] for label, p1 in graded.items()]
            lines += _table(["Checkpoint", "Overall", *axes, "Examples"], rows)
        else:
            domains = sorted({d for p1 in graded.values() for d in p1["domain1"]})
            rows = [[label, f"{p1['score']:.2f}", *(f"{p1['domain1'][d]:.2f}" if d in p1["domain1"] else "—"
                                                    for d in domains), _counts(p1)] for label, p1 in graded.items()]
            lines += _table(["Checkpoint", "Overall", *domains, "Examples"], rows)
        lines.append("")
    return lines


def _passk_tables(summaries, names) -> list[str]:
    rows, ks = [], set()
    for label, s in summaries.items():
        for b in names:
            pk = s["benchmarks"].get(b, {}).get("pass@k", {})
            if pk.get("pass@k"):
                ks |= {int(k) for k in pk["pass@k"]}
                rows.append((label, b, pk))
    if not rows:
        return []
    ks = sorted(ks)
    table = [[label, BENCHMARK_TITLES[b], str(pk["n"]), str(pk["samples"]),
              *(_pct(pk["pass@k"][str(k)]) if str(k) in pk["pass@k"] else "—" for k in ks)] for label, b, pk in rows]
    return ["## pass@k (sampling, unbiased estimator; success = every rubric item met)", "",
            *_table(["Checkpoint", "Benchmark", "Examples", "Samples", *(f"pass@{k}" for k in ks)], table), ""]


def _revision_tables(summaries, names) -> list[str]:
    lines = []
    for label, s in summaries.items():
        for b in names:
            rev = s["benchmarks"].get(b, {}).get("revision", {})
            if not rev.get("success"):
                continue
            pk = rev.get("pass@k", {})
            rows = [[str(r), _pct(rev["success"][str(r)]), _pct(pk[str(r)]) if str(r) in pk else "—",
                     f"{rev['best_reward'][str(r)]:.3f}",
                     f"{rev['best_of_k'][str(r)]:.3f}" if str(r) in rev.get("best_of_k", {}) else "—"]
                    for r in range(1, rev["rounds"] + 1)]
            lines += [f"## Guided revision vs pass@k: {label}, {BENCHMARK_TITLES[b]} ({rev['n']} examples)", "",
                      *_table(["Samples per prompt", "Revision: solved (%)", "pass@k (%)",
                               "Revision: best reward", "Best-of-k reward"], rows), ""]
    return lines


# file -> (title, summary section, x label, rows of (curve key, equal-budget baseline key, y label, scale))
_PLOTS = {
    "passk.png": ("pass@k (unbiased estimator) and best-of-k reward", "pass@k", "k (samples per prompt)",
                  [("pass@k", None, "pass@k (%)", 100), ("best_of_k", None, "best-of-k reward (Eq. 4)", 1)]),
    "revision.png": ("Iterative guided revision vs pass@k at equal sample budget", "revision",
                     "samples per prompt (revision rounds, or k)",
                     [("success", "pass@k", "prompts solved (%)", 100),
                      ("best_reward", "best_of_k", "best reward so far (Eq. 4)", 1)]),
}


def plot(summaries: dict[str, dict], output: Path) -> list[Path]:
    """passk.png and revision.png, each when some checkpoint has its data: one column per benchmark."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for filename, (title, section, xlabel, rows) in _PLOTS.items():
        data = {b: {label: s["benchmarks"][b][section] for label, s in summaries.items()
                    if s["benchmarks"].get(b, {}).get(section, {}).get(rows[0][0])}
                for b in BENCHMARK_TITLES}
        data = {b: by_label for b, by_label in data.items() if by_label}
        if not data:
            continue
        fig, axes = plt.subplots(len(rows), len(data), figsize=(5.5 * len(data), 3.6 * len(rows)), squeeze=False)
        for column, (b, by_label) in enumerate(data.items()):
            for ax, (key, baseline, ylabel, scale) in zip(axes[:, column], rows):
                for i, (label, d) in enumerate(by_label.items()):
                    _line(ax, d[key], scale, f"C{i}", "o-", f"{label}: guided revision" if baseline else label)
                    if baseline and d.get(baseline):
                        _line(ax, d[baseline], scale, f"C{i}", "s--", f"{label}: pass@k / best-of-k")
                ax.set_title(f"{BENCHMARK_TITLES[b]} ({next(iter(by_label.values()))['n']} prompts)")
                ax.set_xlabel(xlabel)
                ax.set_ylabel(ylabel)
                ax.set_ylim(0, max(0.05 * scale, ax.get_ylim()[1]))
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        path = Path(output) / filename
        image = io.BytesIO()  # written by write_file: savefig(path) would follow a link at path
        fig.savefig(image, format="png", dpi=110)
        write_file(path, image.getvalue())
        plt.close(fig)
        written.append(path)
    return written


def _line(ax, by_k: dict, scale: float, color: str, style: str, label: str) -> None:
    ks = sorted(int(k) for k in by_k)
    ax.plot(ks, [scale * by_k[str(k)] for k in ks], style, color=color, label=label)
    ax.set_xticks(ks)


def write_report(output: str | Path) -> dict[str, Path]:
    """Writes results.json, results.md and the plots for every checkpoint in `output`."""
    output = Path(output)
    summaries = load_summaries(output)
    write_file(output / "results.json", json.dumps(summaries, indent=2, ensure_ascii=False) + "\n")
    write_file(output / "results.md", markdown(summaries) + "\n")
    paths = {"json": output / "results.json", "markdown": output / "results.md"}
    paths.update({p.stem: p for p in plot(summaries, output)})
    return paths
