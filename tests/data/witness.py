"""Hand-built responses that follow a set of generated constraints: proof that a set is satisfiable.

`witness(checks)` writes plain English prose and Markdown to the letter of each constraint's kwargs,
then lets the real checker of each lower bound (words, sentences) say when enough padding was added.
It knows nothing of the generator's conflict rules: the tests run every check on the result.
"""

from __future__ import annotations

import json
import re

from herl_jax.rubrics.instructions import run_check
from herl_jax.rubrics.types import Check

PAD_WORDS = (
    "garden river mountain window bridge market letter season harbor forest valley meadow island castle "
    "station library museum village county planet engine signal record summer winter autumn spring "
    "morning evening orange yellow purple silver golden marble copper timber cotton leather canvas "
    "pepper ginger butter cheese bread apple cherry lemon melon grape olive onion carrot potato tomato "
    "violin guitar piano trumpet drum flute cello harp organ banjo camera mirror pillow blanket basket "
    "bottle candle ladder hammer needle button pocket collar ribbon saddle anchor compass lantern "
    "rocket comet galaxy nebula crater canyon desert glacier lagoon prairie tundra volcano reef delta "
    "falcon eagle parrot pigeon sparrow robin heron swan otter beaver badger rabbit squirrel turtle"
).split()
PRONOUN_SENTENCE = "I hope you and we can show them how it works as he and she do with my notes."
CONJUNCTION_SENTENCE = "Rain or sun and wind but calm so the day ends well."
BASE_SENTENCES = (
    "This answer covers the main points of the request in plain words that every reader should understand.",
    "Each point is short and clear and the whole text stays on the topic from the first line to the last.",
)


WORD_LOWER_BOUNDS = (
    "length_constraints:number_words", "count:word_count_range", "count:unique_word_count", "muldimif:length_words",
)
SENTENCE_LOWER_BOUNDS = ("length_constraints:number_sentences", "muldimif:length_sentences")
CASE_STYLES = {
    "change_case:english_lowercase": "lower", "change_case:english_capital": "upper", "format:title_case": "title",
}


def witness(checks: list[Check]) -> str:
    by_id = {c.instruction_id: dict(c.kwargs) for c in checks}
    sentences = _prose(by_id)
    if "detectable_format:json_format" in by_id or "muldimif:json" in by_id:
        def render() -> str:
            return json.dumps({"answer": " ".join(sentences)})
    else:
        def render() -> str:
            return _layout(by_id, sentences)

    def holds(ids) -> bool:
        return all(run_check(c, "", render()) for c in checks if c.instruction_id in ids)

    padded = 0
    while not holds(WORD_LOWER_BOUNDS) and padded < 600:  # longer first sentence: words, not sentences
        words = " ".join(PAD_WORDS[(padded + i) % len(PAD_WORDS)] for i in range(5))
        sentences[0] = f"{sentences[0][:-1]} {words}."
        padded += 5
    while not holds(SENTENCE_LOWER_BOUNDS) and len(sentences) < 40:
        sentences.append(f"The {PAD_WORDS[len(sentences)]} is near.")
    return render()


def _prose(by_id: dict) -> list[str]:
    """The sentences: base ones, then one for each content rule (keywords, pronouns, placeholders, ...)."""
    sentences = list(BASE_SENTENCES)
    terms: dict[str, int] = {}
    for keyword in by_id.get("keywords:existence", {}).get("keywords", []):
        terms[keyword] = 1
    if "keywords:frequency" in by_id:
        terms[by_id["keywords:frequency"]["keyword"]] = by_id["keywords:frequency"]["frequency"]
    if "muldimif:keywords" in by_id:
        for keyword in by_id["muldimif:keywords"]["include"]:
            terms[keyword] = by_id["muldimif:keywords"].get("min_count", 1)
    if terms:
        sentences.append("Key terms are " + " ".join(" ".join([k] * n) for k, n in terms.items()) + ".")
    if "count:pronouns" in by_id:
        sentences.append(PRONOUN_SENTENCE)
    if "count:conjunctions" in by_id:
        sentences.append(CONJUNCTION_SENTENCE)
    if "detectable_content:number_placeholders" in by_id:
        count = by_id["detectable_content:number_placeholders"]["num_placeholders"]
        sentences.append("Fill in " + " then ".join(["[name]", "[address]", "[date]", "[city]"][:count]) + ".")
    if "detectable_format:number_highlighted_sections" in by_id:
        count = by_id["detectable_format:number_highlighted_sections"]["num_highlights"]
        sentences.append("See " + " then ".join(f"*part {PAD_WORDS[i]}*" for i in range(count)) + ".")
    if "change_case:capital_word_frequency" in by_id:
        count = by_id["change_case:capital_word_frequency"]["capital_frequency"]
        sentences.append("Remember " + " ".join(w.upper() for w in PAD_WORDS[-count:]) + ".")
    return sentences


