"""Constraint generators for the bundled instruction-following set: 2-4 compatible checks per prompt.

Each kind is a programmatic instruction id (IFEval, IFBench or MulDimIF-style) with a generator of
sensible kwargs. Compatibility is decided by *slots*, the aspects of a response a kind fixes: two
kinds that share a slot never go together (one case style, one length limit per unit, one list
count, one ending...), and a kind's `excludes` keeps it from kinds holding those slots (a JSON
response takes no commas rule, no Markdown, no case rule). Some kinds never fit a given prompt: no
length or layout rule when the prompt already asks for a length or a short form ("a haiku", "3
tips"), no case, comma or whole-response format rule when it asks for code, data formats or math.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Callable, Sequence

Kwargs = dict
KwargsMaker = Callable[[random.Random, Sequence[str]], Kwargs]  # (rng, keyword candidates) -> kwargs

MIN_CONSTRAINTS, MAX_CONSTRAINTS = 2, 4
# Words a forbidden-words rule may ban; never drawn as required keywords.
FILLER_WORDS = ("very", "really", "basically", "actually", "literally", "simply", "obviously", "quite", "totally")
END_PHRASES = (
    "Is there anything else I can help with?", "Any other questions?", "Is there anything else you would like to know?",
)
# Required keywords come from the prompt's own content words; these stand in when it has too few.
FALLBACK_KEYWORDS = ("summary", "context", "overview", "insight", "perspective")
_STOPWORDS = frozenset(
    "about above after again against because been before being below between could describe during each "
    "example explain following from further given having here into itself more most other over please "
    "provide should some such than that their them then there these they this those through under until "
    "very what when where which while whom why with would write your yourself create something things "
    "using make give tell list".split()
)
_LENGTH_REQUEST = re.compile(
    r"\b(haiku|limerick|sonnet|tweet|slogan|tagline|headline|one[- ](word|sentence|line|paragraph)"
    r"|(\d+|two|three|four|five|six|seven|eight|nine|ten)[- ]"
    r"(words?|sentences?|paragraphs?|lines?|items?|points?|bullets?|examples?|ideas?|tips?|ways?|steps?))\b",
    re.IGNORECASE,
)
_FORMAT_REQUEST = re.compile(
    r"\b(json|tables?|csv|code|coding|python|javascript|java|sql|html|css|regex|functions?|scripts?|program\w*"
    r"|latex|markdown|yaml|xml|bash|api)\b|\$|`",
    re.IGNORECASE,
)
_LENGTH_SLOTS = frozenset({"words", "sentences", "layout", "lists"})
_FORMAT_SLOTS = frozenset({"whole", "case", "commas"})
# What a whole-response JSON object cannot carry.
_NOT_WITH_JSON = frozenset(
    {"commas", "case", "sentences", "layout", "lists", "highlights", "title", "end", "postscript", "headings", "table"}
)


@dataclasses.dataclass(frozen=True)
class ConstraintKind:
    instruction_id: str
    make_kwargs: KwargsMaker
    slots: frozenset[str]
    excludes: frozenset[str] = frozenset()

    def conflicts_with(self, other: ConstraintKind) -> bool:
        return bool(self.slots & other.slots or self.excludes & other.slots or other.excludes & self.slots)


def _kind(instruction_id: str, make_kwargs: KwargsMaker, *slots: str, excludes=frozenset()) -> ConstraintKind:
    return ConstraintKind(instruction_id, make_kwargs, frozenset(slots), frozenset(excludes))


def _none(rng, keywords) -> Kwargs:
    return {}


def _number_words(rng, keywords):
    if rng.random() < 0.5:
        return {"num_words": rng.randrange(50, 301, 25), "relation": "at least"}
    return {"num_words": rng.randrange(100, 401, 25), "relation": "less than"}


def _number_sentences(rng, keywords):
    if rng.random() < 0.5:
        return {"num_sentences": rng.randint(3, 8), "relation": "at least"}
    return {"num_sentences": rng.randint(9, 15), "relation": "less than"}


def _min_max(rng, noun: str, low: tuple[int, int, int], high: tuple[int, int, int], spread: tuple[int, int, int]):
    """At least, at most, or between, each with probability 1/3."""
    mode = rng.randrange(3)
    if mode == 0:
        return {f"min_{noun}": rng.randrange(*low)}
    if mode == 1:
        return {f"max_{noun}": rng.randrange(*high)}
    least = rng.randrange(*low)
    return {f"min_{noun}": least, f"max_{noun}": least + rng.randrange(*spread)}


def _word_range(rng, keywords):
    least = rng.randrange(80, 301, 20)
    return {"min_words": least, "max_words": least + rng.randrange(20, 81, 10)}


def _keywords(rng, keywords):
    return {"keywords": rng.sample(list(keywords), rng.randint(1, 2))}


def _keyword_frequency(rng, keywords):
    return {"keyword": rng.choice(list(keywords)), "frequency": rng.randint(2, 4), "relation": "at least"}


def _muldimif_keywords(rng, keywords):
    return {"include": rng.sample(list(keywords), rng.randint(1, 2)), "min_count": rng.randint(1, 3)}


def _headings(rng, keywords):
    kwargs = {"min_count": rng.randint(1, 3)}
    level = rng.choice((None, 2, 3))
    return kwargs if level is None else {"level": level, **kwargs}


def _table(rng, keywords):
    rows, columns = rng.randint(2, 4), rng.randint(2, 3)
    return {"min_rows": rows, "max_rows": rows + rng.randint(0, 3), "min_columns": columns}


def _markdown_list(rng, keywords):
    least = rng.randint(2, 4)
    return {"ordered": rng.random() < 0.5, "min_items": least, "max_items": least + rng.randint(1, 4)}


KINDS: tuple[ConstraintKind, ...] = (
    # IFEval
    _kind("punctuation:no_comma", _none, "commas"),
    _kind("change_case:english_lowercase", _none, "case"),
    _kind("change_case:english_capital", _none, "case"),
    _kind("change_case:capital_word_frequency",
          lambda rng, kw: {"capital_frequency": rng.randint(2, 5), "capital_relation": "at least"}, "case"),
    _kind("length_constraints:number_words", _number_words, "words"),
    _kind("length_constraints:number_sentences", _number_sentences, "sentences"),
    _kind("length_constraints:number_paragraphs", lambda rng, kw: {"num_paragraphs": rng.randint(2, 4)}, "layout"),
    _kind("detectable_format:number_bullet_lists", lambda rng, kw: {"num_bullets": rng.randint(2, 5)}, "lists"),
    _kind("detectable_format:number_highlighted_sections",
          lambda rng, kw: {"num_highlights": rng.randint(1, 3)}, "highlights"),
    # The section marker is case-sensitive, so sections also hold the case slot.
    _kind("detectable_format:multiple_sections",
          lambda rng, kw: {"section_spliter": rng.choice(("Section", "SECTION")), "num_sections": rng.randint(2, 4)},
          "layout", "case"),
    _kind("detectable_format:title", _none, "title"),
    _kind("detectable_format:json_format", _none, "whole", excludes=_NOT_WITH_JSON),
    _kind("detectable_content:postscript",
          lambda rng, kw: {"postscript_marker": rng.choice(("P.S.", "P.P.S"))}, "postscript"),
    _kind("detectable_content:number_placeholders",
          lambda rng, kw: {"num_placeholders": rng.randint(1, 3)}, "placeholders"),
    _kind("keywords:existence", _keywords, "keywords"),
    _kind("keywords:frequency", _keyword_frequency, "keywords"),
    _kind("keywords:forbidden_words",
          lambda rng, kw: {"forbidden_words": rng.sample(FILLER_WORDS, rng.randint(2, 3))}, "forbidden"),
    _kind("startend:end_checker", lambda rng, kw: {"end_phrase": rng.choice(END_PHRASES)}, "end"),
    _kind("startend:quotation", _none, "whole", excludes={"end"}),
    # IFBench
    _kind("count:word_count_range", _word_range, "words"),
    _kind("count:unique_word_count", lambda rng, kw: {"N": rng.randrange(30, 101, 10)}, "words"),
    _kind("count:conjunctions", lambda rng, kw: {"small_n": rng.randint(2, 4)}, "conjunctions"),
    _kind("count:pronouns", lambda rng, kw: {"N": rng.randint(3, 8)}, "pronouns"),
    _kind("format:title_case", _none, "case"),
    # MulDimIF-style
    _kind("muldimif:length_words",
          lambda rng, kw: _min_max(rng, "words", (50, 301, 25), (100, 401, 25), (50, 151, 25)), "words"),
    _kind("muldimif:length_sentences",
          lambda rng, kw: _min_max(rng, "sentences", (3, 7), (9, 16), (5, 9)), "sentences"),
    _kind("muldimif:length_paragraphs",
          lambda rng, kw: _min_max(rng, "paragraphs", (2, 4), (3, 6), (1, 3)), "layout"),
    _kind("muldimif:keywords", _muldimif_keywords, "keywords"),
    _kind("muldimif:ending_punctuation", lambda rng, kw: {"punctuation": rng.choice((".", "!"))}, "end"),
    _kind("muldimif:case", lambda rng, kw: {"style": rng.choice(("lower", "upper", "title"))}, "case"),
    _kind("muldimif:markdown_headings", _headings, "headings"),
    _kind("muldimif:markdown_table", _table, "table"),
    _kind("muldimif:markdown_list", _markdown_list, "lists"),
    _kind("muldimif:json", lambda rng, kw: {"max_depth": rng.randint(2, 3)}, "whole", excludes=_NOT_WITH_JSON),
)


def keyword_candidates(prompt: str) -> list[str]:
    """Content words of the prompt (5+ letters, lowercased, first occurrence first), else stand-ins."""
    words = []
    for word in re.findall(r"[A-Za-z]{5,}", prompt):
        word = word.lower()
        if word not in _STOPWORDS and word not in FILLER_WORDS and word not in words:
            words.append(word)
    return words if len(words) >= 2 else [*words, *(w for w in FALLBACK_KEYWORDS if w not in words)]


def blocked_slots(prompt: str) -> frozenset[str]:
    """Slots a prompt already decides: its own length or short form, code, data formats, math."""
    blocked = frozenset()
    if _LENGTH_REQUEST.search(prompt):
        blocked |= _LENGTH_SLOTS
    if _FORMAT_REQUEST.search(prompt):
        blocked |= _FORMAT_SLOTS
    return blocked


def draw_constraints(rng: random.Random, prompt: str) -> list[tuple[str, Kwargs]]:
    """2-4 mutually compatible (instruction id, kwargs) pairs that fit `prompt`, drawn with `rng`."""
    count = rng.randint(MIN_CONSTRAINTS, MAX_CONSTRAINTS)
    blocked = blocked_slots(prompt)
    kinds = [kind for kind in KINDS if not kind.slots & blocked]
    rng.shuffle(kinds)
    chosen: list[ConstraintKind] = []
    for kind in kinds:
        if len(chosen) == count:
            break
        if not any(kind.conflicts_with(other) for other in chosen):
            chosen.append(kind)
    keywords = keyword_candidates(prompt)
    return [(kind.instruction_id, kind.make_kwargs(rng, keywords)) for kind in chosen]
