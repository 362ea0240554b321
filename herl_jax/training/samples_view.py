"""The samples log's rows (step/group_samples.py) for reading: Markdown (TensorBoard's text tab, `herl_jax.samples
--output FILE.md`), a standalone HTML page (`--output FILE.html`), and a table of one line per rollout or revision
(Weights & Biases' Table).

Per group: the prompt, the training group as a table (where each member came from, its reward before and after
the bonus, its advantage), then each rollout and revision with its reward and rubric items, the unmet ones
highlighted, and each revise prompt as sent. Every text is the policy's or the data's: Markdown puts it in fenced
blocks or escapes it, HTML escapes it, so no text can add markup.
"""

from __future__ import annotations

import html
import re
from typing import Any, Sequence

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 70rem; margin: 1rem auto; padding: 0 1rem; color: #222; }}
section {{ border-top: 2px solid #888; margin-top: 2rem; }}
pre {{ white-space: pre-wrap; background: #f4f4f4; padding: .5rem; border-radius: 4px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .2rem .6rem; text-align: right; }}
td:nth-child(-n+2), th:nth-child(-n+2) {{ text-align: left; }}
.unmet {{ background: #ffd0d0; font-weight: bold; }} .met {{ color: #2a7a2a; }} .unscored {{ color: #888; }}
.sample {{ margin: 1rem 0; }}
</style></head><body>
<h1>{title}</h1>
{body}
</body></html>
"""


def _number(x: float | None) -> str:
    return "dropped" if x is None else f"{x:.4f}"


def _member_source(row: dict[str, Any], member: dict[str, Any]) -> str:
    """A member's origin, e.g. "rollout 2 (candidate)", "revision 0 (τ̃*)", "copy of rollout 1"."""
    source, index = member["source"], member["index"]
    if source == "copy":
        return f"copy of rollout {index} (τ̃* lost to it)"
    if source == "revision":
        return f"revision {index} of rollout {row['revisions'][index]['candidate']} (τ̃*)"
    return f"rollout {index}" + (" (candidate)" if index in row["candidates"] else "")


def _outcome(row: dict[str, Any]) -> str:
    """What the group's revision did (joined, lost to a copy, replaced a slot, or nothing was revised), and
    whether the group has no gradient (every member's reward equal)."""
    if row["joined"] is None:
        outcome = "revised, every revision dropped" if row["revisions"] else "not revised"
    else:
        how = "the revision joined" if row["joined"] == "revision" else f"a copy of rollout {row['copy_of']} joined"
        outcome = how + (f", replacing member {row['replaced_slot']}" if row["replaced_slot"] is not None
                         else ", appended")
    if len({m["reward"] for m in row["members"]}) == 1:
        outcome += "; every member's reward is equal: no gradient"
    return outcome


def _sample_name(kind: str, k: int, sample: dict[str, Any]) -> str:
    """"rollout 2", "revision 0 of rollout 1"."""
    return f"rollout {k}" if kind == "rollout" else f"revision {k} of rollout {sample['candidate']}"


def _sample_heading(row: dict[str, Any], kind: str, k: int, sample: dict[str, Any]) -> str:
    """The plain-text heading of a rollout or revision: its name, reward and role."""
    heading = f"{_sample_name(kind, k, sample)}: reward {_number(sample['reward'])}"
    if kind == "rollout":
        return heading + (" (candidate)" if k in row["candidates"] else "")
    bonus = "" if sample["bonus"] is None else f", bonus {sample['bonus']:+.4f} on rollout {sample['candidate']}"
    return heading + bonus + (" (τ̃*)" if sample["best"] else "")


def _samples(row: dict[str, Any]):
    """(kind, k, sample) of every rollout, then every revision."""
    yield from (("rollout", k, s) for k, s in enumerate(row["rollouts"]))
    yield from (("revision", k, s) for k, s in enumerate(row["revisions"]))


# ------------------------------------------------------------------------------------------------- Markdown
def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as Markdown: a section per group."""
    return "\n\n".join(_group_markdown(row) for row in rows) + "\n"


def _md(text: str) -> str:
    """Inline text with Markdown's (and HTML's) special characters escaped, on one line."""
    return re.sub(r"([\\`*_{}\[\]<>()#+\-.!|~&])", r"\\\1", " ".join(str(text).split()))


def _fenced(text: str) -> str:
    """``text`` as a fenced code block, its fence longer than any run of backticks inside it."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text}\n{fence}"


def _items_markdown(row: dict[str, Any], sample: dict[str, Any]) -> str:
    text = {item["id"]: item["text"] for item in row["rubric"]}
    parts = [f"**UNMET {j}. {_md(text[j])}**" for j in sample["unmet"]]
    parts += [f"met {j}. {_md(text[j])}" for j in sample["met"]]
    parts += [f"unscored {j}. {_md(text[j])}" for j in sample["unscored"]]
    return "\n".join(f"- {part}" for part in parts) or "no rubric item scored"


def _group_markdown(row: dict[str, Any]) -> str:
    lines = [f"### step {row['step']}, prompt {_md(row['prompt_id'])}: {_md(_outcome(row))}", "",
             _fenced(row["prompt"]), "",
             "| member | from | reward before bonus | reward | advantage |", "|---|---|---|---|---|"]
    for m, member in enumerate(row["members"]):
        lines.append(f"| {m} | {_md(_member_source(row, member))} | {_number(member['reward_before_bonus'])} | "
                     f"{_number(member['reward'])} | {member['advantage']:+.4f} |")
    if row["dropped_rollouts"]:
        lines += ["", f"{row['dropped_rollouts']} rollout(s) dropped (an item left unscored)"]
    for kind, k, sample in _samples(row):
        lines += ["", f"**{_md(_sample_heading(row, kind, k, sample))}**", "", _items_markdown(row, sample), ""]
        if kind == "revision":
            lines += ["revise prompt as sent:", "", _fenced(sample["revise_prompt"]), "", "revision:", ""]
        lines.append(_fenced(sample["text"]))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- HTML
def to_html(rows: Sequence[dict[str, Any]], title: str) -> str:
    """The rows as one HTML page: a section per group."""
    return _PAGE.format(title=_e(title), body="\n".join(_group_html(row) for row in rows))


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _items_html(row: dict[str, Any], sample: dict[str, Any]) -> str:
    text = {item["id"]: item["text"] for item in row["rubric"]}
    parts = [f'<li class="unmet">unmet {j}. {_e(text[j])}</li>' for j in sample["unmet"]]
    parts += [f'<li class="met">met {j}. {_e(text[j])}</li>' for j in sample["met"]]
    parts += [f'<li class="unscored">unscored {j}. {_e(text[j])}</li>' for j in sample["unscored"]]
    return f"<ul>{''.join(parts)}</ul>" if parts else "<p>no rubric item scored</p>"


def _group_html(row: dict[str, Any]) -> str:
    members = "".join(
        f"<tr><td>{m}</td><td>{_e(_member_source(row, member))}</td><td>{_number(member['reward_before_bonus'])}"
        f"</td><td>{_number(member['reward'])}</td><td>{member['advantage']:+.4f}</td></tr>"
        for m, member in enumerate(row["members"]))
    parts = [f"<section><h2>step {row['step']}, prompt {_e(row['prompt_id'])}: {_e(_outcome(row))}</h2>",
             f"<pre>{_e(row['prompt'])}</pre>",
             "<table><tr><th>member</th><th>from</th><th>reward before bonus</th><th>reward</th><th>advantage</th>"
             f"</tr>{members}</table>"]
    if row["dropped_rollouts"]:
        parts.append(f"<p>{row['dropped_rollouts']} rollout(s) dropped (an item left unscored)</p>")
    for kind, k, sample in _samples(row):
        parts.append(f'<div class="sample"><h3>{_e(_sample_heading(row, kind, k, sample))}</h3>'
                     + _items_html(row, sample))
        if kind == "revision":
            parts.append(f"<details><summary>revise prompt as sent</summary><pre>{_e(sample['revise_prompt'])}</pre>"
                         "</details>")
        parts.append(f"<pre>{_e(sample['text'])}</pre></div>")
    parts.append("</section>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------- table
TABLE_COLUMNS = ("step", "prompt_id", "prompt", "sample", "text", "reward", "met", "unmet", "bonus",
                 "reward_after_bonus", "advantage", "group", "revise_prompt")


def to_table(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """One line per rollout and revision of every row, in TABLE_COLUMNS order: met / unmet as item ids ("1, 3");
    bonus for a revision (on its candidate's reward); reward_after_bonus and advantage for a sample that is a
    member of the training group (None else); group: what the group's revision did."""
    lines = []
    for row in rows:
        member = {(m["source"], m["index"]): m for m in row["members"]}
        for kind, k, sample in _samples(row):
            m = member.get((kind, k), {})
            lines.append([row["step"], row["prompt_id"], row["prompt"], _sample_name(kind, k, sample),
                          sample["text"], sample["reward"], ", ".join(map(str, sample["met"])),
                          ", ".join(map(str, sample["unmet"])), sample.get("bonus"), m.get("reward"),
                          m.get("advantage"), _outcome(row), sample.get("revise_prompt", "")])
    return lines
