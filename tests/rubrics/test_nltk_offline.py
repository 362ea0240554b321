"""Tokenization works with no download: a fresh process, a fresh data directory, and no network."""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, socket, sys
import nltk

def no_network(*args, **kwargs):
    raise AssertionError("network access attempted")
socket.socket.connect = no_network
socket.create_connection = no_network
downloads = []
nltk.download = lambda *a, **k: downloads.append(a) or False

from herl_jax.rubrics.instructions import run_check
from herl_jax.rubrics.nltk_data import data_dir
from herl_jax.rubrics.types import Check

text = "Mr. Smith went to Washington. He arrived at 5 p.m. on Jan. 3. Then he left!"
print(json.dumps({
    "downloads": downloads,
    "data_dir": str(data_dir()),
    "sentences": nltk.sent_tokenize(text),
    "words": nltk.word_tokenize("I can't go. It's late."),
    "stopwords": len(nltk.corpus.stopwords.words("english")),
    "three_sentences": run_check(
        Check("length_constraints:number_sentences", {"num_sentences": 3, "relation": "at least"}), "p", text),
}))
"""


def test_fresh_process_tokenizes_offline_and_never_downloads(tmp_path):
    env = {**os.environ, "HERL_NLTK_DATA": str(tmp_path / "nltk_data"), "NLTK_DATA": str(tmp_path / "empty")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["downloads"] == []  # IFBench's import-time nltk.download was never reached
    assert report["data_dir"] == str(tmp_path / "nltk_data")
    assert report["sentences"] == ["Mr. Smith went to Washington.", "He arrived at 5 p.m. on Jan. 3.", "Then he left!"]
    assert report["words"] == ["I", "ca", "n't", "go", ".", "It", "'s", "late", "."]
    assert report["stopwords"] == 179
    assert report["three_sentences"] is True
    punkt_tab = tmp_path / "nltk_data" / "tokenizers" / "punkt_tab" / "english"
    assert (punkt_tab / "ortho_context.tab").stat().st_size > 100_000
