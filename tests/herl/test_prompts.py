"""Revise prompts: both templates, item rendering, raw vs chat-templated token ids."""

import dataclasses

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from herl_jax.herl import default_config, render_revise_prompt, revise_prompt_ids
from herl_jax.herl.prompts import template_for


@dataclasses.dataclass(frozen=True)
class Feedback:  # any object with .score, .satisfied, .unmet
    score: float
    satisfied: tuple
    unmet: tuple


FEEDBACK = Feedback(0.5, satisfied=("Use exactly three bullet points",), unmet=("End with the word done",))
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _tiny_tokenizer(text):
    """A WordLevel tokenizer over the words of ``text``, with a chat template (nothing downloaded)."""
    pre = pre_tokenizers.Whitespace()
    words = sorted({w for w, _ in pre.pre_tokenize_str(text)})
    vocab = {"[UNK]": 0, "[PAD]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   chat_template=CHAT_TEMPLATE)
    fast.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>", "<|end|>"]})
    return fast


@pytest.mark.parametrize("template,status_header", [("instruction", "[Candidate]"), ("rubric", "[Rubric Status]")])
def test_both_templates_hold_every_part(template, status_header):
    cfg = default_config().prompt
    cfg.template = template
    text = render_revise_prompt("Write a haiku about rain.", FEEDBACK, "Rain falls softly", cfg)
    parts = ["[Instruction]\nWrite a haiku about rain.", status_header, "- Use exactly three bullet points",
             "- End with the word done", "[Draft]\nRain falls softly", "Return only the revised answer."]
    positions = [text.index(p) for p in parts]
    assert positions == sorted(positions)  # instruction, status, satisfied, unmet, draft, closing line
    assert text.endswith("Return only the revised answer.")


def test_rubric_template_forbids_unsupported_claims():
    cfg = default_config().prompt
    cfg.template = "rubric"
    assert "Do not add claims" in render_revise_prompt("q", FEEDBACK, "d", cfg)


def test_numbered_items_keep_rubric_numbers_and_empty_lists_say_none():
    cfg = default_config().prompt
    feedback = Feedback(0.0, satisfied=(), unmet=((2, "Cite a source"), (5, "Mention dosage")))
    text = render_revise_prompt("q", feedback, "d", cfg)
    assert "Satisfied:\nnone\n" in text
    assert "2. Cite a source\n5. Mention dosage" in text


def test_templates_are_configurable_text():
    cfg = default_config().prompt
    cfg.templates.instruction = "Fix {unmet} keeping {satisfied} in {draft} for {instruction}"
    text = render_revise_prompt("Q", FEEDBACK, "D", cfg)
    assert text == "Fix - End with the word done keeping - Use exactly three bullet points in D for Q"


def test_raw_and_chat_templated_ids():
    cfg = default_config().prompt
    text = render_revise_prompt("Say hi.", FEEDBACK, "hello", cfg)
    tokenizer = _tiny_tokenizer(text)

    cfg.chat_template = False
    raw = revise_prompt_ids(tokenizer, "Say hi.", FEEDBACK, "hello", cfg)
    assert raw == tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.unk_token_id not in raw

    cfg.chat_template = True
    chat = revise_prompt_ids(tokenizer, "Say hi.", FEEDBACK, "hello", cfg)
    special = tokenizer.convert_tokens_to_ids(["<|user|>", "<|end|>", "<|assistant|>"])
    assert chat == [special[0], *raw, *special[1:]]


@pytest.mark.parametrize("configured", ["instruction", "rubric"])
@pytest.mark.parametrize("kind", ["instruction", "rubric"])
def test_template_for_each_kind_or_one_for_all(configured, kind):
    cfg = default_config().prompt
    cfg.template = configured
    assert cfg.per_kind_templates  # the paper's default: the example's own kind
    assert template_for(cfg, kind) == kind
    cfg.per_kind_templates = False  # public code: one template for both data kinds
    assert template_for(cfg, kind) == configured
