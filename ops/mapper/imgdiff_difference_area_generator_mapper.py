"""ImgDiff difference areas: boxes around the regions where two near-identical images differ."""
from __future__ import annotations

from typing import Optional

from ..base import Mapper, OpError
from ..fields import Fields, MetaKeys
from ..imgdiff.boxes import xyxy_to_dj
from ..pairs import check_pair_keys, pair_paths
from ..registry import OPERATORS

IMGDIFF_META = "imgdiff"  # meta key of the per-pair details (nouns, scores, reason)

# Sub-op arguments, as Data-Juicer's recipe spells them, with its ImgDiff recipe's values.
_SIMILARITY_DEFAULTS = {"min_score_1": 0.9, "max_score_1": 0.99, "min_score_2": 0.0,
                        "max_score_2": 0.85, "hf_clip": "openai/clip-vit-base-patch32"}
_SEGMENT_DEFAULTS = {"imgsz": 1024, "conf": 0.05, "iou": 0.5, "max_det": 300,
                     "model_path": "FastSAM-x.pt"}
_ITM_DEFAULTS = {"min_score": 0.4, "max_score": 1.0, "hf_blip": "Salesforce/blip-itm-base-coco"}
# Accepted for Data-Juicer recipe compatibility and ignored (parallelism is the executor's).
_IGNORED = {"num_proc"}


def _merge(op_name: str, what: str, given: Optional[dict], defaults: dict) -> dict:
    out = dict(defaults)
    for key, value in (given or {}).items():
        if key in _IGNORED:
            continue
        if key not in defaults:
            raise ValueError(f"{op_name}: unknown key '{key}' in {what} "
                             f"(known: {', '.join(sorted(defaults))})")
        expected = type(defaults[key])
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            raise ValueError(f"{op_name}: {what}.{key} must be {expected.__name__}, "
                             f"got {type(value).__name__} {value!r}")
        out[key] = value
    return out