def _case(text: str, style: str) -> str:
    if style == "lower":
        return text.lower()
    if style == "upper":
        return text.upper()
    return re.sub(r"[A-Za-z]+", lambda m: m[0][0].upper() + m[0][1:], text)


def _structures(by_id: dict) -> list[str]:
    lines = []
    if "muldimif:markdown_table" in by_id:
        table = by_id["muldimif:markdown_table"]
        columns = table.get("min_columns", 2)
        lines.append("| " + " | ".join(f"Col {PAD_WORDS[c]}" for c in range(columns)) + " |")
        lines.append("|" + " --- |" * columns)
        for r in range(table.get("min_rows", 1)):
            lines.append("| " + " | ".join(PAD_WORDS[r * columns + c] for c in range(columns)) + " |")
    if "detectable_format:number_bullet_lists" in by_id:
        count = by_id["detectable_format:number_bullet_lists"]["num_bullets"]
        lines += [f"* point {PAD_WORDS[i]}" for i in range(count)]
    if "muldimif:markdown_list" in by_id:
        spec = by_id["muldimif:markdown_list"]
        for i in range(spec.get("min_items", 1)):
            lines.append(f"{i + 1}. item {PAD_WORDS[i]}" if spec.get("ordered") else f"- item {PAD_WORDS[i]}")
    return lines


def _layout(by_id: dict, sentences: list[str]) -> str:
    """Chunks (paragraphs or sections), each a heading, prose and structures; title first, P.S. and ending last."""
    if "length_constraints:number_paragraphs" in by_id:
        chunks, joiner = by_id["length_constraints:number_paragraphs"]["num_paragraphs"], "\n***\n"
    elif "muldimif:length_paragraphs" in by_id:
        spec = by_id["muldimif:length_paragraphs"]
        chunks, joiner = spec.get("min_paragraphs") or min(2, spec["max_paragraphs"]), "\n\n"
    elif "detectable_format:multiple_sections" in by_id:
        chunks, joiner = by_id["detectable_format:multiple_sections"]["num_sections"], "\n\n"
    else:
        chunks, joiner = 1, "\n\n"
    per_chunk = [sentences[i::chunks] or [f"More on {PAD_WORDS[i]}."] for i in range(chunks)]
    parts = []
    for i, chunk_sentences in enumerate(per_chunk):
        lines = []
        if "detectable_format:multiple_sections" in by_id:
            lines.append(f"{by_id['detectable_format:multiple_sections']['section_spliter']} {i + 1}")
        if i == 0 and "detectable_format:title" in by_id:
            lines.append("<<A Short Title>>")
        if i == 0 and "muldimif:markdown_headings" in by_id:
            spec = by_id["muldimif:markdown_headings"]
            lines += ["#" * spec.get("level", 2) + f" Heading {PAD_WORDS[h]}" for h in range(spec["min_count"])]
        lines.append(" ".join(chunk_sentences))
        if i == 0:
            lines += _structures(by_id)
        parts.append("\n".join(lines))
    if "detectable_content:postscript" in by_id:
        parts[-1] += f"\n{by_id['detectable_content:postscript']['postscript_marker']} Thanks for reading."
    text = joiner.join(parts)
    if "startend:end_checker" in by_id:
        text += " " + by_id["startend:end_checker"]["end_phrase"]
    if "muldimif:ending_punctuation" in by_id:
        text = text.rstrip(".!?") + by_id["muldimif:ending_punctuation"]["punctuation"]
    for instruction_id, case in CASE_STYLES.items():
        if instruction_id in by_id:
            text = _case(text, case)
    if "muldimif:case" in by_id:
        text = _case(text, by_id["muldimif:case"]["style"])
    if "startend:quotation" in by_id:
        text = f'"\n{text}\n"'
    return text
