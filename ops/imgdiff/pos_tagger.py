"""Offline English part-of-speech tagger: a bigram HMM decoded with Viterbi.

nltk's own tagger data cannot be downloaded here, so the statistics come from Debian's
``liblingua-en-tagger-perl`` package: ``words.yml`` (word -> Penn-Treebank tag counts from
the WSJ corpus) and ``tags.yml`` (P(tag | previous tag)).  Only those two data files are read;
the decoder below is ours.  Words the lexicon lacks take their possible parts of speech from
WordNet (with WordNet's tagged-sense counts as weights), else from suffix classes.

Tags are Lingua's lower-case Penn tags (``nn``, ``nns``, ``jj``, ``vbg``, ``det`` ...).
"""
from __future__ import annotations

import math
import os
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Optional

APT_PACKAGE = "liblingua-en-tagger-perl"
DEFAULT_DATA_DIR = "/usr/share/perl5/Lingua/EN/Tagger"
NOUN_TAGS = frozenset({"nn", "nns", "nnp", "nnps"})
START_TAG = "pp"  # sentence-final punctuation: the state before the first word

_LINE = re.compile(r'^("(?:[^"\\]|\\.)*"|[^"\s][^:]*):\s*\{(.*)\}\s*$')
_NUMBER = re.compile(r"^[0-9][0-9.,/:]*(?:st|nd|rd|th|s)?$")

# Suffix classes of unknown words -> tag weights (our own estimates, per 1000).
_UNKNOWN = {
    "number": {"cd": 1000},
    "hyphen": {"jj": 530, "nn": 470},
    "ing": {"vbg": 700, "nn": 150, "jj": 150},
    "ed": {"vbn": 400, "vbd": 300, "jj": 300},
    "ly": {"rb": 900, "jj": 100},
    "s": {"nns": 900, "vbz": 80, "nn": 20},
    "other": {"nn": 800, "jj": 200},
}


class TaggerDataMissing(RuntimeError):
    """The tagger's lexicon files are not installed."""


def _unquote(key: str) -> str:
    if key.startswith('"'):
        return re.sub(r"\\(.)", r"\1", key[1:-1])
    return key.strip()


def _parse_counts(body: str) -> dict[str, float]:
    out = {}
    for item in body.split(","):
        if ":" not in item:
            continue
        tag, num = item.split(":", 1)
        out[tag.strip()] = float(num)
    return out


def _read_table(path: Path) -> dict[str, dict[str, float]]:
    table = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = _LINE.match(line.rstrip("\n"))
            if m:
                table[_unquote(m.group(1))] = _parse_counts(m.group(2))
    return table


