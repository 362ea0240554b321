"""MulDimIF's released constraints, `[category, subcategory, text]` in free text, as our `muldimif:*` checks.

The release (Junjie-Ye/MulDimIF, `Data/test.json`) states each constraint in words ("The answer must contain
at most 50 words", "If a table is used, it must not exceed 3 rows") and grades it with its own regular
expressions. `parse_constraint` reads the same words into one of our checkers (herl_jax.rubrics.muldimif) and
its kwargs, or returns None when the text is not one of the forms below; the evaluation grades only the
constraints it reads and reports how many it could not (`details["unparsed"]`).

| category / subcategory       | forms read                                        | check                          |
|------------------------------|---------------------------------------------------|--------------------------------|
| Length: Words / Sentences / Paragraphs | at most / no more than / not exceed / maximum of N; at least / minimum of N; between A and B; exactly N; a single sentence | length_words / _sentences / _paragraphs |
| Content: Keywords            | the quoted words ('x', "x"): include, or exclude after "not" / "avoid" / "without" | keywords |
| Content: Punctuation         | end / conclude with / ending punctuation: a period, question mark, exclamation mark or semicolon | ending_punctuation |
| Language: English            | capitalized letters for each word / each word capitalized; all uppercase; all lowercase | case (title / upper / lower) |
| Language: Chinese            | Simplified / Traditional Chinese (简体 / 繁體)    | language zh-cn / zh-tw         |
| Format: Markdown / heading   | a level N heading (heading level N, H N, N #s)    | markdown_headings              |
| Format / Table: rows, columns | row and column bounds as above; "if you use a table" / "any table" makes it optional | markdown_table |
| Format: Json / nesting       | nesting levels not exceeding / at most N          | json max_depth                 |

A constraint on a part of the response ("each definition", "the titles", "table headers") is not read: our
checkers look at the whole response. Numbers may be digits or words (one ... twenty, thirty, ..., hundred).
"""

from __future__ import annotations

import re

from herl_jax.rubrics import Check

_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
                      "ninety": 90, "hundred": 100, "single": 1, "a single": 1})
_N = r"(\d+)"
_MAX = r"(?:at most|no more than|not more than|not exceed(?:ing)?|not to exceed|does not exceed|maximum of|" \
       r"a maximum of|maximum length of|max(?:imum)?|limited to|limit (?:it|them) to|up to|no longer than|within)"
_MIN = r"(?:at least|minimum of|a minimum of|no less than|no fewer than)"
# Part of the response rather than all of it: these constraints are not read.
_SCOPED = re.compile(r"\b(?:each|every|per|titles?|names?|headers?|headings?|entries|entry|keys?|examples?|"
                     r"bullet|cells?)\b")
_PUNCTUATION = {"period": ".", "full stop": ".", "question mark": "?", "exclamation mark": "!",
                "exclamation point": "!", "semicolon": ";"}
_OPTIONAL_TABLE = re.compile(r"\bif\b[^.]*\btab(?:les?|ular)\b|\bany (?:tables?|tabular)\b|\btables?,? if\b")


def _digits(text: str) -> str:
    """Number words as digits: "no more than three rows" -> "no more than 3 rows"."""
    words = "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True))
    text = re.sub(rf"\b({words}) hundred\b", lambda m: str(100 * _NUMBER_WORDS[m.group(1)]), text)  # two hundred
    return re.sub(rf"\b({words})\b", lambda m: str(_NUMBER_WORDS[m.group(1)]), text)


def _bounds(text: str, noun: str) -> tuple[int | None, int | None] | None:
    """(low, high) of a count of `noun` (a regex of its forms) stated in `text` (lowercase, digits), or None."""
    unit = rf"\s+(?:\w+\s+){{0,2}}?{noun}"
    if m := re.search(rf"between\s+{_N}\s*(?:and|to|-|–)\s*{_N}{unit}|range:?\s*{_N}\s*(?:-|–|to)\s*{_N}{unit}"
                      rf"|{_N}\s*(?:to|-|–)\s*{_N}{unit}", text):
        low, high = (int(g) for g in m.groups() if g is not None)
        return low, high
    if m := re.search(rf"(?:exactly|precisely)\s+{_N}{unit}", text):
        return int(m.group(1)), int(m.group(1))
    high = re.search(rf"{_MAX}(?:\s+(?:a total of|of))?\s+{_N}{unit}|{_N}{unit}\s+or (?:fewer|less)|"
                     rf"{noun.split('s?')[0]} limit of\s+{_N}", text)
    low = re.search(rf"{_MIN}\s+{_N}{unit}|{_N}{unit}\s+or more", text)
    if high or low:
        value = lambda m: int(next(g for g in m.groups() if g is not None))  # noqa: E731
        return (value(low) if low else None), (value(high) if high else None)
    if re.search(rf"\b1{unit}\s*(?:long|only)?\s*$|\bremains? (?:a )?1{unit}|\bbe 1{unit}|in 1{unit}", text):
        return 1, 1  # "a single sentence"
    return None


