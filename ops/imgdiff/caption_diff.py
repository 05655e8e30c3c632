"""Caption noun diff: which objects differ between two captions of near-identical images.

Steps: lower-case and tokenise both captions; tag parts of speech in context (offline HMM
tagger, ``pos_tagger``); lemmatise nouns with WordNet (nltk's reader); align the two
sequences with ``difflib`` (a noun phrase is one unit); the objects of a side are the noun
phrases in a changed span whose count in that caption exceeds their count in the other
caption (so plurals, "a" vs "two", and word-order changes are not differences).

A noun phrase is a run of nouns ("stop sign"); its key is the modifiers as written plus the
lemma of the head ("stop signs" -> "stop sign").  Changed adjectives, numbers and participles
that modify an unchanged noun are attribute changes ("a red car" vs "a blue car") and are
reported separately as phrases ("red car" / "blue car"): they name no new object, but the
region of that object differs.
"""
from __future__ import annotations

import difflib
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Optional

from .pos_tagger import NOUN_TAGS, get_tagger
from .wordnet_setup import ensure_wordnet, lemmatize

_TOKEN = re.compile(r"[^\W_]+(?:-[^\W_]+)*|'s\b")
MODIFIER_TAGS = frozenset({"jj", "jjr", "jjs", "cd", "vbn", "vbg"})
_BE = frozenset({"is", "are", "was", "were", "be", "being", "been", "looks", "look"})


@dataclass(frozen=True)
class Token:
    text: str
    tag: str
    key: str  # what difflib compares: noun lemma, else the word


@dataclass(frozen=True)
class CaptionDiff:
    """Differing objects (noun phrases) and attribute changes, per caption."""

    objects1: tuple[str, ...] = ()
    objects2: tuple[str, ...] = ()
    attributes1: tuple[str, ...] = ()
    attributes2: tuple[str, ...] = ()

    def queries(self, side: int, attributes: bool = True) -> list[str]:
        """Texts to match crops of image ``side`` (1 or 2) against."""
        if side not in (1, 2):
            raise ValueError("side must be 1 or 2")
        objs = self.objects1 if side == 1 else self.objects2
        attrs = self.attributes1 if side == 1 else self.attributes2
        return list(objs) + ([a for a in attrs if a not in objs] if attributes else [])

    @property
    def empty(self) -> bool:
        return not (self.objects1 or self.objects2 or self.attributes1 or self.attributes2)


def tokenize(caption: str) -> list[str]:
    """Lower-cased word tokens; punctuation dropped, hyphenated words and "'s" kept whole."""
    if not isinstance(caption, str):
        raise TypeError(f"caption must be a string, got {type(caption).__name__}")
    return _TOKEN.findall(caption.lower())


