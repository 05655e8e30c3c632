"""image_text_similarity_filter on real photos with a tiny CLIP (working tokenizer), checked
against transformers' own CLIPModel forward (Data-Juicer's logits_per_text / logit scale)."""
import functools
import json

import pytest
import torch
from PIL import Image

from ops import OPERATORS
from ops.fields import Fields, StatsKeys, Status
from ops.models.clip import load_clip
from tests.ops.conftest import batch_of_rows

IMG, EOC = "<__dj__image>", "<|__dj__eoc|>"


@functools.lru_cache(maxsize=2)
def _reference_model(model_dir):
    from transformers import CLIPModel, CLIPProcessor
    return CLIPModel.from_pretrained(model_dir).eval(), CLIPProcessor.from_pretrained(model_dir)


def reference(model_dir, images, text):
    """Cosine similarity of ``text`` with each image, by CLIPModel's own forward."""
    model, proc = _reference_model(model_dir)
    with torch.no_grad():
        out = model(**proc(text=[text], images=images, return_tensors="pt", padding=True))
    return (out.logits_per_text[0] / model.logit_scale.exp()).tolist()


def _run(rows, **kw):
    op = OPERATORS.get("image_text_similarity_filter")(**kw)
    out = op.run_batched(batch_of_rows(rows))
    return op, out, [json.loads(s).get(StatsKeys.image_text_similarity) for s in out[Fields.stats]]


def test_plain_text_scores_match_clip_forward(tiny_clip, photos):
    rows = [{"images": [photos["grace_hopper.jpg"]], "text": "a woman in uniform"},
            {"images": [photos["coffee.jpg"]], "text": "a cup of coffee"}]
    _, out, sims = _run(rows, hf_clip=tiny_clip, min_score=-1.0)
    for row, got in zip(rows, sims):
        img = Image.open(row["images"][0]).convert("RGB")
        assert got == pytest.approx(reference(tiny_clip, [img], row["text"]), abs=1e-4)
    assert out[Fields.status] == [Status.kept, Status.kept]


def test_chunks_reduce_modes_and_any_or_all(tiny_clip, photos):
    paths = [photos["grace_hopper.jpg"], photos["coffee.jpg"], photos["chelsea.png"]]
    text = f"{IMG} a woman {EOC} {IMG}{IMG} a cup and a cat {EOC}"
    imgs = [Image.open(p).convert("RGB") for p in paths]
    first = reference(tiny_clip, imgs[:1], "a woman")
    second = reference(tiny_clip, imgs[1:], "a cup and a cat")
    for mode, fn in (("avg", lambda v: sum(v) / len(v)), ("max", max), ("min", min)):
        _, _, sims = _run([{"images": paths, "text": text}], hf_clip=tiny_clip, reduce_mode=mode,
                          min_score=-1.0)
        assert sims[0] == pytest.approx([first[0], fn(second)], abs=1e-4)
    lo, hi = sorted(sims[0])
    cut = (lo + hi) / 2           # one chunk above the cut, one below
    _, out_any, _ = _run([{"images": paths, "text": text}], hf_clip=tiny_clip, min_score=cut,
                         reduce_mode="min")
    _, out_all, _ = _run([{"images": paths, "text": text}], hf_clip=tiny_clip, min_score=cut,
                         reduce_mode="min", any_or_all="all")
    assert out_any[Fields.status] == [Status.kept] and out_all[Fields.status] == [Status.filtered]
    assert "image_text_similarity=" in out_all[Fields.reason][0]


def test_flip_changes_what_is_compared(tiny_clip, photos):
    row = {"images": [photos["astronaut.png"]], "text": "an astronaut"}
    _, _, sims = _run([row], hf_clip=tiny_clip, horizontal_flip=True, min_score=-1.0)
    flipped = Image.open(row["images"][0]).convert("RGB").transpose(
        Image.Transpose.FLIP_LEFT_RIGHT)
    assert sims[0] == pytest.approx(reference(tiny_clip, [flipped], row["text"]), abs=1e-4)


def test_bad_rows_are_errors_alone_and_the_batch_is_embedded_once(tiny_clip, photos):
    rows = [{"images": [photos["grace_hopper.jpg"]], "text": "a woman"},
            {"images": [photos["broken.jpg"]], "text": "broken"},
            {"images": [photos["coffee.jpg"]], "text": None},
            {"images": [photos["coffee.jpg"]], "text": f"{IMG}{IMG} two tokens, one image"},
            {"images": [], "text": "no image"},
            {"images": [photos["chelsea.png"]], "text": "a cat"}]
    op, out, sims = _run(rows, hf_clip=tiny_clip, min_score=-1.0)
    assert out[Fields.status] == [Status.kept, Status.error, Status.error, Status.error,
                                  Status.kept, Status.kept]
    assert "broken.jpg" in out[Fields.reason][1]
    assert "no text in column 'text'" in out[Fields.reason][2]
    assert "2 image tokens but the sample has 1" in out[Fields.reason][3]
    assert sims[4] is None or sims[4] == []
    good = [rows[0], rows[5]]
    before = op._m_clip.forward_passes
    op.run_batched(batch_of_rows(good))
    assert op._m_clip.forward_passes == before + 2     # one image pass, one text pass


def test_text_tower_joins_the_shared_image_model(tiny_clip):
    image_only = load_clip(tiny_clip)
    with_text = load_clip(tiny_clip, with_text=True)
    assert with_text is image_only and with_text.has_text


def test_folder_without_tokenizer_is_a_clear_error(tmp_path):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel
    from ops.models.assets import ModelNotFoundError
    cfg = CLIPConfig(text_config=dict(vocab_size=8, hidden_size=8, intermediate_size=8,
                                      num_hidden_layers=1, num_attention_heads=1),
                     vision_config=dict(hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                        num_attention_heads=1, image_size=16, patch_size=8),
                     projection_dim=4)
    CLIPModel(cfg).save_pretrained(tmp_path / "m")
    CLIPImageProcessor(size={"shortest_edge": 16},
                       crop_size={"height": 16, "width": 16}).save_pretrained(tmp_path / "m")
    with pytest.raises(ModelNotFoundError, match="no tokenizer"):
        load_clip(str(tmp_path / "m"), with_text=True)
