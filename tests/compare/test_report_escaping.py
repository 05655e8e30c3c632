"""The comparison report's HTML stays inert whatever the file names and labels hold: a name
such as ``<script>...`` or ``x" onerror="...`` is text, never markup."""
from html.parser import HTMLParser

from ops.compare.html_report import _group_html

HOSTILE = '<script>alert(1)</script>" onerror="alert(2)'


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def test_hostile_names_are_escaped_in_the_report():
    g = {"level": HOSTILE, "metric": "ssimulacra2", "values": [HOSTILE],
         "image": f"/photos/{HOSTILE}.png", "selection_output": HOSTILE, "window": HOSTILE,
         "window_from": HOSTILE, "vmax": 3.0,
         "figures": {"comparison": {HOSTILE: f"{HOSTILE}.webp"},
                     "distortion_map_comparison": {HOSTILE: f"d_{HOSTILE}.webp"},
                     "anisotropic": f"a_{HOSTILE}.webp", "original_annotated": f"o_{HOSTILE}.webp"},
         "measured": [{"tile": [HOSTILE], "target": HOSTILE}]}
    page = "".join(_group_html(g))
    parsed = _Collect()
    parsed.feed(page)
    assert "script" not in parsed.tags
    assert not [name for name, _ in parsed.attrs if name.startswith("on")]
    # the names are still there, as text and as whole attribute values
    assert any(HOSTILE in t for t in parsed.text)
    assert ("href", f"{HOSTILE}.webp") in parsed.attrs
