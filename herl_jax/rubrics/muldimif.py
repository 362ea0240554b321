"""MulDimIF-style constraints (length, keywords, punctuation, case, markdown, JSON, language) as checkers.

MulDimIF states its constraints in free text and checks them with regexes; here each kind is an
instruction id with explicit kwargs, so a data reader maps a constraint onto one of these and the
revise prompt gets a description generated from the kwargs. The classes follow the IFEval
`Instruction` protocol (`build_description`, `get_instruction_args`, `check_following`) so one code
path runs IFEval, IFBench and these. Counting rules, chosen to work for English and Chinese alike:

- words: `\\w+` runs of non-CJK text, plus one word per CJK character;
- sentences: NLTK Punkt sentences (offline, see `nltk_data.py`), after splitting at 。！？;
- paragraphs: non-empty blocks separated by blank lines.
"""

from __future__ import annotations

import json
import re

import langdetect
import nltk

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_WORD = re.compile(rf"[^\W{_CJK}]+")
_LETTER_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_HEADING = re.compile(r"^(#{1,6})[ \t]+\S", re.MULTILINE)
_LIST_ITEM = re.compile(r"^[ \t]*(?:(?P<bullet>[-*+])|(?P<number>\d+[.)]))[ \t]+\S", re.MULTILINE)
_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_JSON_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```$", re.DOTALL | re.IGNORECASE)


def count_words(text: str) -> int:
    return len(_CJK_CHAR.findall(text)) + len(_WORD.findall(text))


def split_sentences(text: str) -> list[str]:
    chunks = re.split(r"(?<=[。！？])", text)
    return [s for chunk in chunks if chunk.strip() for s in nltk.sent_tokenize(chunk) if s.strip()]


def split_paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def _range_text(noun: str, low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high} {noun}"
    return f"at least {low} {noun}" if low is not None else f"at most {high} {noun}"


def _in_range(value: int, low: int | None, high: int | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


class Constraint:
    """Base: stores the kwargs; subclasses define `describe()` and `check(text)`."""

    def __init__(self, instruction_id: str):
        self.id = instruction_id
        self.kwargs: dict = {}

    def build_description(self, **kwargs) -> str:
        self.kwargs = kwargs
        self.validate()
        return self.describe()

    def get_instruction_args(self) -> dict:
        return dict(self.kwargs)

    def check_following(self, value: str) -> bool:
        return self.check(value)

    def validate(self) -> None:
        """Raise ValueError on kwargs the checker cannot use."""

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, text: str) -> bool:
        raise NotImplementedError


class _CountConstraint(Constraint):
    """A count of something (words, sentences, ...) within [min, max]."""

    noun = ""

    def validate(self):
        if self.kwargs.get(f"min_{self.noun}") is None and self.kwargs.get(f"max_{self.noun}") is None:
            raise ValueError(f"{self.id} needs min_{self.noun} or max_{self.noun}")

    def bounds(self) -> tuple[int | None, int | None]:
        return self.kwargs.get(f"min_{self.noun}"), self.kwargs.get(f"max_{self.noun}")

    def describe(self):
        return f"The response must contain {_range_text(self.noun, *self.bounds())}."

    def check(self, text):
        return _in_range(self.count(text), *self.bounds())

    def count(self, text: str) -> int:
        raise NotImplementedError


class WordCount(_CountConstraint):
    noun = "words"

    def count(self, text):
        return count_words(text)


class SentenceCount(_CountConstraint):
    noun = "sentences"

    def count(self, text):
        return len(split_sentences(text))


class ParagraphCount(_CountConstraint):
    noun = "paragraphs"

    def describe(self):
        return super().describe()[:-1] + ", separated by blank lines."

    def count(self, text):
        return len(split_paragraphs(text))


class Keywords(Constraint):
    """include: each appears at least `min_count` times; exclude: none appears (case-insensitive)."""

    def validate(self):
        if not self.kwargs.get("include") and not self.kwargs.get("exclude"):
            raise ValueError(f"{self.id} needs include or exclude keywords")

    def describe(self):
        parts = []
        if include := self.kwargs.get("include"):
            times = self.kwargs.get("min_count", 1)
            suffix = "" if times == 1 else f" at least {times} times each"
            parts.append(f"The response must include the keywords {', '.join(map(repr, include))}{suffix}.")
        if exclude := self.kwargs.get("exclude"):
            parts.append(f"The response must not include the words {', '.join(map(repr, exclude))}.")
        return " ".join(parts)

    def check(self, text):
        lowered = text.lower()
        times = self.kwargs.get("min_count", 1)
        included = all(lowered.count(k.lower()) >= times for k in self.kwargs.get("include") or ())
        excluded = not any(k.lower() in lowered for k in self.kwargs.get("exclude") or ())
        return included and excluded


class EndingPunctuation(Constraint):
    def validate(self):
        if not self.kwargs.get("punctuation"):
            raise ValueError(f"{self.id} needs punctuation")

    def describe(self):
        return f"The response must end with the punctuation mark {self.kwargs['punctuation']!r}."

    def check(self, text):
        return text.rstrip().endswith(self.kwargs["punctuation"])


class Case(Constraint):
    """style: upper (no lowercase letter), lower (no uppercase letter), or title (every word capitalized)."""

    STYLES = {
        "upper": "The response must be written entirely in uppercase letters.",
        "lower": "The response must be written entirely in lowercase letters.",
        "title": "Every word of the response must start with a capital letter.",
    }

    def validate(self):
        if self.kwargs.get("style") not in self.STYLES:
            raise ValueError(f"{self.id} style must be one of {sorted(self.STYLES)}")

    def describe(self):
        return self.STYLES[self.kwargs["style"]]

    def check(self, text):
        style = self.kwargs["style"]
        if style == "upper":
            return text == text.upper()
        if style == "lower":
            return text == text.lower()
        return all(word[0].isupper() for word in _LETTER_WORD.findall(text))


class MarkdownHeadings(Constraint):
    """ATX headings (`## Title`); `level` restricts to one level; min_count defaults to 1."""

    def validate(self):
        level = self.kwargs.get("level")
        if level is not None and not 1 <= level <= 6:
            raise ValueError(f"{self.id} level must be 1..6")

    def _bounds(self):
        return self.kwargs.get("min_count", 1), self.kwargs.get("max_count")

    def describe(self):
        level = self.kwargs.get("level")
        noun = f"level-{level} Markdown headings ({'#' * level} Heading)" if level else "Markdown headings"
        return f"The response must contain {_range_text(noun, *self._bounds())}."

    def check(self, text):
        level = self.kwargs.get("level")
        found = [h for h in _HEADING.findall(text) if level is None or len(h) == level]
        return _in_range(len(found), *self._bounds())


