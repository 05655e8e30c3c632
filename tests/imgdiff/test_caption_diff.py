"""Caption noun diff, the offline tagger and the WordNet directory built from Debian files.

Expected outputs are written from the captions' meaning: (objects1, objects2, attributes1,
attributes2).  Objects are nouns (lemmatised head, compounds kept whole); attributes are
changed adjectives / numbers / participles with the noun they describe, as written.
"""
import pytest

from ops.imgdiff.caption_diff import CaptionDiff, caption_diff, get_differ, tokenize
from ops.imgdiff.pos_tagger import HMMTagger, TaggerDataMissing
from ops.imgdiff.wordnet_setup import (WordNetMissing, build_wordnet_dir, lexnames_text,
                                       open_wordnet)

E = ()
CASES = [
    # a noun swapped
    ("a man riding a horse", "a woman riding a horse", ("man",), ("woman",), E, E),
    ("a bowl of apples on a table", "a bowl of oranges on a table", ("apple",), ("orange",), E, E),
    ("a boy flying a kite in a park", "a boy flying a balloon in a park", ("kite",), ("balloon",), E, E),
    ("an elephant standing in the grass", "a giraffe standing in the grass", ("elephant",), ("giraffe",), E, E),
    ("a teddy bear on a bed", "a teddy bear on a chair", ("bed",), ("chair",), E, E),
    ("a plate with a sandwich and fries", "a plate with a burger and fries", ("sandwich",), ("burger",), E, E),
    ("a person standing near a parked bicycle", "a person standing near a parked motorcycle",
     ("bicycle",), ("motorcycle",), E, E),
    ("children playing soccer in a field", "children playing basketball in a field",
     ("soccer",), ("basketball",), E, E),
    ("a woman in a red dress holding a handbag", "a woman in a red dress holding a suitcase",
     ("handbag",), ("suitcase",), E, E),
    ("a bird perched on a branch", "a squirrel perched on a branch", ("bird",), ("squirrel",), E, E),
    ("a train at the station", "a bus at the station", ("train",), ("bus",), E, E),
    ("a man's hat on a table", "a man's bag on a table", ("hat",), ("bag",), E, E),
    ("a t-shirt on a hanger", "a sweater on a hanger", ("t-shirt",), ("sweater",), E, E),
    ("a skateboard", "a surfboard", ("skateboard",), ("surfboard",), E, E),
    ("a vase with flowers on a windowsill", "a vase with flowers on a shelf", ("windowsill",), ("shelf",), E, E),
    # Data-Juicer's own test pair: two nouns change on each side
    ("A plane in the sky flying alone.", "A boat in the ocean sailing alone.",
     ("plane", "sky"), ("boat", "ocean"), E, E),
    # multi-word changes and compounds
    ("a laptop and a mug on a desk", "a laptop and a cup of coffee on a desk", ("mug",), ("cup", "coffee"), E, E),
    ("a stop sign on a pole", "a street sign on a pole", ("stop sign",), ("street sign",), E, E),
    ("a teddy bear on a bed", "a bear on a bed", ("teddy bear",), ("bear",), E, E),
    # plurals: the head is lemmatised on both sides
    ("apples and oranges", "oranges and pears", ("apple",), ("pear",), E, E),
    ("a dog on a couch", "dogs on a couch", E, E, E, E),
    # appearance / disappearance: one side only
    ("a dog", "a cat and a dog", E, ("cat",), E, E),
    ("a cat and a dog on the grass", "a dog on the grass", ("cat",), E, E, E),
    ("", "a dog", E, ("dog",), E, E),
    # counts of the same noun
    ("a dog and a cat", "a dog and a dog", ("cat",), ("dog",), E, E),
    ("two dogs on a couch", "a dog on a couch", E, E, ("two dogs",), E),
    ("three apples on a plate", "four apples on a plate", E, E, ("three apples",), ("four apples",)),
    ("a cup", "two cups", E, E, E, ("two cups",)),
    # adjectives vs nouns: a colour word is an attribute, never an object
    ("A red car parked on the street", "A blue car parked on the street", E, E, ("red car",), ("blue car",)),
    ("a green apple", "a red apple", E, E, ("green apple",), ("red apple",)),
    ("a red and white car", "a blue and white car", E, E, ("red car",), ("blue car",)),
    ("the light is green", "the light is red", E, E, ("green light",), ("red light",)),
    ("a man holding an umbrella", "a man holding a red umbrella", E, E, E, ("red umbrella",)),
    ("a parked car", "a moving car", E, E, ("parked car",), ("moving car",)),
    ("a small dog on a big bed", "a big dog on a small bed", E, E,
     ("small dog", "big bed"), ("big dog", "small bed")),
    ("a black cat on a white sofa", "a white cat on a black sofa", E, E,
     ("black cat", "white sofa"), ("white cat", "black sofa")),
    # verbs change, objects do not
    ("a cat sleeping on a sofa", "a cat sitting on a sofa", E, E, E, E),
    # word order
    ("a cat next to a dog", "a dog next to a cat", E, E, E, E),
    ("a dog chasing a ball", "a ball chasing a dog", E, E, E, E),
    # identical up to case and punctuation
    ("a dog on a couch", "a dog on a couch", E, E, E, E),
    ("A dog, on a couch.", "a dog on a couch", E, E, E, E),
]


