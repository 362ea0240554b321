"""The SFT / DPO data builder (herl_jax/build_offline_data.py) on tiny data: scripted replies scored by the real
programmatic checkers (all lowercase, no comma); the rows it keeps checked against those two rules as IFEval
defines them (text == text.lower(), for English text; no ',' in it), and the rows read back by the sft / dpo
readers. Every reply is a plain English sentence, so that IFEval's language check of the lowercase rule holds."""

from __future__ import annotations

import re

import numpy as np
import pytest

from herl_jax.build_offline_data import build_rows
from herl_jax.data import read_examples
from herl_jax.data.build_if_dataset import write_jsonl
from herl_jax.data.formats import parse_hir
from herl_jax.models import load_tokenizer
from herl_jax.rubrics import RubricScorer, ScorerConfig
from herl_jax.sampling import SampleOutput, SamplingConfig

RULES = dict(instruction_id_list=["change_case:english_lowercase", "punctuation:no_comma"], kwargs=[{}, {}])
# prompt tag -> the replies the scripted sampler gives, in sampling order
REPLIES = {
    "A": ["Owls hunt for their food, mostly at night.", "owls hunt for their food at night when it is dark.",
          "owls hunt for their food, mostly at night.", "owls sleep through the day in the trees."],
    # no reply meets both rules: no row
    "B": ["Bread is baked, then sliced.", "BREAD IS BAKED IN THE OVEN.", "bread is baked, then sliced.",
          "Rye and wheat make good bread, I think."],
    # every reply meets both: an SFT row, no DPO pair
    "C": ["tea is a warm drink that many people enjoy in the morning.", "green tea is made from the leaves.",
          "people drink tea with milk or with lemon.", "tea grows on bushes in the hills."],
}


def meets_both_rules(text: str) -> bool:
    return text == text.lower() and "," not in text


class ScriptedSampler:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, policy, prompts, config, pad_id=0) -> SampleOutput:
        texts = [t for ids in prompts for t in REPLIES[re.search(r"topic-(\w)", self.tokenizer.decode(ids))[1]]]
        assert len(texts) == len(prompts) * config.n
        ids = [self.tokenizer.encode(t, add_special_tokens=False) for t in texts]
        width = config.max_new_tokens
        tokens = np.full((len(ids), width), pad_id, np.int32)
        for r, row in enumerate(ids):
            tokens[r, : len(row)] = row
        lengths = np.array([len(i) for i in ids], np.int32)
        return SampleOutput(tokens, np.zeros((len(ids), width), np.float32), np.arange(width) < lengths[:, None],
                            lengths, ("stop",) * len(ids), np.repeat(np.arange(len(prompts), dtype=np.int32), config.n))


@pytest.mark.parametrize("prompts_per_call", [1, 3])
def test_rows_meet_every_rule_and_pairs_differ(prompts_per_call, tmp_path):
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    examples = [parse_hir({"id": tag, "prompt": f"Write about topic-{tag}.", **RULES}, "tiny") for tag in REPLIES]
    sampling = SamplingConfig(n=4, max_new_tokens=16, temperature=1.0, seed=0)
    with RubricScorer(ScorerConfig(workers=1)) as scorer:
        sft, dpo, counts = build_rows(examples, ScriptedSampler(tokenizer), None, tokenizer, scorer, sampling,
                                      pad_id=0, prompts_per_call=prompts_per_call)

    assert [(r["id"], r["response"]) for r in sft] == [("A", REPLIES["A"][1]), ("C", REPLIES["C"][0])]
    # A's rejected: the lowest score among the replies missing a rule, its first (both rules missed)
    assert [(r["id"], r["chosen"], r["rejected"]) for r in dpo] == [("A", REPLIES["A"][1], REPLIES["A"][0])]
    assert counts == {"examples": 3, "long_prompts_skipped": 0, "no_reply_meets_every_item": 1, "no_unmet_reply": 1}
    assert all(meets_both_rules(r["response"]) for r in sft)
    assert all(meets_both_rules(r["chosen"]) and not meets_both_rules(r["rejected"]) for r in dpo)

    write_jsonl(sft, tmp_path / "sft.jsonl")
    write_jsonl(dpo, tmp_path / "dpo.jsonl")
    read_sft, _ = read_examples(tmp_path / "sft.jsonl", "sft")
    read_dpo, _ = read_examples(tmp_path / "dpo.jsonl", "dpo")
    assert [e.responses for e in read_sft] == [(REPLIES["A"][1],), (REPLIES["C"][0],)]
    assert read_dpo[0].messages == ({"role": "user", "content": "Write about topic-A."},)
    assert read_dpo[0].responses == (REPLIES["A"][1], REPLIES["A"][0])
