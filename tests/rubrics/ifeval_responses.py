"""Generated responses for IFEval prompts: plain ones, and ones built from the kwargs to follow them.

Used by the agreement test (so both verdicts occur for every instruction type) and the benchmark.
"""

PLAIN = (
    "Here is a short answer, written plainly. It covers the main points, gives one example, and "
    "ends with a brief summary. Nothing here is formatted in any special way."
)

IN_LANGUAGE = {
    "de": "Das Wetter ist heute sehr schön, und die Kinder spielen im Garten, während ihre Eltern Kaffee trinken.",
    "it": "Oggi il tempo è molto bello e i bambini giocano nel giardino mentre i genitori bevono il caffè.",
    "pt": "Hoje o tempo está muito bonito e as crianças brincam no jardim enquanto os pais tomam café.",
    "ru": "Сегодня очень хорошая погода, и дети играют в саду, пока их родители пьют кофе.",
    "vi": "Hôm nay thời tiết rất đẹp, trẻ em đang chơi trong vườn trong khi cha mẹ uống cà phê.",
    "fi": "Tänään sää on todella kaunis, ja lapset leikkivät puutarhassa, kun heidän vanhempansa juovat kahvia.",
    "ko": "오늘은 날씨가 매우 좋아서 아이들은 정원에서 놀고 부모님들은 커피를 마시며 휴가에 대해 이야기합니다.",
    "hi": "आज मौसम बहुत अच्छा है और बच्चे बगीचे में खेल रहे हैं जबकि उनके माता-पिता कॉफी पी रहे हैं।",
    "sw": "Leo hali ya hewa ni nzuri sana na watoto wanacheza bustanini wakati wazazi wao wanakunywa kahawa.",
}


def cooperative(row: dict, filler: bool = True) -> str:
    """A response that tries to follow each of the row's instructions, from the kwargs alone."""
    head, body, tail = [], [], []
    transforms = []
    for instruction_id, kw in zip(row["instruction_id_list"], row["kwargs"]):
        kind = instruction_id.split(":")[1]
        at_least = kw.get("relation", kw.get("let_relation", kw.get("capital_relation"))) == "at least"
        if kind == "response_language":
            body.append(IN_LANGUAGE.get(kw["language"], PLAIN))
        elif kind == "existence":
            body.append(" ".join(kw["keywords"]))
        elif kind == "frequency" and "keyword" in kw:
            body.append(" ".join([kw["keyword"]] * (kw["frequency"] if at_least else kw["frequency"] - 1)))
        elif kind == "letter_frequency":
            body.append(kw["letter"] * (kw["let_frequency"] if at_least else max(kw["let_frequency"] - 1, 0)))
        elif kind == "number_sentences":
            body.append("This is one sentence. " * (kw["num_sentences"] if at_least else kw["num_sentences"] - 1))
        elif kind == "number_paragraphs":
            body.append("\n***\n".join(f"Paragraph {i} text." for i in range(kw["num_paragraphs"])))
        elif kind == "number_words":
            body.append("word " * (kw["num_words"] if at_least else kw["num_words"] // 2))
        elif kind == "nth_paragraph_first_word":
            paragraphs = [f"Filler paragraph {i}." for i in range(kw["num_paragraphs"])]
            paragraphs[kw["nth_paragraph"] - 1] = f"{kw['first_word']} starts this paragraph."
            body.append("\n\n".join(paragraphs))
        elif kind == "number_placeholders":
            body.append(" ".join(f"[slot{i}]" for i in range(kw["num_placeholders"])))
        elif kind == "postscript":
            tail.append(f"{kw['postscript_marker']} Thanks for reading.")
        elif kind == "number_bullet_lists":
            body.append("\n".join(f"* point {i}" for i in range(kw["num_bullets"])))
        elif kind == "constrained_response":
            body.append("My answer is yes.")
        elif kind == "number_highlighted_sections":
            body.append(" ".join(f"*part {i}*" for i in range(kw["num_highlights"])))
        elif kind == "multiple_sections":
            body.append("\n".join(f"{kw['section_spliter']} {i}\nSome text." for i in range(1, kw["num_sections"] + 1)))
        elif kind == "json_format":
            body.append('```json\n{"answer": "yes"}\n```')
        elif kind == "title":
            head.append("<<A Fitting Title>>")
        elif kind == "two_responses":
            body.append("First answer.\n******\nSecond, different answer.")
        elif kind == "repeat_prompt":
            head.insert(0, kw["prompt_to_repeat"])
        elif kind == "end_checker":
            tail.append(kw["end_phrase"])
        elif kind == "capital_word_frequency":
            body.append("LOUD " * (kw["capital_frequency"] if at_least else 0))
        elif kind in ("english_capital", "english_lowercase", "no_comma", "quotation"):
            transforms.append(kind)
    text = "\n\n".join(["\n".join(head), *body, PLAIN if filler else "", "\n".join(tail)]).strip()
    for kind in transforms:
        text = {
            "english_capital": str.upper,
            "english_lowercase": str.lower,
            "no_comma": lambda t: t.replace(",", ""),
            "quotation": lambda t: f'"{t}"',
        }[kind](text)
    return text


def responses_for(row: dict) -> list[str]:
    followed = cooperative(row)
    one_at_a_time = [  # each instruction alone, with nothing else in the response
        cooperative({"instruction_id_list": [i], "kwargs": [kw]}, filler=False)
        for i, kw in zip(row["instruction_id_list"], row["kwargs"])
    ]
    return [
        "",
        PLAIN,
        f"{row['prompt']}\n\n{PLAIN}",
        followed,
        f"Sure! Here is my answer:\n{followed}\nHope this helps!",  # loose mode trims the wrapper lines
        followed.upper(),
        *one_at_a_time,
        *(f"**{text}**" for text in one_at_a_time),  # loose mode drops the stars
    ]