@pytest.mark.parametrize("c1,c2,o1,o2,a1,a2", CASES, ids=[f"{c[0]}|{c[1]}" for c in CASES])
def test_caption_pairs(c1, c2, o1, o2, a1, a2):
    assert caption_diff(c1, c2) == CaptionDiff(o1, o2, a1, a2)


def test_enough_cases():
    assert len(CASES) >= 30


def test_queries_and_empty():
    d = caption_diff("a red car next to a tree", "a blue car next to a bush")
    assert d.queries(1) == ["tree", "red car"] and d.queries(2) == ["bush", "blue car"]
    assert d.queries(1, attributes=False) == ["tree"]
    assert caption_diff("a dog", "A dog!").empty
    with pytest.raises(ValueError):
        d.queries(3)
    with pytest.raises(TypeError, match="caption must be a string"):
        caption_diff(None, "a dog")


def test_tokenize():
    assert tokenize("A man's T-shirt, (red)!") == ["a", "man", "'s", "t-shirt", "red"]


@pytest.mark.parametrize("sentence,tags", [
    ("a red car parked on the street", "det jj nn vbn in det nn"),
    ("a man riding a horse on the beach", "det nn vbg det nn in det nn"),
    ("a cat sleeping on a sofa", "det nn vbg in det nn"),
    ("two dogs sitting next to a skateboard", "cd nns vbg jj to det nn"),
    ("the light is green", "det nn vbz jj"),
])
def test_tagger_in_context(sentence, tags):
    tagger = get_differ().tagger
    assert " ".join(tagger.tag(sentence.split())) == tags


def test_tagger_names_its_package_when_data_missing(tmp_path):
    with pytest.raises(TaggerDataMissing, match="apt-get install -y liblingua-en-tagger-perl"):
        HMMTagger(str(tmp_path))


def test_lexnames_is_the_wordnet_table():
    lines = lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1"
    assert lines[29] == "29\tverb.body\t2" and lines[44] == "44\tadj.ppl\t3"
    assert [int(line.split("\t")[0]) for line in lines] == list(range(45))


def test_wordnet_dir_from_debian_files(tmp_path):
    root = build_wordnet_dir(tmp_path / "nltk_data")
    wn_dir = root / "corpora" / "wordnet"
    assert (wn_dir / "lexnames").read_text() == lexnames_text()
    assert not (wn_dir / "data.noun").is_symlink()
    wn = open_wordnet(root)
    assert wn.synsets("car", "n")[0].lexname() == "noun.artifact"
    assert wn.synsets("giraffe")[0].lexname() == "noun.animal"
    # built again: left as it is
    before = (wn_dir / "data.noun").stat().st_mtime_ns
    build_wordnet_dir(root)
    assert (wn_dir / "data.noun").stat().st_mtime_ns == before


def test_wordnet_missing_names_the_apt_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("WNSEARCHDIR", str(tmp_path / "nowhere"))
    with pytest.raises(WordNetMissing, match="apt-get install -y wordnet-base wordnet-sense-index"):
        build_wordnet_dir(tmp_path / "nltk_data")