@OPERATORS.register_module("imgdiff_difference_area_generator_mapper")
class ImgdiffDifferenceAreaGeneratorMapper(Mapper):
    """Boxes (meta.bbox, xyxy pixels of image 1) around objects that differ between a pair.

    Steps: (1) CLIP pair similarity in [min_score_1, max_score_1]; (2) caption noun diff;
    (3) FastSAM on both images; (4) crops of both images at every box (image 2 resized to
    image 1), clamped, in memory; (5) BLIP ITM: a crop must match a differing object on each
    side that has one; (6) CLIP crop-pair similarity in [min_score_2, max_score_2];
    (7) IoU NMS; (8) nothing written to disk.  A pair that fails a step keeps its row with
    ``bbox == []`` and ``meta.imgdiff.reason``.  Every model call is batched over all crops of
    all samples in the batch.

    The same boxes also go to ``meta.__dj__bbox__`` in Data-Juicer's layout, what its stage-2
    caption generator reads: ``[cx, cy, w, h]`` per box, and ``[[0, 0, 0, 0]]`` when nothing
    differs.  The pair comes from ``image_keys``, or (None) ``image_path1`` / ``image_path2``,
    else ``images: [a, b]``.
    """

    accelerator = "cuda"
    extra = "models"          # torch, transformers, ultralytics, nltk: see ops/extras.py
    batched = True
    model_params = {"clip_model": "clip", "blip_model": "hf", "sam_model": "ultralytics"}

    def __init__(self, image_pair_similarity_filter_args: Optional[dict] = None,
                 image_segment_mapper_args: Optional[dict] = None,
                 image_text_matching_filter_args: Optional[dict] = None,
                 nms_iou_threshold: float = 0.5, attribute_changes: bool = True,
                 model_batch_size: int = 32, segment_batch_size: int = 4,
                 image_keys: Optional[tuple[str, str]] = None,
                 caption_keys: tuple[str, str] = ("caption1", "caption2"),
                 batch_size: int = 8, **kwargs):
        super().__init__(batch_size=batch_size, **kwargs)
        from ..imgdiff.difference_areas import DiffParams

        name = "imgdiff_difference_area_generator_mapper"
        sim = _merge(name, "image_pair_similarity_filter_args",
                     image_pair_similarity_filter_args, _SIMILARITY_DEFAULTS)
        seg = _merge(name, "image_segment_mapper_args", image_segment_mapper_args,
                     _SEGMENT_DEFAULTS)
        itm = _merge(name, "image_text_matching_filter_args", image_text_matching_filter_args,
                     _ITM_DEFAULTS)
        if len(caption_keys) != 2:
            raise ValueError(f"{name}: caption_keys must name two columns")
        self.clip_model, self.blip_model, self.sam_model = sim["hf_clip"], itm["hf_blip"], seg["model_path"]
        self.params = DiffParams(
            min_score_1=sim["min_score_1"], max_score_1=sim["max_score_1"],
            min_score_2=sim["min_score_2"], max_score_2=sim["max_score_2"],
            imgsz=seg["imgsz"], conf=seg["conf"], iou=seg["iou"], max_det=seg["max_det"],
            itm_min_score=itm["min_score"], itm_max_score=itm["max_score"],
            nms_iou_threshold=float(nms_iou_threshold), attribute_changes=bool(attribute_changes),
            model_batch_size=int(model_batch_size), segment_batch_size=int(segment_batch_size))
        self.image_keys = check_pair_keys(image_keys)
        self.caption_keys = tuple(caption_keys)

    # ------------------------------------------------------------------ models
    def use_scorers(self, clip=None, blip=None, segmenter=None, differ=None) -> None:
        """Inject scorer objects (tests, benchmarks): setup() then loads only what is missing."""
        for attr, obj in (("_m_clip", clip), ("_m_blip", blip), ("_m_sam", segmenter),
                          ("_m_differ", differ)):
            if obj is not None:
                setattr(self, attr, obj)

    def setup(self) -> None:
        """Load CLIP, BLIP ITM, FastSAM (process-wide cache, shared with the sub-ops) and the
        caption differ (WordNet + tagger), unless injected."""
        if getattr(self, "_m_clip", None) is None:
            from ..models.clip import load_clip
            self._m_clip = load_clip(self.clip_model, device=self.device)
        if getattr(self, "_m_blip", None) is None:
            from ..models.blip import load_blip_itm
            self._m_blip = load_blip_itm(self.blip_model, device=self.device)
        if getattr(self, "_m_sam", None) is None:
            from ..models.fastsam import load_fastsam
            self._m_sam = load_fastsam(self.sam_model, device=self.device)
        if getattr(self, "_m_differ", None) is None:
            from ..imgdiff.caption_diff import get_differ
            self._m_differ = get_differ()

    # ------------------------------------------------------------------ rows
    def _pair_input(self, sample: dict):
        from ..image.io import load_image
        from ..imgdiff.difference_areas import PairInput

        p1, p2 = pair_paths(sample, self.image_keys, self.image_key)
        captions = []
        for key in self.caption_keys:
            if key not in sample or sample[key] is None:
                raise OpError(f"sample has no '{key}' column")
            captions.append(sample[key])
        c1, c2 = captions
        for key, cap in zip(self.caption_keys, (c1, c2)):
            if not isinstance(cap, str):
                raise OpError(f"'{key}' must be a string, got {type(cap).__name__}")
        return PairInput(load_image(p1), load_image(p2), c1, c2)

    def process_batched(self, samples: list[dict]) -> list[dict]:
        from ..imgdiff.difference_areas import DifferenceAreaFinder

        pairs = [self._pair_input(s) for s in samples]  # a bad row raises before any model runs
        finder = DifferenceAreaFinder(self._m_clip, self._m_blip, self._m_sam, self._m_differ,
                                      self.params)
        for sample, result in zip(samples, finder.run(pairs)):
            meta = dict(sample.get(Fields.meta) or {})
            meta[MetaKeys.bbox] = result.bbox
            meta[MetaKeys.bbox_tag] = xyxy_to_dj(result.bbox) or [[0.0, 0.0, 0.0, 0.0]]
            meta[IMGDIFF_META] = result.meta()
            sample[Fields.meta] = meta
        return samples
