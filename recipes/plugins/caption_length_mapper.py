"""The custom op of the README and docs/ops-contract.md: one small file, loaded through custom_operator_paths."""
from ops import OPERATORS, Fields, Mapper


@OPERATORS.register_module("caption_length_mapper")
class CaptionLengthMapper(Mapper):
    """Writes the caption's word count to meta.caption_words."""

    def __init__(self, min_words: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.min_words = min_words

    def process_single(self, sample):
        words = len((sample.get(self.text_key) or "").split())
        sample[Fields.meta]["caption_words"] = max(words, self.min_words)
        return sample