class MarkdownTable(Constraint):
    """At least one Markdown table (`optional=True`: none is fine too, as in "if you use a table, ..."); every
    table's data rows and columns within the given bounds."""

    def describe(self):
        limits = []
        if self.kwargs.get("min_rows") is not None or self.kwargs.get("max_rows") is not None:
            limits.append(_range_text("rows", self.kwargs.get("min_rows"), self.kwargs.get("max_rows")))
        if self.kwargs.get("min_columns") is not None or self.kwargs.get("max_columns") is not None:
            limits.append(_range_text("columns", self.kwargs.get("min_columns"), self.kwargs.get("max_columns")))
        if self.kwargs.get("optional"):
            return "Any Markdown table in the response must have " + (" and ".join(limits) or "a header row") + "."
        return "The response must contain a Markdown table" + (f" with {' and '.join(limits)}." if limits else ".")

    def check(self, text):
        tables = _tables(text)
        rows_ok = all(_in_range(rows, self.kwargs.get("min_rows"), self.kwargs.get("max_rows")) for rows, _ in tables)
        cols_ok = all(
            _in_range(cols, self.kwargs.get("min_columns"), self.kwargs.get("max_columns")) for _, cols in tables
        )
        return (bool(tables) or bool(self.kwargs.get("optional"))) and rows_ok and cols_ok


def _tables(text: str) -> list[tuple[int, int]]:
    """(data rows, columns) of each table: a `|` header line, a `|---|` separator, then `|` rows."""
    lines = [line.strip() for line in text.splitlines()]
    tables = []
    i = 0
    while i + 1 < len(lines):
        if "|" in lines[i] and _TABLE_SEPARATOR.match(lines[i + 1]) and "|" in lines[i + 1]:
            columns = len(lines[i].strip("|").split("|"))
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            tables.append((j - i - 2, columns))
            i = j
        else:
            i += 1
    return tables


class MarkdownList(Constraint):
    """List items (`- x`, `* x`, `1. x`); `ordered` True/False restricts to numbered/bulleted items."""

    def _bounds(self):
        return self.kwargs.get("min_items", 1), self.kwargs.get("max_items")

    def describe(self):
        kind = {True: "numbered", False: "bulleted", None: "Markdown"}[self.kwargs.get("ordered")]
        return f"The response must contain a {kind} list with {_range_text('items', *self._bounds())}."

    def check(self, text):
        ordered = self.kwargs.get("ordered")
        items = [
            m for m in _LIST_ITEM.finditer(text) if ordered is None or (m.group("number") is not None) == ordered
        ]
        return _in_range(len(items), *self._bounds())


class JsonFormat(Constraint):
    """The whole response is JSON (a ```json fence allowed); `max_depth` bounds object/array nesting."""

    def describe(self):
        depth = self.kwargs.get("max_depth")
        suffix = f", nested at most {depth} levels deep" if depth is not None else ""
        return f"The entire response must be valid JSON{suffix}."

    def check(self, text):
        body = text.strip()
        if fenced := _JSON_FENCE.match(body):
            body = fenced.group(1)
        try:
            value = json.loads(body)
        except ValueError:
            return False
        depth = self.kwargs.get("max_depth")
        return depth is None or _depth(value) <= depth


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


class Language(Constraint):
    """`language`: a langdetect code such as en, fr, zh-cn (Simplified) or zh-tw (Traditional)."""

    NAMES = {"en": "English", "zh-cn": "Simplified Chinese", "zh-tw": "Traditional Chinese"}

    def validate(self):
        if not self.kwargs.get("language"):
            raise ValueError(f"{self.id} needs language")

    def describe(self):
        code = self.kwargs["language"]
        return f"The response must be written in {self.NAMES.get(code, code)}."

    def check(self, text):
        try:
            return langdetect.detect(text) == self.kwargs["language"]
        except langdetect.LangDetectException:  # no letters at all: not in any language
            return False


INSTRUCTION_DICT = {
    "muldimif:length_words": WordCount,
    "muldimif:length_sentences": SentenceCount,
    "muldimif:length_paragraphs": ParagraphCount,
    "muldimif:keywords": Keywords,
    "muldimif:ending_punctuation": EndingPunctuation,
    "muldimif:case": Case,
    "muldimif:markdown_headings": MarkdownHeadings,
    "muldimif:markdown_table": MarkdownTable,
    "muldimif:markdown_list": MarkdownList,
    "muldimif:json": JsonFormat,
    "muldimif:language": Language,
}
