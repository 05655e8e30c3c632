"""Build an nltk-readable WordNet 3.0 directory from Debian's ``wordnet-base`` files.

nltk's ``WordNetCorpusReader`` expects ``<nltk_data>/corpora/wordnet/`` holding the WordNet
database files plus ``lexnames`` (the lexicographer-file table), which Debian does not ship.
We copy the Debian files (36 MB, once) into a project-owned directory and write ``lexnames``
ourselves; nothing is downloaded.  Links will not do: nltk refuses corpus files that are
symlinks resolving outside the corpus root, and files with more than one hard link.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Optional

APT_PACKAGES = ("wordnet-base", "wordnet-sense-index")
DEBIAN_WORDNET_DIR = "/usr/share/wordnet"

# The files nltk's reader opens; all but lexnames come from the two Debian packages
# (index.sense from wordnet-sense-index, the rest from wordnet-base).
_COPIED_FILES = (
    "cntlist.rev", "index.sense",
    "index.adj", "index.adv", "index.noun", "index.verb",
    "data.adj", "data.adv", "data.noun", "data.verb",
    "adj.exc", "adv.exc", "noun.exc", "verb.exc",
)

# WordNet 3.0 lexicographer files: number, name, syntactic category
# (1 noun, 2 verb, 3 adjective, 4 adverb) -- see lexnames(5WN).
_LEXNAMES = (
    "adj.all 3", "adj.pert 3", "adv.all 4", "noun.Tops 1", "noun.act 1", "noun.animal 1",
    "noun.artifact 1", "noun.attribute 1", "noun.body 1", "noun.cognition 1",
    "noun.communication 1", "noun.event 1", "noun.feeling 1", "noun.food 1", "noun.group 1",
    "noun.location 1", "noun.motive 1", "noun.object 1", "noun.person 1",
    "noun.phenomenon 1", "noun.plant 1", "noun.possession 1", "noun.process 1",
    "noun.quantity 1", "noun.relation 1", "noun.shape 1", "noun.state 1",
    "noun.substance 1", "noun.time 1", "verb.body 2", "verb.change 2", "verb.cognition 2",
    "verb.communication 2", "verb.competition 2", "verb.consumption 2", "verb.contact 2",
    "verb.creation 2", "verb.emotion 2", "verb.motion 2", "verb.perception 2",
    "verb.possession 2", "verb.social 2", "verb.stative 2", "verb.weather 2", "adj.ppl 3",
)

_lock = threading.Lock()
_reader = None


class WordNetMissing(RuntimeError):
    """WordNet's database files are not installed on this machine."""


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>category`` for the 45 lexicographer files."""
    lines = []
    for i, entry in enumerate(_LEXNAMES):
        name, cat = entry.split()
        lines.append(f"{i:02d}\t{name}\t{cat}")
    return "\n".join(lines) + "\n"


def default_nltk_root() -> Path:
    """Where the project keeps its nltk data (``$IMGJUICER_NLTK_DATA`` overrides)."""
    env = os.environ.get("IMGJUICER_NLTK_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "imgjuicer" / "nltk_data"


def debian_wordnet_dir() -> Path:
    """The WordNet database directory (``$WNSEARCHDIR`` as WordNet's own tools read it)."""
    return Path(os.environ.get("WNSEARCHDIR") or DEBIAN_WORDNET_DIR)


def _check_source(src: Path) -> None:
    missing = [f for f in _COPIED_FILES if not (src / f).is_file()]
    if missing:
        raise WordNetMissing(
            f"WordNet 3.0 database files missing from {src}: {', '.join(missing)}. "
            f"Install them with: apt-get install -y {' '.join(APT_PACKAGES)} "
            "(or set WNSEARCHDIR to a directory holding the WordNet 3.0 dict files).")


def _dir_is_complete(target: Path, src: Path) -> bool:
    if not (target / "lexnames").is_file():
        return False
    if (target / "lexnames").read_text() != lexnames_text():
        return False
    for f in _COPIED_FILES:
        have, want = target / f, src / f
        if not have.is_file() or have.stat().st_size != want.stat().st_size:
            return False
    return True



def build_wordnet_dir(root: Optional[Path] = None, source: Optional[Path] = None) -> Path:
    """Create ``<root>/corpora/wordnet`` (copied files + generated lexnames); return ``root``.

    Safe to call from several processes at once: the directory is built aside and renamed
    into place."""
    root = Path(root) if root is not None else default_nltk_root()
    src = Path(source) if source is not None else debian_wordnet_dir()
    _check_source(src)
    target = root / "corpora" / "wordnet"
    if _dir_is_complete(target, src):
        return root
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    for f in _COPIED_FILES:
        shutil.copyfile(src / f, tmp / f)
    (tmp / "lexnames").write_text(lexnames_text())
    stale = None
    if target.exists() or target.is_symlink():  # stale or partial: moved aside, then removed
        stale = Path(tempfile.mkdtemp(prefix=".wordnet-old-", dir=target.parent))
        try:
            os.rename(target, stale / "wordnet")
        except FileNotFoundError:
            pass  # another process moved it first
    try:
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not _dir_is_complete(target, src):  # another process won the race: its dir is fine
            raise
    if stale is not None:
        shutil.rmtree(stale, ignore_errors=True)
    return root


def _reader_class():
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNet(WordNetCorpusReader):
        """nltk's reader without the multilingual (OMW) synset map it builds at start-up,
        which re-reads index.sense twice and halves load time; we only use English."""

        def map_wn(self, version="wordnet"):
            return None

    return EnglishWordNet


def open_wordnet(root: Path):
    """A WordNet reader over ``<root>/corpora/wordnet`` (built first if needed).  ``root``
    joins ``nltk.data.path``: nltk 3.10 opens corpus files only under its data roots."""
    import warnings

    import nltk

    built = build_wordnet_dir(root)
    if str(built) not in nltk.data.path:
        nltk.data.path.append(str(built))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*multilingual functions.*")
        return _reader_class()(str(built / "corpora" / "wordnet"), None)


def ensure_wordnet():
    """The process-wide WordNet reader over the project's directory (built on first use).

    The directory is also put on ``nltk.data.path`` so ``nltk.corpus.wordnet`` and
    ``WordNetLemmatizer`` work offline too.  Raises WordNetMissing (naming the apt packages)
    when the Debian files are absent."""
    global _reader
    with _lock:
        if _reader is None:
            import nltk

            root = default_nltk_root()
            if str(root) not in nltk.data.path:  # first, so nltk.corpus.wordnet finds ours
                nltk.data.path.insert(0, str(root))
            _reader = open_wordnet(root)
        return _reader


def lemmatize(wordnet, word: str, pos: str = "n") -> str:
    """nltk ``WordNetLemmatizer.lemmatize`` semantics (shortest WordNet lemma, else the word)
    on the given reader."""
    lemmas = wordnet._morphy(word, pos)
    return min(lemmas, key=len) if lemmas else word
