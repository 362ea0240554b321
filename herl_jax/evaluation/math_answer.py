"""MATH-500 grading: the last `\\boxed{...}` of a response against the reference answer, as the common MATH
graders compare them (Hendrycks et al.'s `is_equiv` string normalisation, then a sympy check of the value).

- `last_boxed(text)`: the content of the last `\\boxed{...}` (or `\\fbox{...}`, or `\\boxed 5`), nested braces
  included; None when the response boxes nothing (graded wrong, as those graders do).
- `normalize(answer)`: one canonical string: `\\dfrac`/`\\tfrac` -> `\\frac`, `\\frac12` -> `\\frac{1}{2}`,
  `a/b` of two integers -> `\\frac{a}{b}`, `\\left`/`\\right`, spacing commands and spaces removed, `\\text{...}`
  kept as its text, units after the value dropped, degrees (`^\\circ`), dollars and percent signs dropped,
  thousands separators and trailing zeros removed (`2.50` -> `2.5`, `5.0` -> `5`), `x = 3` -> `3` (a short left
  side), `0.5` -> `\\frac{1}{2}`.
- `equivalent(predicted, reference)`: equal normalised strings; or intervals / tuples of equivalent parts with the
  same brackets; or sets `\\{...\\}` of equivalent elements in any order; or the same value: both parsed to sympy (`\\frac`, `\\sqrt`, `\\pi`, `^`, implicit products) and
  their difference simplifying to 0.
"""

from __future__ import annotations

import re

_BOX = re.compile(r"\\(?:boxed|fbox)")
# A unit word after the value (`5 \text{ cm}`, `12 inches`): dropped; the value stays.
_UNITS = ("cm", "m", "km", "mm", "in", "inch", "inches", "ft", "feet", "foot", "yd", "yards", "mi", "miles",
          "units", "unit", "square units", "sq units", "degrees", "degree", "dollars", "dollar", "cents", "cent",
          "hours", "hour", "minutes", "minute", "seconds", "second", "days", "day", "meters", "meter",
          "centimeters", "pounds", "ounces", "mph", "percent", "sq ft", "square feet", "square inches",
          "square meters", "cubic feet", "cubic units", "inches^2", "cm^2", "m^2", "ft^2")
