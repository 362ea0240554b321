"""Revise prompts: the hindsight experience H_i = (draft, feedback) as text and token ids (docs/algorithm.md §5).

Two templates, kept as configuration data: ``instruction`` (instruction-following data, a "Candidate"
block) and ``rubric`` (rubric data such as RaR-Medicine, a "Rubric Status" block that also forbids
unsupported facts); ``template_for`` says which one an example gets. Placeholders: ``{instruction}``,
``{satisfied}``, ``{unmet}``, ``{draft}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from herl_jax.chat_tokens import encode_chats, encode_texts

_INSTRUCTION_TEMPLATE = """\
You are a revision assistant. Keep every requirement the draft already meets, fix the ones it misses, \
and do not add new facts.

Task: rewrite the draft below so that it follows all requirements of the instruction.
Rules:
1. Keep the content that already satisfies a requirement.
2. For each unmet requirement, make the smallest edit that satisfies it.
3. Keep any formatting that a satisfied requirement relies on.
4. Output only the revised answer, with no notes or explanations.

[Instruction]
{instruction}

[Candidate]
Satisfied:
{satisfied}
Unmet:
{unmet}

[Draft]
{draft}

Return only the revised answer."""

_RUBRIC_TEMPLATE = """\
You are a revision assistant. Keep every rubric item the draft already meets, fix the ones it misses, \
and do not add new facts.

Task: rewrite the draft below so that it meets all rubric items for the question.
Rules:
1. Keep the content that already meets a rubric item.
2. For each unmet item, make the smallest edit that meets it.
3. Do not add claims that neither the question nor the draft supports.
4. Keep any formatting that a met item relies on.
5. Output only the revised answer, with no notes or explanations.

[Instruction]
{instruction}

[Rubric Status]
Satisfied:
{satisfied}
Not satisfied:
{unmet}

[Draft]
{draft}

Return only the revised answer."""


class RubricFeedback(Protocol):
    """What the revise prompt reads from a scored rollout; ``herl_jax.rubrics.RubricResult`` fits.

    ``satisfied`` / ``unmet``: the met and missed rubric items. An item is a ``(number, text)`` pair,
    ``number`` being its 1-based position in the rubric (rendered numbered as in the rubric), or plain
    text (rendered as a bullet). Rewards are passed to the group logic separately, as floats.
    """

    satisfied: Sequence[Any]
    unmet: Sequence[Any]


def default_config():
    """The revise-prompt sub-config (an ml_collections ConfigDict)."""
    from ml_collections import ConfigDict  # lazy: host-only dependency

    return ConfigDict(
        dict(
            template="instruction",  # instruction | rubric (a key of `templates`)
            per_kind_templates=True,  # paper: each example's own kind picks; public code: always `template`
            chat_template=True,  # paper: wrap as a user turn; public code: raw text (False)
            templates=dict(instruction=_INSTRUCTION_TEMPLATE, rubric=_RUBRIC_TEMPLATE),
            item_format="- {text}",
            numbered_item_format="{number}. {text}",
            empty_list="none",
        )
    )


def template_for(prompt_cfg, example_template: str) -> str:
    """The key of ``prompt_cfg.templates`` an example's revise prompt uses.

    example_template: the example's own kind (``Example.template``: instruction | rubric). It is used
    when ``prompt_cfg.per_kind_templates`` (paper); otherwise ``prompt_cfg.template`` serves every
    example, whatever its kind (public code).
    """
    return example_template if prompt_cfg.per_kind_templates else prompt_cfg.template


def _format_items(items: Sequence[Any], cfg) -> str:
    if not items:
        return cfg.empty_list
    lines = []
    for item in items:
        if isinstance(item, str):
            lines.append(cfg.item_format.format(text=item))
        else:
            number, text = item
            lines.append(cfg.numbered_item_format.format(number=number, text=text))
    return "\n".join(lines)


def render_revise_prompt(instruction: str, feedback: RubricFeedback, draft: str, cfg) -> str:
    """The revise prompt as plain text (before any chat template)."""
    return cfg.templates[cfg.template].format(
        instruction=instruction,
        satisfied=_format_items(feedback.satisfied, cfg),
        unmet=_format_items(feedback.unmet, cfg),
        draft=draft,
    )


def revise_prompt_ids(tokenizer, instruction: str, feedback: RubricFeedback, draft: str, cfg) -> list[int]:
    """Token ids of the revise prompt: the context (q, H_i) a revision is sampled and trained under.

    ``cfg.chat_template``: the text becomes one user turn of the tokenizer's chat template with the
    generation prompt appended; otherwise the raw text is tokenized (public code). No special tokens are
    added beyond what the chat template writes, and none is read from the text: a special token spelled in
    the instruction, the feedback or the policy's draft stays characters (herl_jax.chat_tokens).
    """
    text = render_revise_prompt(instruction, feedback, draft, cfg)
    if cfg.chat_template:
        [ids] = encode_chats(tokenizer, [[{"role": "user", "content": text}]])
    else:
        [ids] = encode_texts(tokenizer, [text])
    return list(ids)