class CaptionDiffer:
    """Holds the WordNet reader and tagger (loaded once per process)."""

    def __init__(self, wordnet=None, tagger=None):
        self.wordnet = wordnet if wordnet is not None else ensure_wordnet()
        self.tagger = tagger if tagger is not None else get_tagger(self.wordnet)

    def analyse(self, caption: str) -> list[Token]:
        words = tokenize(caption)
        tags = self.tagger.tag(words)
        out = []
        for w, t in zip(words, tags):
            key = lemmatize(self.wordnet, w, "n") if t in NOUN_TAGS else w
            out.append(Token(w, t, key))
        return out

    # ------------------------------------------------------------------ phrases
    @staticmethod
    def _noun_groups(tokens: list[Token]) -> list[tuple[int, int]]:
        """[start, end) spans of consecutive nouns."""
        groups, i = [], 0
        while i < len(tokens):
            if tokens[i].tag in NOUN_TAGS:
                j = i
                while j < len(tokens) and tokens[j].tag in NOUN_TAGS:
                    j += 1
                groups.append((i, j))
                i = j
            else:
                i += 1
        return groups

    @staticmethod
    def _group_key(tokens: list[Token], span: tuple[int, int]) -> str:
        s, e = span
        return " ".join([t.text for t in tokens[s:e - 1]] + [tokens[e - 1].key])

    @staticmethod
    def _head_of_modifier(tokens: list[Token], i: int, group_at: dict) -> Optional[tuple]:
        """The noun group a modifier at ``i`` describes: the next one to its right through
        modifiers, "and" and commas ("a red and white car"), else a predicate's subject
        ("the light is green")."""
        j = i + 1
        while j < len(tokens) and (tokens[j].tag in MODIFIER_TAGS or tokens[j].tag in ("cc", "ppc")):
            j += 1
        if j < len(tokens) and j in group_at:
            return group_at[j]
        k = i - 1
        while k >= 0 and (tokens[k].tag in ("rb", "cc", "ppc") or tokens[k].tag in MODIFIER_TAGS):
            k -= 1
        if k >= 1 and tokens[k].text in _BE and (k - 1) in group_at:
            return group_at[k - 1]
        return None

    def _objects(self, tokens, changed: set[int], own: Counter, other: Counter) -> list[str]:
        objects = []
        for span in self._noun_groups(tokens):
            if any(i in changed for i in range(*span)):
                key = self._group_key(tokens, span)
                if own[key] > other[key] and key not in objects:
                    objects.append(key)
        return objects

    def _modifier_pairs(self, tokens: list[Token]) -> list[tuple[int, str, tuple]]:
        """(modifier index, "<modifier> <head>", head span) for every modifier with a head."""
        group_at = {i: span for span in self._noun_groups(tokens) for i in range(*span)}
        pairs = []
        for i, t in enumerate(tokens):
            if t.tag not in MODIFIER_TAGS:
                continue
            if t.tag in ("vbn", "vbg") and (i + 1) not in group_at:
                continue  # a participle counts only right before its noun ("parked car")
            head = self._head_of_modifier(tokens, i, group_at)
            if head is not None:
                head_text = " ".join(x.text for x in tokens[head[0]:head[1]])
                pairs.append((i, f"{t.text} {head_text}", head))
        return pairs

    def _attributes(self, tokens, changed: set[int], own: Counter, other: Counter,
                    objects: list[str]) -> list[str]:
        """Changed modifiers whose (modifier, head) pair the other caption lacks, grouped
        per head: "red and white car" -> "red white car"."""
        by_head: dict[tuple, list[str]] = {}
        for i, pair, head in self._modifier_pairs(tokens):
            if i in changed and own[pair] > other[pair]:
                by_head.setdefault(head, []).append(tokens[i].text)
        out = []
        for (s, e), mods in by_head.items():
            if self._group_key(tokens, (s, e)) in objects:
                continue  # the object itself differs: already reported
            phrase = " ".join(mods + [x.text for x in tokens[s:e]])
            if phrase not in out:
                out.append(phrase)
        return out

    # ------------------------------------------------------------------ diff
    def _units(self, tokens: list[Token]) -> tuple[list[str], list[tuple[int, int]]]:
        """What difflib aligns: each noun phrase is one unit ("teddy bear" vs "bear" is a
        replacement, not an insertion of "teddy"), every other token is its own unit."""
        spans, i = [], 0
        starts = dict(self._noun_groups(tokens))
        while i < len(tokens):
            end = starts.get(i, i + 1)
            spans.append((i, end))
            i = end
        keys = [self._group_key(tokens, sp) if sp[0] in starts else tokens[sp[0]].key
                for sp in spans]
        return keys, spans

    def diff(self, caption1: str, caption2: str) -> CaptionDiff:
        t1, t2 = self.analyse(caption1), self.analyse(caption2)
        (k1, s1), (k2, s2) = self._units(t1), self._units(t2)
        matcher = difflib.SequenceMatcher(None, k1, k2, autojunk=False)
        changed1, changed2 = set(), set()
        for op, a0, a1, b0, b1 in matcher.get_opcodes():
            if op != "equal":
                for u in range(a0, a1):
                    changed1.update(range(*s1[u]))
                for u in range(b0, b1):
                    changed2.update(range(*s2[u]))
        if not changed1 and not changed2:
            return CaptionDiff()
        groups1 = Counter(self._group_key(t1, g) for g in self._noun_groups(t1))
        groups2 = Counter(self._group_key(t2, g) for g in self._noun_groups(t2))
        pairs1 = Counter(p for _, p, _ in self._modifier_pairs(t1))
        pairs2 = Counter(p for _, p, _ in self._modifier_pairs(t2))
        o1 = self._objects(t1, changed1, groups1, groups2)
        o2 = self._objects(t2, changed2, groups2, groups1)
        a1 = self._attributes(t1, changed1, pairs1, pairs2, o1)
        a2 = self._attributes(t2, changed2, pairs2, pairs1, o2)
        return CaptionDiff(tuple(o1), tuple(o2), tuple(a1), tuple(a2))


_lock = threading.Lock()
_differ: Optional[CaptionDiffer] = None


def get_differ() -> CaptionDiffer:
    """The process-wide differ (WordNet + tagger load once, ~3 s)."""
    global _differ
    with _lock:
        if _differ is None:
            _differ = CaptionDiffer()
        return _differ


def caption_diff(caption1: str, caption2: str) -> CaptionDiff:
    """Differing objects and attribute changes between two captions."""
    return get_differ().diff(caption1, caption2)