def _length(text: str, kind: str) -> Check | None:
    noun = {"words": r"words?", "sentences": r"sentences?", "paragraphs": r"paragraphs?"}[kind]
    bounds = _bounds(text, noun)
    if bounds is None or _SCOPED.search(text):
        return None
    kwargs = {key: value for key, value in zip((f"min_{kind}", f"max_{kind}"), bounds) if value is not None}
    return Check(f"muldimif:length_{kind}", kwargs)


def _keywords(text: str) -> Check | None:
    quoted = re.findall(r"'([^']+)'|\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’", text)
    words = [next(g for g in groups if g) for groups in quoted]
    if not words or _SCOPED.search(text.lower()):
        return None
    negative = re.search(r"\b(?:not|avoid|without|exclude|never)\b", text.lower())
    return Check("muldimif:keywords", {"exclude" if negative else "include": words})


def _punctuation(text: str) -> Check | None:
    if _SCOPED.search(text) or not re.search(r"\b(?:end|ends|ending|conclude|concludes|finish)\b", text):
        return None
    marks = [mark for name, mark in _PUNCTUATION.items() if name in text]
    if len(set(marks)) != 1 or re.search(r"\b(?:not|avoid)\b", text):
        return None
    return Check("muldimif:ending_punctuation", {"punctuation": marks[0]})


def _case(text: str) -> Check | None:
    if re.search(r"upper ?case|all capital letters|all caps", text):
        style = "upper"
    elif re.search(r"lower ?case", text):
        style = "lower"
    elif re.search(r"capitali[sz]ed letters? for each word|each word\b.*\bcapitali[sz]ed|"
                   r"each word\b.*\bcapital letter|capitali[sz]e each word", text):
        style = "title"
    else:
        return None
    without_each_word = re.sub(r"\b(?:for |in )?(?:each|every) word\b", "", text)
    return None if _SCOPED.search(without_each_word) else Check("muldimif:case", {"style": style})


def _chinese(text: str) -> Check | None:
    if re.search(r"simplified|简体", text):
        return Check("muldimif:language", {"language": "zh-cn"})
    if re.search(r"traditional|繁體|繁体", text):
        return Check("muldimif:language", {"language": "zh-tw"})
    return None


def _heading(text: str) -> Check | None:
    levels = set(re.findall(r"level[- ]?(\d)\s+headings?|headings?\s+(?:at\s+)?level\s+(\d)|\bh(\d)\b", text))
    levels = {int(next(g for g in groups if g)) for groups in levels}
    if not levels and re.search(r"heading", text) and not re.search(r"\d\s+(?:different\s+)?(?:heading )?levels|"
                                                                  r"levels of headings|exactly|at least|at most", text):
        return Check("muldimif:markdown_headings", {"min_count": 1})  # "use heading levels": some heading
    if len(levels) != 1 or re.search(r"\blevels\b", text):
        return None
    return Check("muldimif:markdown_headings", {"level": levels.pop(), "min_count": 1})


def _table(text: str) -> Check | None:
    kwargs = {}
    for noun, key in ((r"rows?", "rows"), (r"columns?", "columns")):
        bounds = _bounds(text, noun)
        if bounds:
            kwargs.update({f"{side}_{key}": value for side, value in zip(("min", "max"), bounds) if value is not None})
    if not kwargs:
        return None
    if _OPTIONAL_TABLE.search(text):
        kwargs["optional"] = True
    return Check("muldimif:markdown_table", kwargs)


def _json(text: str) -> Check | None:
    m = re.search(rf"(?:{_MAX}|not exceeding)\s+{_N}(?:\s+(?:object\s+)?(?:nesting\s+)?levels?)?|"
                  rf"levels?\s+(?:must\s+|do\s+|does\s+|should\s+)?(?:not\s+exceed(?:ing)?|at most)\s+{_N}", text)
    if not m or "at least" in text or "exactly" in text:
        return None
    return Check("muldimif:json", {"max_depth": int(next(g for g in m.groups() if g))})


def parse_constraint(category: str, subcategory: str, text: str) -> Check | None:
    """The check of one released constraint, or None when its text is not a form we read (module docstring)."""
    kind = f"{category} {subcategory}".lower()
    lowered = _digits(text.lower().strip())
    if "keyword" in kind or kind.startswith("content mention"):
        return _keywords(text)
    if "punctuation" in kind:
        return _punctuation(lowered)
    if "english" in kind:
        return _case(lowered)
    if "chinese" in kind:
        return _chinese(lowered)
    if "json" in kind:
        return _json(lowered)
    if "table" in kind or "row limit" in kind or "column limit" in kind:
        return _table(lowered)
    if "heading" in kind or kind in ("format markdown", "markdown markdown"):
        return _heading(lowered)
    for noun in ("words", "sentences", "paragraphs"):
        if noun[:-1] in kind:
            return _length(lowered, noun)
    if kind in ("content length", "format length", "format word count"):
        return _length(lowered, "words")
    return None
