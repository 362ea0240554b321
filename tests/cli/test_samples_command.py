"""`python -m herl_jax.samples`: a hand-written samples log (the row format of herl_jax/step/group_samples.py)
rendered as HTML that html.parser reads back with the model's text escaped, as Markdown, and the bad inputs each
refused in one line. (tests/trainer/test_run.py renders a real run's log.)"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from tests.cli.helpers import assert_one_line_error, run

ATTACK = "<script>alert('x')</script> & \"quotes\""
ROW = {
    "step": 3, "prompt_id": "p<1>", "prompt": "Write about owls in lowercase.",
    "rubric": [{"id": 1, "text": "all lowercase", "weight": 1.0}, {"id": 2, "text": "mentions <b>owls</b>",
                                                                     "weight": 1.0}],
    "rollouts": [{"text": ATTACK, "reward": 0.5, "met": [2], "unmet": [1], "unscored": []},
                 {"text": "Owls ```fly``` at night", "reward": 0.0, "met": [], "unmet": [1, 2], "unscored": []}],
    "dropped_rollouts": 0, "candidates": [0],
    "revisions": [{"candidate": 0, "revise_prompt": "<|im_start|>user\nfix it<|im_end|>\n", "text": "owls hoot",
                   "reward": 1.0, "met": [1, 2], "unmet": [], "unscored": [], "bonus": 0.025, "best": True}],
    "joined": "revision", "copy_of": None, "replaced_slot": None,
    "members": [{"source": "rollout", "index": 0, "reward_before_bonus": 0.5, "reward": 0.525, "advantage": 0.3},
                {"source": "rollout", "index": 1, "reward_before_bonus": 0.0, "reward": 0.0, "advantage": -1.1},
                {"source": "revision", "index": 0, "reward_before_bonus": 1.0, "reward": 1.0, "advantage": 0.8}],
}


class _Page(HTMLParser):
    """Every start tag, the text of the elements of class "unmet", and all text, as a browser would read them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.unmet, self.text, self._open = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._open.append(dict(attrs).get("class") == "unmet")

    def handle_endtag(self, tag):
        self._open.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self._open and self._open[-1]:
            self.unmet.append(data)


@pytest.fixture
def workdir(tmp_path):
    flat = [{**m, "reward": 0.5, "advantage": 0.0} for m in ROW["members"]]  # no gradient
    other = {**ROW, "step": 5, "prompt_id": "later", "members": flat}
    (tmp_path / "samples.jsonl").write_text(json.dumps(ROW) + "\n" + json.dumps(other) + "\n" + '{"step": 7, "torn')
    return tmp_path


def test_html_escapes_the_texts_and_highlights_unmet_items(workdir, subprocess_env):
    out = workdir / "page.html"
    result = run(["-m", "herl_jax.samples", str(workdir), "--step", "3", "--output", str(out)], subprocess_env)
    assert result.returncode == 0, result.stderr
    page = _Page()
    page.feed(out.read_text())
    page.close()
    assert "script" not in page.tags and "b" not in page.tags  # the texts added no element
    text = "".join(page.text)
    assert ATTACK in text and "mentions <b>owls</b>" in text  # shown as written
    assert "<|im_start|>user\nfix it" in text  # the revise prompt as sent
    assert page.unmet == ["unmet 1. all lowercase", "unmet 1. all lowercase", "unmet 2. mentions <b>owls</b>"]
    assert "later" not in text  # --step 3 only
    for number in ("0.5000", "0.5250", "+0.3000", "-1.1000", "+0.0250"):  # rewards, advantages, the bonus
        assert number in text


def test_markdown_fences_the_texts(workdir, subprocess_env):
    result = run(["-m", "herl_jax.samples", str(workdir)], subprocess_env)
    assert result.returncode == 0, result.stderr
    md = result.stdout
    assert md.count("### step ") == 2  # both steps; the torn last line skipped
    assert "### step 3, prompt p\\<1\\>: the revision joined, appended\n" in md
    assert "### step 5, prompt later: the revision joined, appended; every member's reward is equal: no gradient\n" \
        in md
    assert f"```text\n{ATTACK}\n```" in md  # fenced: a renderer shows it as code
    assert "````text\nOwls ```fly``` at night\n````" in md  # a longer fence than the text's backticks
    assert "**UNMET 2. mentions \\<b\\>owls\\</b\\>**" in md  # inline text escaped, unmet in bold
    out = workdir / "page.md"
    assert run(["-m", "herl_jax.samples", str(workdir), "--output", str(out)], subprocess_env).returncode == 0
    assert out.read_text() == md


def test_bad_inputs_are_one_line(workdir, tmp_path, subprocess_env):
    def fails(*args, needle, status=1):
        assert_one_line_error(run(["-m", "herl_jax.samples", *args], subprocess_env), needle, status)

    fails(str(tmp_path / "absent"), needle="not a directory")
    (tmp_path / "empty").mkdir()
    fails(str(tmp_path / "empty"), needle="samples.jsonl: no samples log")
    fails(str(workdir), "--step", "4", needle="logged steps: [3, 5]")
    fails(str(workdir), "--step", "0", needle="--step", status=2)
    fails(str(workdir), "--output", str(tmp_path / "x.pdf"), needle="must end in .html or .md", status=2)
