"""Butteraugli distances (max-norm, p-norm) and the per-pixel distortion map, via libjxl.

A ctypes binding to the libjxl C API (``jxl/butteraugli.h``: JxlButteraugliCompute,
JxlButteraugliResultGetMaxDistance / GetDistance / GetDistmap) as shipped by Debian's
``libjxl0.7``.  Defaults follow libjxl's ``butteraugli_main`` tool: sRGB input, intensity
target 80 nits, hf_asymmetry 1.0 (``butteraugli_main`` of libjxl 0.7 used 0.8; pass
``hf_asymmetry=0.8`` to reproduce it), p = 3.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ._inputs import MetricInputError, check_pair

APT_PACKAGE = "libjxl0.7"
LIB_CANDIDATES = ("libjxl.so.0.7", "libjxl.so")
THREADS_CANDIDATES = ("libjxl_threads.so.0.7", "libjxl_threads.so")
ENV_LIB = "IMGJUICER_LIBJXL"          # explicit path to a libjxl shared library

JXL_TYPE_FLOAT, JXL_TYPE_UINT8, JXL_NATIVE_ENDIAN = 0, 2, 0
MIN_SIDE = 8


class ButteraugliUnavailable(RuntimeError):
    """libjxl (with its butteraugli API) cannot be loaded."""


class _PixelFormat(ctypes.Structure):
    _fields_ = [("num_channels", ctypes.c_uint32), ("data_type", ctypes.c_int),
                ("endianness", ctypes.c_int), ("align", ctypes.c_size_t)]


@dataclass
class ButteraugliResult:
    """Max-norm distance, p-norm distance and (optionally) the HxW float32 distortion map."""

    max_norm: float
    pnorm: float
    p: float
    distmap: Optional[np.ndarray] = None


_lock = threading.Lock()
_lib = None
_threads_lib = None


def _open(candidates, env: Optional[str] = None):
    names = ([os.environ[env]] if env and os.environ.get(env) else []) + list(candidates)
    errors = []
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
    found = ctypes.util.find_library(candidates[-1].split(".so")[0][3:])
    if found:
        try:
            return ctypes.CDLL(found)
        except OSError as exc:
            errors.append(f"{found}: {exc}")
    raise ButteraugliUnavailable(
        "Butteraugli needs libjxl's shared library (tried " + "; ".join(errors) + "). "
        f"Install the Debian package {APT_PACKAGE} (apt-get install -y {APT_PACKAGE}) or set "
        f"{ENV_LIB} to a libjxl .so that exports JxlButteraugliCompute.")


def _load():
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        lib = _open(LIB_CANDIDATES, ENV_LIB)
        if not hasattr(lib, "JxlButteraugliCompute"):
            raise ButteraugliUnavailable(
                f"{lib._name} has no JxlButteraugliCompute (libjxl >= 0.9 dropped the "
                f"butteraugli C API); install the Debian package {APT_PACKAGE}")
        vp, u32, f32 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_float
        pf = ctypes.POINTER(_PixelFormat)
        sig = {
            "JxlButteraugliApiCreate": (vp, [vp]),
            "JxlButteraugliApiDestroy": (None, [vp]),
            "JxlButteraugliApiSetHFAsymmetry": (None, [vp, f32]),
            "JxlButteraugliApiSetIntensityTarget": (None, [vp, f32]),
            "JxlButteraugliApiSetParallelRunner": (None, [vp, vp, vp]),
            "JxlButteraugliCompute": (vp, [vp, u32, u32, pf, vp, ctypes.c_size_t, pf, vp,
                                           ctypes.c_size_t]),
            "JxlButteraugliResultGetMaxDistance": (f32, [vp]),
            "JxlButteraugliResultGetDistance": (f32, [vp, f32]),
            "JxlButteraugliResultGetDistmap": (None, [vp, ctypes.POINTER(ctypes.POINTER(f32)),
                                                      ctypes.POINTER(u32)]),
            "JxlButteraugliResultDestroy": (None, [vp]),
            "JxlDecoderVersion": (u32, []),
        }
        for name, (res, args) in sig.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        _lib = lib
        return lib


def _threads():
    global _threads_lib
    with _lock:
        if _threads_lib is None:
            lib = _open(THREADS_CANDIDATES)
            lib.JxlThreadParallelRunnerCreate.restype = ctypes.c_void_p
            lib.JxlThreadParallelRunnerCreate.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            lib.JxlThreadParallelRunnerDestroy.argtypes = [ctypes.c_void_p]
            _threads_lib = lib
        return _threads_lib


def libjxl_version() -> str:
    """Version of the libjxl the binding loaded, e.g. '0.7.0'."""
    v = _load().JxlDecoderVersion()
    return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"


def is_available() -> bool:
    try:
        _load()
        return True
    except ButteraugliUnavailable:
        return False


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32) / np.float32(255.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _buffer(arr: np.ndarray, linear: bool = False):
    """(contiguous array, pixel format) in a layout libjxl reads: uint8 sRGB or linear float
    (libjxl reads float pixels as linear-light sRGB, unclipped).  Grey is expanded to RGB:
    libjxl 0.7 aborts the process on 1-channel input."""
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    channels = 3
    if linear:
        buf, dtype = np.ascontiguousarray(arr, np.float32), JXL_TYPE_FLOAT
    elif arr.dtype == np.uint8:
        buf, dtype = np.ascontiguousarray(arr), JXL_TYPE_UINT8
    else:
        buf, dtype = np.ascontiguousarray(_srgb_to_linear(np.clip(arr, 0, 255))), JXL_TYPE_FLOAT
    return buf, _PixelFormat(channels, dtype, JXL_NATIVE_ENDIAN, 0)


def butteraugli(reference, distorted, p: float = 3.0, distmap: bool = True,
                intensity_target: float = 80.0, hf_asymmetry: float = 1.0,
                threads: int = 1, linear: bool = False) -> ButteraugliResult:
    """Butteraugli of ``distorted`` against ``reference`` (uint8 sRGB, or float sRGB on a
    0..255 scale; HxWx3 or HxW).  ``distmap`` also returns the per-pixel map (float32 HxW).
    ``linear``: the inputs are float linear-light sRGB (1.0 = white; values outside 0..1
    from wide-gamut sources kept), as ``ops.image.colour.linear_srgb`` makes them from
    ICC-tagged images -- what libjxl's ``butteraugli_main`` measures after its own colour
    conversion."""
    if linear:
        ref, dis = (np.asarray(a, np.float32) for a in (reference, distorted))
        if ref.shape != dis.shape or ref.ndim != 3 or ref.shape[2] != 3:
            raise MetricInputError(f"butteraugli: linear inputs must be two HxWx3 arrays of "
                                   f"one shape, got {ref.shape} and {dis.shape}")
    else:
        ref, dis = check_pair(reference, distorted, "butteraugli")
    if not (p > 0 and np.isfinite(p)):
        raise ValueError(f"butteraugli: p must be a positive number, got {p!r}")
    if intensity_target <= 0:
        raise ValueError(f"butteraugli: intensity_target must be > 0, got {intensity_target!r}")
    h, w = ref.shape[:2]
    if w < MIN_SIDE or h < MIN_SIDE:
        # libjxl silently reports 0 for such images; refuse instead of lying
        raise MetricInputError(f"butteraugli: images must be at least {MIN_SIDE}x{MIN_SIDE} "
                               f"pixels, got {w}x{h}")
    lib = _load()
    rbuf, rfmt = _buffer(ref, linear)
    dbuf, dfmt = _buffer(dis, linear)
    api = lib.JxlButteraugliApiCreate(None)
    if not api:
        raise MemoryError("JxlButteraugliApiCreate failed")
    runner = None
    result = None
    try:
        lib.JxlButteraugliApiSetHFAsymmetry(api, hf_asymmetry)
        lib.JxlButteraugliApiSetIntensityTarget(api, intensity_target)
        if threads and threads > 1:
            tl = _threads()
            runner = tl.JxlThreadParallelRunnerCreate(None, int(threads))
            fn = ctypes.cast(tl.JxlThreadParallelRunner, ctypes.c_void_p)
            lib.JxlButteraugliApiSetParallelRunner(api, fn, runner)
        result = lib.JxlButteraugliCompute(api, w, h, ctypes.byref(rfmt),
                                           rbuf.ctypes.data, rbuf.nbytes, ctypes.byref(dfmt),
                                           dbuf.ctypes.data, dbuf.nbytes)
        if not result:
            raise RuntimeError(f"JxlButteraugliCompute failed on a {w}x{h} pair")
        out = ButteraugliResult(float(lib.JxlButteraugliResultGetMaxDistance(result)),
                                float(lib.JxlButteraugliResultGetDistance(result, p)), float(p))
        if distmap:
            ptr = ctypes.POINTER(ctypes.c_float)()
            stride = ctypes.c_uint32()
            lib.JxlButteraugliResultGetDistmap(result, ctypes.byref(ptr), ctypes.byref(stride))
            rows = np.ctypeslib.as_array(ptr, shape=(h, stride.value))
            out.distmap = np.array(rows[:, :w], dtype=np.float32)
        return out
    finally:
        if result:
            lib.JxlButteraugliResultDestroy(result)
        lib.JxlButteraugliApiDestroy(api)
        if runner:
            _threads().JxlThreadParallelRunnerDestroy(runner)
