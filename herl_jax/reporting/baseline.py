"""The base policy's validation score, measured exactly as the trainer measures `validation/*`:

  python -m herl_jax.reporting.baseline --config configs/small.py --output DIR [--config.KEY=VALUE ...]

Greedy replies of `model.source` to the first `trainer.validation_prompts` validation examples of the
training config, scored by its rubric scorer: `herl_jax.step.held_out.score_held_out`, the trainer's
`validation/*` path, which logs only means. Writes DIR/baseline.json: the mean reward and success rate with
their standard errors, the pass rate of each instruction id, and one record per prompt (id, reward, each
item met or not, reply).

The standard error of a mean over the n validation prompts is sd / sqrt(n), sd the sample standard
deviation (ddof 1) of the per-prompt values: the spread of the validation estimate over draws of prompts,
with the replies greedy (deterministic) for a given policy. `python -m herl_jax.report --baseline` compares
the runs' final validation reward with this one in these units.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from absl import app, flags

from herl_jax.cli_errors import UsageError, run_cli
from herl_jax.cli_flags import define_config_file

_CONFIG = define_config_file("config", None, "training config file (see configs/)")
_OUTPUT = flags.DEFINE_string("output", None, "folder for baseline.json")
flags.mark_flags_as_required(["config", "output"])


def standard_error(values: list[float]) -> float:
    """sd (ddof 1) / sqrt(n); 0 for fewer than two values."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def summarize(held, success_threshold: float) -> dict:
    """Means, standard errors and per-instruction pass rates of the scored replies of a ``HeldOut``."""
    rewards, successes = held.rewards, held.successes(success_threshold)
    per_instruction: dict[str, list[bool]] = {}
    for _, reply in held.replies:
        if not reply.dropped:
            for instruction_id, met in _met(reply):
                if met is not None:
                    per_instruction.setdefault(instruction_id, []).append(met)
    return {
        "n": len(rewards), "dropped": held.dropped,
        "reward_mean": sum(rewards) / len(rewards) if rewards else math.nan,
        "reward_se": standard_error(rewards),
        "success_rate": sum(successes) / len(successes) if successes else math.nan,
        "success_se": standard_error(successes),
        "per_instruction": {k: {"n": len(v), "pass_rate": sum(v) / len(v)} for k, v in sorted(per_instruction.items())},
    }


def _met(reply) -> list[tuple[str, bool | None]]:
    """(instruction id, or the item's text when it has no check; met, None when unscored) per rubric item."""
    return [(item.check.instruction_id if item.check else item.text, verdict.met)
            for item, verdict in zip(reply.result.rubric.items, reply.result.verdicts)]


def measure(config) -> dict:
    """baseline.json's content for a training config (loads its policy, validation data and scorer)."""
    from herl_jax.data import load_dataset
    from herl_jax.models import load_policy
    from herl_jax.rubrics import RubricScorer
    from herl_jax.sampling import generate, pad_id_for
    from herl_jax.step.held_out import score_held_out
    from herl_jax.training.run_config import resolve

    run = resolve(config)
    model, tokenizer = load_policy(run.model.source, dtype=run.model.dtype, param_dtype="float32",
                                   attention_impl=run.model.attention_impl)
    examples = load_dataset(run.data).validation[: run.trainer.validation_prompts]
    if not examples:
        raise UsageError("the config has no validation examples (data.validation_files / validation_fraction, "
                         "trainer.validation_prompts)")
    scorer = RubricScorer(run.scorer)
    try:
        held = score_held_out(generate, model, tokenizer, scorer, examples, run.rollout, pad_id_for(tokenizer))
    finally:
        scorer.close()
    records = [{"id": example.id, "reward": reply.result.score, "met": _met(reply), "reply": reply.text}
               for example, reply in held.replies]
    return {"model": run.model.source, "data": list(run.data.validation_files or run.data.train_files),
            "max_new_tokens": run.rollout.max_new_tokens, "long_prompts_skipped": held.skipped_long,
            **summarize(held, run.herl.success_threshold), "records": records}


def main(argv) -> None:
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {argv[1:]}")
    result = measure(_CONFIG.value)
    output = Path(_OUTPUT.value)
    output.mkdir(parents=True, exist_ok=True)
    (output / "baseline.json").write_text(json.dumps(result, indent=1))
    print(f"validation reward {result['reward_mean']:.4f} ± {result['reward_se']:.4f} (SE), success rate "
          f"{result['success_rate']:.4f} ± {result['success_se']:.4f} over {result['n']} prompts")
    for instruction_id, stats in result["per_instruction"].items():
        print(f"  {stats['pass_rate']:6.1%}  n={stats['n']:3d}  {instruction_id}")
    print(f"wrote {output / 'baseline.json'}")


if __name__ == "__main__":
    from herl_jax.config import parse_flags

    run_cli(lambda: app.run(main, flags_parser=parse_flags))