class HMMTagger:
    """Viterbi decoding over P(tag|prev) x P(word|tag), with P(word|tag) taken as
    P(tag|word) / P(tag) (the scaled likelihood) so known and unknown words share one path."""

    def __init__(self, data_dir: Optional[str] = None, wordnet=None):
        data_dir = Path(data_dir or os.environ.get("IMGJUICER_TAGGER_DATA") or DEFAULT_DATA_DIR)
        words, tags = data_dir / "words.yml", data_dir / "tags.yml"
        if not words.is_file() or not tags.is_file():
            raise TaggerDataMissing(
                f"part-of-speech lexicon not found ({words}, {tags}). Install it with: "
                f"apt-get install -y {APT_PACKAGE} (or set IMGJUICER_TAGGER_DATA to a "
                "directory holding its words.yml and tags.yml).")
        self.lexicon = _read_table(words)
        trans = _read_table(tags)
        if not self.lexicon or not trans:
            raise TaggerDataMissing(f"{data_dir}: words.yml or tags.yml holds no entries")
        totals: dict[str, float] = {}
        for counts in self.lexicon.values():
            for t, c in counts.items():
                totals[t] = totals.get(t, 0.0) + c
        grand = sum(totals.values())
        self.tags = sorted(set(totals) | set(trans))
        self.log_prior = {t: math.log(totals.get(t, 0.5) / grand) for t in self.tags}
        floor = math.log(1e-7)
        self.log_trans = {p: {t: (math.log(q) if q > 0 else floor)
                              for t, q in trans.get(p, {}).items()} for p in self.tags}
        self._floor = floor
        self.wordnet = wordnet

    # ------------------------------------------------------------------ word model
    def _wordnet_dist(self, word: str) -> dict[str, float]:
        wn = self.wordnet
        if wn is None:
            return {}
        dist: dict[str, float] = {}
        for pos in ("n", "v", "a", "r"):
            lemmas = wn._morphy(word, pos)
            if not lemmas:
                continue
            weight = 1.0
            for lemma in lemmas:
                for syn in wn.synsets(lemma, pos):
                    for lem in syn.lemmas():
                        if lem.name().lower() == lemma:
                            weight += lem.count()
            tag = {"n": "nn", "a": "jj", "r": "rb"}.get(pos)
            if pos == "n" and word not in lemmas:
                tag = "nns"
            if pos == "v":
                tag = ("vbg" if word.endswith("ing") else "vbn" if word.endswith("ed")
                       else "vbz" if word.endswith("s") and word not in lemmas else "vb")
            dist[tag] = dist.get(tag, 0.0) + weight
        return dist

    @staticmethod
    def _suffix_class(word: str) -> str:
        if _NUMBER.match(word):
            return "number"
        if "-" in word.strip("-"):
            return "hyphen"
        for suffix in ("ing", "ed", "ly"):
            if word.endswith(suffix) and len(word) > len(suffix) + 2:
                return suffix
        if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
            return "s"
        return "other"

    @lru_cache(maxsize=65536)
    def tag_distribution(self, word: str) -> tuple[tuple[str, float], ...]:
        """P(tag | word) as ((tag, p), ...): the lexicon, else WordNet, else the suffix."""
        # a capitalised lexicon entry ("Lemon", a surname in newswire) is the last resort
        # for a lower-case caption word: WordNet knows the common noun
        counts = (self.lexicon.get(word) or self.lexicon.get(word.lower())
                  or self._wordnet_dist(word.lower()) or self.lexicon.get(word.capitalize())
                  or _UNKNOWN[self._suffix_class(word)])
        total = sum(counts.values())
        return tuple((t, c / total) for t, c in counts.items() if c > 0 and t in self.log_prior)

    # ------------------------------------------------------------------ decoding
    def tag(self, tokens: list[str]) -> list[str]:
        """The most likely tag sequence for ``tokens``."""
        if not tokens:
            return []
        # best[t] = (log prob, back-pointer list)
        best = {START_TAG: (0.0, [])}
        for word in tokens:
            emit = {t: math.log(p) - self.log_prior[t] for t, p in self.tag_distribution(word)}
            nxt = {}
            for t, e in emit.items():
                score, path = max(
                    ((s + self.log_trans.get(p, {}).get(t, self._floor) + e, ps)
                     for p, (s, ps) in best.items()), key=lambda x: x[0])
                nxt[t] = (score, path + [t])
            best = nxt
        tags = max(best.values(), key=lambda x: x[0])[1]
        return self._caption_rules(tokens, tags)

    def _caption_rules(self, tokens: list[str], tags: list[str]) -> list[str]:
        """Fix what a newswire model gets wrong in captions: in "a cat sleeping on a sofa",
        an -ing word right after a noun is the participle, not a noun compound."""
        for i in range(1, len(tokens)):
            if (tags[i] == "nn" and tags[i - 1] in NOUN_TAGS and tokens[i].endswith("ing")
                    and self._can_be_participle(tokens[i])):
                tags[i] = "vbg"
        return tags

    def _can_be_participle(self, word: str) -> bool:
        if any(t == "vbg" for t, _ in self.tag_distribution(word)):
            return True
        return self.wordnet is not None and bool(self.wordnet._morphy(word, "v"))


_lock = threading.Lock()
_shared: dict[tuple, HMMTagger] = {}


def get_tagger(wordnet=None, data_dir: Optional[str] = None) -> HMMTagger:
    """One tagger per process (the lexicon takes ~0.3 s to read)."""
    key = (id(wordnet), data_dir)
    with _lock:
        if key not in _shared:
            _shared[key] = HMMTagger(data_dir, wordnet)
        return _shared[key]
