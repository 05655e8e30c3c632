"""Full-reference image quality metrics: PSNR, SSIM, Butteraugli, SSIMULACRA2, bits per pixel.

``measure(reference, distorted, encoded_bytes, metrics=("psnr", "ssim", ...))`` computes the
requested metrics in one call and times each.  Importing this package is cheap: every metric
module loads on first use.
"""
from __future__ import annotations

import importlib
import time
from typing import Iterable, Optional

# metric name -> (module, keys it writes)
METRICS = {
    "psnr": ("psnr_ssim", ("psnr",)),
    "psnr_y": ("psnr_ssim", ("psnr_y",)),
    "ssim": ("psnr_ssim", ("ssim",)),
    "ssim_y": ("psnr_ssim", ("ssim_y",)),
    "butteraugli": ("butteraugli", ("butteraugli_max", "butteraugli_p3")),
    "ssimulacra2": ("ssimulacra2", ("ssimulacra2",)),
}
DEFAULT_METRICS = ("psnr", "ssim", "ssimulacra2", "butteraugli")
# Direction of "better" for every key measure() writes (for reports and figures).
HIGHER_IS_BETTER = {"psnr": True, "psnr_y": True, "ssim": True, "ssim_y": True,
                    "butteraugli_max": False, "butteraugli_p3": False, "ssimulacra2": True}


class MetricUnavailable(RuntimeError):
    """A requested metric whose implementation or native library is missing."""


def _module(name: str):
    modname = f"{__name__}.{name}"
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name == modname:
            raise MetricUnavailable(f"metric module {modname} is not installed") from None
        raise


def check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    """Validate metric names and that each can run here; returns them as a tuple."""
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metric listed twice in {list(metrics)}")
    for m in metrics:
        mod = _module(METRICS[m][0])
        if m == "butteraugli":
            mod._load()          # raises ButteraugliUnavailable naming the apt package
    return metrics


def available_metrics() -> dict:
    """{metric: None if it runs here, else the reason it does not}."""
    out = {}
    for m in METRICS:
        try:
            check_metrics([m])
            out[m] = None
        except Exception as exc:
            out[m] = str(exc)
    return out


def metric_versions(metrics: Iterable[str]) -> dict:
    """Implementation notes / native library versions behind the given metrics."""
    out = {}
    for m in metrics:
        if m == "butteraugli":
            out["butteraugli"] = "libjxl " + _module("butteraugli").libjxl_version() + \
                " C API (intensity_target 80, hf_asymmetry 1.0, p 3)"
        elif m.startswith("ssim") and m != "ssimulacra2":
            out[m] = "Wang 2004, Gaussian sigma 1.5 11x11, K1 .01 K2 .03, range 255, " + \
                ("BT.601 luma" if m.endswith("_y") else "mean of R,G,B")
        elif m.startswith("psnr"):
            out[m] = "range 255, " + ("BT.601 luma" if m.endswith("_y") else "MSE over R,G,B")
        elif m == "ssimulacra2":
            mod = _module("ssimulacra2")
            out[m] = getattr(mod, "VERSION", "imgjuicer ssimulacra2 (SSIMULACRA 2.1)")
    return out


def measure(reference, distorted, encoded_bytes: Optional[bytes | int] = None,
            metrics: Iterable[str] = DEFAULT_METRICS, distmap: bool = False,
            threads: int = 1, linear: Optional[tuple] = None) -> dict:
    """Compute ``metrics`` for one pair.  Returns ``{key: value}`` (see ``METRICS`` for the
    keys each metric writes), ``bytes`` and ``bpp`` when ``encoded_bytes`` (the bytes or their
    count) is given, ``seconds: {metric: wall time}``, and ``butteraugli_distmap`` (float32
    HxW) when ``distmap`` is set.  PSNR is +inf for identical images.  ``linear``: float32
    HxWx3 linear-sRGB (reference, distorted) of colour-managed images (ops/image/colour.py
    ``linear_srgb``); SSIMULACRA2 and Butteraugli are then computed on them (float, colours
    outside sRGB kept, as the reference tools do), PSNR and SSIM on the 8-bit sRGB
    ``reference`` / ``distorted`` (docs/codec-studies.md, Colour management)."""
    from ._inputs import check_pair
    metrics = check_metrics(metrics)
    ref, dis = check_pair(reference, distorted, "measure")
    out: dict = {}
    seconds: dict = {}
    if encoded_bytes is not None:
        n = encoded_bytes if isinstance(encoded_bytes, int) else len(encoded_bytes)
        h, w = ref.shape[:2]
        out["bytes"] = n
        out["bpp"] = 8.0 * n / (w * h)
    for m in metrics:
        t0 = time.perf_counter()
        if m in ("psnr", "psnr_y", "ssim", "ssim_y"):
            mod = _module("psnr_ssim")
            fn = mod.psnr if m.startswith("psnr") else mod.ssim
            out[m] = fn(ref, dis, data_range=255.0, channels="y" if m.endswith("_y") else "rgb")
        elif m == "butteraugli":
            pair = linear if linear is not None else (ref, dis)
            r = _module("butteraugli").butteraugli(*pair, p=3.0, distmap=distmap,
                                                  threads=threads, linear=linear is not None)
            out["butteraugli_max"], out["butteraugli_p3"] = r.max_norm, r.pnorm
            if distmap:
                out["butteraugli_distmap"] = r.distmap
        elif m == "ssimulacra2" and linear is not None:
            import numpy as np
            mod = _module("ssimulacra2")
            stack = np.stack([np.ascontiguousarray(a.transpose(2, 0, 1), np.float32)
                              for a in linear])
            out[m] = 100.0 if np.array_equal(stack[0], stack[1]) else \
                float(mod.score_linear(stack))
        elif m == "ssimulacra2":
            out[m] = float(_module("ssimulacra2").ssimulacra2(ref, dis))
        seconds[m] = time.perf_counter() - t0
    out["seconds"] = seconds
    return out
