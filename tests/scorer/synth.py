"""Photo-like synthetic images (never part of the scorer's training data)."""
import numpy as np


def photo_like(h: int, w: int, seed: int) -> np.ndarray:
    """1/f colour noise + soft blobs + a few sharp-edged shapes, uint8 RGB."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(h, w)) ** 1.1
    img = np.zeros((h, w, 3))
    for c in range(3):
        spec = amp * np.exp(2j * np.pi * rng.random(amp.shape))
        ch = np.fft.irfft2(spec, s=(h, w))
        img[..., c] = (ch - ch.mean()) / (ch.std() + 1e-9)
    img = img @ rng.normal(0.5, 0.3, (3, 3))              # correlated colour channels
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.05, 0.3) * min(h, w)
        img += rng.normal(0, 1.0, 3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[
            ..., None]
    for _ in range(4):
        y0, x0 = rng.integers(0, max(1, h - 4)), rng.integers(0, max(1, w - 4))
        dy, dx = rng.integers(2, max(3, h // 3)), rng.integers(2, max(3, w // 3))
        img[y0:y0 + dy, x0:x0 + dx] += rng.normal(0, 1.0, 3)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 235 + 10).astype(np.uint8)
