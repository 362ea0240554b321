"""Build the SFT and DPO baselines' data offline from the base model, by rejection sampling on a training config's
own prompts and rubrics:

  python -m herl_jax.build_offline_data --config configs/small.py:herl --out_dir herl_jax/data/bundled \
      [--samples 8] [--prompts_per_call 16] [--limit N]

For each training example of the config (data.train_files, rubric rows): `--samples` replies of `model.source`,
sampled as the config's rollouts are (rollout section: temperature, max_new_tokens, max_prompt_len; seeds from
trainer.seed), scored by the config's rubric scorer. Then
  SFT (small_if_sft.jsonl, format sft): the first reply that meets every rubric item;
  DPO (small_if_dpo.jsonl, format dpo): that reply as chosen, and as rejected the lowest-scored reply that misses
      an item (ties: the first);
an example with no such reply (or no such pair) is left out, and counted. Rows keep the example's id and chat
messages. Deterministic for a given model, data and seed. Placed here, not in herl_jax/data/, because it samples
(a floor above data).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from absl import app, flags

from herl_jax.cli_errors import UsageError, run_cli
from herl_jax.cli_flags import define_config_file

SFT_FILE, DPO_FILE = "small_if_sft.jsonl", "small_if_dpo.jsonl"

_CONFIG = define_config_file("config", None, "training config whose prompts, rubrics and model are used")
_OUT_DIR = flags.DEFINE_string("out_dir", None, f"folder for {SFT_FILE} and {DPO_FILE}")
_SAMPLES = flags.DEFINE_integer("samples", 8, "replies sampled per prompt")
_PROMPTS_PER_CALL = flags.DEFINE_integer("prompts_per_call", 16, "prompts per sampler call (bounds the KV cache)")
_LIMIT = flags.DEFINE_integer("limit", 0, "only the first N training examples (0: all)")
flags.mark_flags_as_required(["config", "out_dir"])


def meets_every_item(sample) -> bool:
    """A scored reply (``Sample``) whose every rubric item is met (or pitfall avoided)."""
    return not sample.dropped and len(sample.result.satisfied) == len(sample.result.rubric.items)


def choose(replies: Sequence) -> tuple[object | None, object | None]:
    """(the first reply meeting every item, the lowest-scored reply missing one; first on ties), each or None.
    Dropped (unscored) replies are never chosen."""
    met = [s for s in replies if meets_every_item(s)]
    unmet = [s for s in replies if not s.dropped and not meets_every_item(s)]
    return (met[0] if met else None), (min(unmet, key=lambda s: s.reward) if unmet else None)


def build_rows(examples, sampler, policy, tokenizer, scorer, sampling, pad_id: int,
               prompts_per_call: int) -> tuple[list[dict], list[dict], dict[str, int]]:
    """(SFT rows, DPO rows, counts) for rubric ``examples``; ``sampling``: a SamplingConfig whose ``n`` is the
    replies per prompt and whose seed is offset by the call's index."""
    from herl_jax.step.phases import encode_prompts
    from herl_jax.step.sample_and_score import sample_and_score

    sft, dpo = [], []
    counts = {"examples": len(examples), "long_prompts_skipped": 0, "no_reply_meets_every_item": 0,
              "no_unmet_reply": 0}
    for call, start in enumerate(range(0, len(examples), prompts_per_call)):
        prompts = encode_prompts(tokenizer, examples[start : start + prompts_per_call], sampling.max_prompt_len)
        counts["long_prompts_skipped"] += prompts.skipped_long
        scored = sample_and_score(sampler, scorer, policy, tokenizer, prompts.ids, prompts.tasks,
                                  sampling.replace(seed=sampling.seed + call), pad_id)
        for p, example in enumerate(prompts.examples):
            met, unmet = choose(scored.samples[p * sampling.n : (p + 1) * sampling.n])
            if met is None:
                counts["no_reply_meets_every_item"] += 1
                continue
            row = {"id": example.id, "prompt": [dict(m) for m in example.messages]}
            sft.append({**row, "response": met.text})
            if unmet is None:
                counts["no_unmet_reply"] += 1
                continue
            dpo.append({**row, "chosen": met.text, "rejected": unmet.text})
    return sft, dpo, counts


def main(argv) -> None:
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {argv[1:]}")
    if _SAMPLES.value < 2 or _PROMPTS_PER_CALL.value < 1 or _LIMIT.value < 0:
        raise UsageError("--samples must be >= 2, --prompts_per_call >= 1 and --limit >= 0")
    from herl_jax.data import Example, load_dataset
    from herl_jax.data.build_if_dataset import write_jsonl
    from herl_jax.models import load_policy
    from herl_jax.rubrics import RubricScorer
    from herl_jax.sampling import generate, pad_id_for, stop_ids_for
    from herl_jax.training.run_config import resolve

    run = resolve(_CONFIG.value)
    examples = load_dataset(run.data).train
    if not all(isinstance(e, Example) for e in examples):
        raise UsageError(f"config.data.format={run.data.format!r}: the builder needs rubric rows (hir, rar, ifeval)")
    examples = examples[: _LIMIT.value or None]
    model, tokenizer = load_policy(run.model.source, dtype=run.model.dtype, param_dtype="float32",
                                   attention_impl=run.model.attention_impl)
    sampling = run.rollout.sampling(run.trainer.seed, stop_ids_for(tokenizer, model), n=_SAMPLES.value)
    scorer = RubricScorer(run.scorer)
    try:
        sft, dpo, counts = build_rows(examples, generate, model, tokenizer, scorer, sampling, pad_id_for(tokenizer),
                                      _PROMPTS_PER_CALL.value)
    finally:
        scorer.close()
    out = Path(_OUT_DIR.value)
    write_jsonl(sft, out / SFT_FILE)
    write_jsonl(dpo, out / DPO_FILE)
    print(json.dumps(counts))
    print(f"wrote {len(sft)} SFT rows to {out / SFT_FILE} and {len(dpo)} DPO pairs to {out / DPO_FILE}")


if __name__ == "__main__":
    from herl_jax.config import parse_flags

    run_cli(lambda: app.run(main, flags_parser=parse_flags))
