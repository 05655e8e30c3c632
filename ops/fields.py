"""Column names shared by every op and executor."""


class Fields:
    """Reserved columns. ``stats`` and ``meta`` hold dicts; the rest are bookkeeping."""

    stats = "__dj__stats__"
    meta = "__dj__meta__"
    id = "__dj__id__"            # stable sample id assigned at load (str)
    # Written by the op wrapper, consumed and removed by the executor after every op.
    status = "__dj__status__"    # "kept" | "filtered" | "error"
    reason = "__dj__reason__"    # why a sample was filtered / what error it raised
    # Written by a fused pass: the process index of the op that decided the row's status, and
    # on the first row of each batch, the pass's per-op timing (and trace snapshots), as JSON.
    op = "__dj__op__"
    batch_info = "__dj__batch__"
    # Written by a local pass's workers when asked: the report line of a dropped row, the
    # export line of a kept one (JSON lines as the report / export files hold them); the
    # executor writes them out and removes the column.
    line = "__dj__line__"
    # Original image paths of a sample whose images a mapper replaced (blur, face blur).
    source_file = "__dj__source_file__"


class Status:
    kept = "kept"
    filtered = "filtered"
    error = "error"


class StatsKeys:
    """Stats written by the built-in filters (under ``Fields.stats``)."""

    image_width = "image_width"
    image_height = "image_height"
    image_sizes = "image_sizes"
    aspect_ratios = "aspect_ratios"
    image_pair_similarity = "image_pair_similarity"
    image_text_matching_score = "image_text_matching_score"
    generation_loss = "generation_loss"
    face_counts = "face_counts"
    face_ratios = "face_ratios"
    image_text_similarity = "image_text_similarity"


class MetaKeys:
    """Meta written by the built-in mappers (under ``Fields.meta``)."""

    image_metadata = "image_metadata"
    near_duplicate_group = "near_duplicate_group"
    phash = "phash"
    bbox = "bbox"
    segments = "segments"
    dedup = "dedup"
    imagehash = "imagehash"          # image_deduplicator: the sample's image hash(es)
    # Data-Juicer's layout of object boxes (its MetaKeys.bbox_tag / class_label_tag): per box
    # [cx, cy, w, h] in pixels.  image_detection_yolo_mapper and image_segment_mapper: one list
    # per image; ImgDiff: one list for image 1 ([[0, 0, 0, 0]] when nothing differs).
    bbox_tag = "__dj__bbox__"
    class_label_tag = "__dj__class_label__"
    detection_scores = "detection_scores"
    detection_names = "detection_names"
    texthash = "texthash"            # image_deduplicator with consider_text
    would_drop = "would_drop"    # analyzer runs: [{op, id, reason}] of each op that would drop


BOOKKEEPING = (Fields.status, Fields.reason, Fields.op, Fields.batch_info)
