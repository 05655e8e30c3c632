"""image_captioning_mapper with a tiny BLIP captioner on real photos: captions equal
transformers' own generate, Data-Juicer's fan-out modes, and filling caption columns."""
import functools
import json

import pytest
from PIL import Image

from ops import OPERATORS
from ops.fields import Fields, Status
from tests.conftest import REPO, read_jsonl, write_jsonl
from tests.ops.conftest import batch_of_rows
from tests.pipelines.helpers import run_inprocess

IMG, EOC = "<__dj__image>", "<|__dj__eoc|>"


@functools.lru_cache(maxsize=1)
def _hf(model_dir):
    from transformers import BlipForConditionalGeneration, BlipProcessor
    return BlipForConditionalGeneration.from_pretrained(model_dir).eval(), \
        BlipProcessor.from_pretrained(model_dir)


TOKENS = 16      # short captions keep the tiny model's generate fast


def reference(model_dir, path, num=1, prompt=None):
    """Captions by BlipForConditionalGeneration.generate itself (greedy / beams)."""
    import torch
    model, proc = _hf(model_dir)
    kw = {"text": prompt} if prompt else {}
    inputs = proc(images=Image.open(path).convert("RGB"), return_tensors="pt", **kw)
    extra = {"num_beams": num, "num_return_sequences": num} if num > 1 else {}
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=TOKENS, do_sample=False, **extra)
    return [t.strip() for t in proc.batch_decode(ids, skip_special_tokens=True)]


def _run(rows, **kw):
    op = OPERATORS.get("image_captioning_mapper")(**{"max_new_tokens": TOKENS, **kw})
    op.ensure_setup()
    before = op._m_captioner.forward_passes
    out = op.run_batched(batch_of_rows(rows))
    n = len(out[Fields.id])
    return [{c: out[c][i] for c in out} for i in range(n)], op._m_captioner.forward_passes - before


def test_fill_mode_writes_missing_captions_only(tiny_captioner, photos):
    rows = [{"image_path1": photos["grace_hopper.jpg"], "image_path2": photos["coffee.jpg"],
             "caption1": "", "caption2": "a cup of coffee"},
            {"image_path1": photos["chelsea.png"], "image_path2": photos["astronaut.png"]}]
    keys = dict(image_keys=["image_path1", "image_path2"], caption_keys=["caption1", "caption2"])
    out, passes = _run(rows, hf_img2seq=tiny_captioner, **keys)
    assert [r[Fields.status] for r in out] == [Status.kept, Status.kept] and len(out) == 2
    assert out[0]["caption1"] == reference(tiny_captioner, photos["grace_hopper.jpg"])[0]
    assert out[0]["caption2"] == "a cup of coffee"                 # present: left alone
    assert out[1]["caption1"] == reference(tiny_captioner, photos["chelsea.png"])[0]
    assert out[1]["caption2"] == reference(tiny_captioner, photos["astronaut.png"])[0]
    assert all(out[1][k].strip() for k in ("caption1", "caption2"))
    assert passes == 1                                             # 3 images, one generate
    again, _ = _run(rows, hf_img2seq=tiny_captioner, overwrite=True, **keys)
    assert again[0]["caption2"] == reference(tiny_captioner, photos["coffee.jpg"])[0]


def test_fan_out_all_random_and_simhash(tiny_captioner, photos):
    path = photos["coffee.jpg"]
    beams = reference(tiny_captioner, path, num=3)
    assert len(set(beams)) == 3
    row = {"images": [path], "text": f"{IMG} {beams[1]} {EOC}"}
    out, _ = _run([row], hf_img2seq=tiny_captioner, caption_num=3, keep_candidate_mode="all")
    assert [r[Fields.id] for r in out] == ["0", "0/1", "0/2", "0/3"]
    assert out[0]["text"] == row["text"]
    assert [r["text"] for r in out[1:]] == [f"{IMG} {b} {EOC}" for b in beams]
    out, _ = _run([row], hf_img2seq=tiny_captioner, caption_num=3,
                  keep_candidate_mode="similar_one_simhash", keep_original_sample=False)
    (picked,) = [r["text"] for r in out]
    caption = picked[len(IMG) + 1:-len(EOC) - 1]
    assert caption in beams

    def bigram_simhash(text):
        from simhash import Simhash
        w = text.lower().split()
        return Simhash([" ".join(w[i:i + 2]) for i in range(max(len(w) - 1, 1))])
    ref = bigram_simhash(beams[1])               # closest to the original text
    assert ref.distance(bigram_simhash(caption)) == min(ref.distance(bigram_simhash(b))
                                                        for b in beams) == 0
    out, _ = _run([row], hf_img2seq=tiny_captioner, caption_num=3, seed=5)
    same, _ = _run([row], hf_img2seq=tiny_captioner, caption_num=3, seed=5)
    assert len(out) == 2 and out[1]["text"] in {f"{IMG} {b} {EOC}" for b in beams}
    assert out[1]["text"] == same[1]["text"]


def test_plain_text_prompt_and_bad_rows(tiny_captioner, photos):
    rows = [{"images": [photos["grace_hopper.jpg"], photos["chelsea.png"]], "text": "two"},
            {"images": [], "text": "nothing to caption"},
            {"images": [photos["broken.jpg"]], "text": "x"},
            {"images": [photos["coffee.jpg"]], "text": f"{IMG}{IMG}"}]
    out, passes = _run(rows, hf_img2seq=tiny_captioner, prompt="a photo of",
                       keep_original_sample=False)
    # the bad rows fail before generation; the good ones are captioned in one generate call
    # and get their captions back when the executor retries the rows one by one
    assert passes == 1
    by_id = {r[Fields.id]: r for r in out}
    caps = [reference(tiny_captioner, photos[n], prompt="a photo of")[0]
            for n in ("grace_hopper.jpg", "chelsea.png")]
    assert all(c.startswith("a photo of") for c in caps)
    assert by_id["0/1"]["text"] == " ".join(caps) and "0" not in by_id
    assert by_id["1"]["text"] == "nothing to caption" and by_id["1"][Fields.status] == Status.kept
    assert by_id["2"][Fields.status] == Status.error and "broken.jpg" in by_id["2"][Fields.reason]
    assert "2 image tokens but the sample has 1" in by_id["3"][Fields.reason]


def test_parameters_are_checked():
    make = OPERATORS.get("image_captioning_mapper")
    with pytest.raises(ValueError, match="same number of columns"):
        make(caption_keys=["caption1"], image_keys=["image_path1", "image_path2"])
    with pytest.raises(ValueError, match="makes new samples"):
        make(caption_keys=["caption1"], keep_candidate_mode="all")
    with pytest.raises(ValueError, match="keep_candidate_mode"):
        make(keep_candidate_mode="best")


def test_fan_out_through_the_executor_counts_parents(tiny_captioner, photos, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [
        {"images": [photos["coffee.jpg"]], "text": "coffee"},
        {"images": [photos["broken.jpg"]], "text": "broken"}])
    summary = run_inprocess([
        "--config", str(REPO / "tests" / "recipes" / "basic.yaml"), "--dataset_path", str(data),
        "--work_dir", str(tmp_path / "w"),
        "--process", json.dumps([{"image_captioning_mapper": {"hf_img2seq": tiny_captioner,
                                                                "max_new_tokens": TOKENS}}])])
    rows = read_jsonl(tmp_path / "w" / "result.jsonl")
    assert sorted(r[Fields.id] for r in rows) == ["0", "0/1"]
    (op,) = summary["ops"]
    assert (op["rows_in"], op["kept"], op["errored"], op["rows_out"]) == (2, 1, 1, 2)