_UNIT = "(?:" + "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True)) + ")"
# in a text command (`5\text{ cm}`) or after a space (`12 inches`): a bare `2m` may be algebra
_UNIT_TAIL = re.compile(rf"(?:\s*\\(?:text|mbox|mathrm)\{{\s*{_UNIT}\s*\}}|\s+{_UNIT})(?:\^\{{?\d\}}?)?\s*$")


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` / `\\fbox{...}` in `text` (nested braces kept), or of `\\boxed X`
    (up to the next space or `$`); None when there is none or its braces never close."""
    starts = [m.end() for m in _BOX.finditer(text)]
    if not starts:
        return None
    rest = text[starts[-1]:]
    if rest.startswith(" "):
        return re.split(r"[\s$]", rest.lstrip(" "), maxsplit=1)[0] or None
    if not rest.startswith("{"):
        return None
    content = _braced(rest, 0)
    return content[0] if content else None


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """(content, index after the closing brace) of the group opening at text[start] == "{"."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
    return None


def _unwrap(text: str, command: str) -> str:
    """`\\command{X}` -> `X` everywhere (nested braces kept)."""
    out, i, token = [], 0, "\\" + command + "{"
    while (j := text.find(token, i)) >= 0:
        group = _braced(text, j + len(token) - 1)
        if group is None:
            break
        out += [text[i:j], group[0]]
        i = group[1]
    return "".join(out) + text[i:]


def _fix_fracs(text: str) -> str:
    """`\\frac12` -> `\\frac{1}{2}`, `\\frac1{2}` -> `\\frac{1}{2}`, `\\frac{1}2` -> `\\frac{1}{2}`."""
    def argument(s: str, i: int) -> tuple[str, int] | None:
        if i < len(s) and s[i] == "{":
            group = _braced(s, i)
            return (group[0], group[1]) if group else None
        return (s[i], i + 1) if i < len(s) else None

    out, i = [], 0
    while (j := text.find("\\frac", i)) >= 0:
        out.append(text[i:j])
        numerator = argument(text, j + 5)
        denominator = argument(text, numerator[1]) if numerator else None
        if denominator is None:
            out.append(text[j:])
            return "".join(out)
        out.append(f"\\frac{{{_fix_fracs(numerator[0])}}}{{{_fix_fracs(denominator[0])}}}")
        i = denominator[1]
    return "".join(out) + text[i:]


def _fix_sqrt(text: str) -> str:
    """`\\sqrt3` -> `\\sqrt{3}`."""
    return re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", text)


def _plain_number(text: str) -> str:
    """`1,000` -> `1000`; `2.50` -> `2.5`; `5.0` -> `5`; `.5` -> `0.5`; other text unchanged."""
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text):
        text = text.replace(",", "")
    if re.fullmatch(r"-?\d*\.\d+", text):
        text = text.rstrip("0").rstrip(".")
        text = re.sub(r"^(-?)\.", r"\g<1>0.", text)
    return text


def normalize(answer: str) -> str:
    """The canonical string of an answer (see the module docstring)."""
    s = answer.strip().replace("\n", "")
    s = re.sub(r"\\[!,;: ]|~", " ", s)
    s = s.replace("\\\\", "\\")
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\displaystyle", "")
    s = re.sub(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|°", "", s)
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("\\%", "").replace("%", "")
    s = _UNIT_TAIL.sub("", s) if not re.fullmatch(r"\s*\\text\{[^}]*\}\s*", s) else s
    for command in ("text", "textbf", "mbox", "mathrm", "boxed"):
        s = _unwrap(s, command)
    if s.count("=") == 1 and len(s.split("=")[0].strip()) <= 2:  # "x = 3" -> "3"
        s = s.split("=")[1]
    s = s.replace(" ", "")
    s = _fix_sqrt(_fix_fracs(s))
    s = _plain_number(s)
    if re.fullmatch(r"-?\d+/\d+", s):  # "1/2" -> "\frac{1}{2}"
        sign, (a, b) = ("-" if s.startswith("-") else ""), s.lstrip("-").split("/")
        s = f"{sign}\\frac{{{a}}}{{{b}}}"
    if s == "0.5":
        s = "\\frac{1}{2}"
    return s


def _split_top_level(text: str) -> list[str]:
    """`a,b,(c,d)` -> [a, b, (c,d)]: commas outside any bracket or brace."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def _to_sympy(latex: str):
    """A sympy expression of a normalised answer, or None when it is not plain arithmetic / algebra."""
    import sympy
    from sympy.parsing.sympy_parser import (convert_xor, implicit_multiplication_application, parse_expr,
                                            standard_transformations)

    s = latex
    while "\\frac{" in s or "\\sqrt" in s:  # innermost first: \frac{a}{b} -> ((a)/(b)), \sqrt{a} -> sqrt(a)
        s, fracs = re.subn(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s, roots = re.subn(r"\\sqrt\[([^{}\]]*)\]\{([^{}]*)\}", r"((\2)**(1/(\1)))", s)
        s, squares = re.subn(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
        if not fracs + roots + squares:
            return None
    s = s.replace("\\pi", "pi").replace("\\cdot", "*").replace("\\times", "*").replace("\\infty", "oo")
    s = s.replace("{", "(").replace("}", ")")
    if "\\" in s or not s or len(s) > 80 or re.search(r"[a-zA-Z]{2,}", s.replace("sqrt", "").replace("pi", "")
                                                       .replace("oo", "")):
        return None
    try:
        return parse_expr(s, transformations=(*standard_transformations, implicit_multiplication_application,
                                              convert_xor), evaluate=True, local_dict={"pi": sympy.pi})
    except Exception:  # sympy raises many kinds on text that is not an expression
        return None


def _same_value(a: str, b: str) -> bool:
    import sympy

    x, y = _to_sympy(a), _to_sympy(b)
    if x is None or y is None:
        return False
    try:
        difference = sympy.simplify(x - y)
        if difference == 0:
            return True
        return not difference.free_symbols and abs(complex(sympy.N(difference))) < 1e-6 * max(1.0, abs(complex(
            sympy.N(y))))
    except Exception:  # sympy on an expression it cannot simplify or evaluate
        return False


def equivalent(predicted: str, reference: str) -> bool:
    """Whether two answers are the same (see the module docstring)."""
    a, b = normalize(predicted), normalize(reference)
    if a == b:
        return True
    brackets = re.compile(r"^([(\[])(.*)([)\]])$")
    ma, mb = brackets.match(a), brackets.match(b)
    if ma and mb and "," in ma.group(2) and "," in mb.group(2):  # intervals and tuples: same ends, same parts
        if (ma.group(1), ma.group(3)) != (mb.group(1), mb.group(3)):
            return False
        parts_a, parts_b = _split_top_level(ma.group(2)), _split_top_level(mb.group(2))
        return len(parts_a) == len(parts_b) and all(map(equivalent, parts_a, parts_b))
    sets = re.compile(r"^\\\{(.*)\\\}$")
    sa, sb = sets.match(a), sets.match(b)
    if sa and sb:  # sets: the same elements in any order
        left, right = _split_top_level(sa.group(1)), _split_top_level(sb.group(1))
        for part in left:
            match = next((i for i, other in enumerate(right) if equivalent(part, other)), None)
            if match is None:
                return False
            right.pop(match)
        return not right
    if "," in a or "," in b:  # a list of answers: the same parts in the same order
        parts_a, parts_b = _split_top_level(a), _split_top_level(b)
        return len(parts_a) == len(parts_b) > 1 and all(map(equivalent, parts_a, parts_b))
    return _same_value(a, b)


def grade_math(response: str, reference: str) -> dict:
    """{"answer": the boxed answer or None, "correct": bool} of one response."""
    answer = last_boxed(response)
    return {"answer": answer, "correct": answer is not None and equivalent(answer, reference)}
