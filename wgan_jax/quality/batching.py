"""Running a jitted feature network over a numpy array in fixed-size batches."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def batched(fn: Callable, images: np.ndarray, batch_size: int,
            out_widths: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """`fn(batch) -> arrays (batch, width)` over `images` in batches of `batch_size`; the last
    batch is zero-padded so that one program is compiled. Returns float32 numpy arrays, one per
    output, (len(images), width) each (empty arrays of `out_widths` for no images)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(images)
    batch_size = min(batch_size, max(n, 1))
    parts: list[list[np.ndarray]] = [[] for _ in out_widths]
    for start in range(0, n, batch_size):
        batch = np.asarray(images[start:start + batch_size], np.float32)
        size = batch.shape[0]
        if size < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - size,) + batch.shape[1:],
                                                    np.float32)])
        for part, out in zip(parts, fn(batch), strict=True):
            part.append(np.asarray(out, np.float32)[:size])
    if n == 0:
        return tuple(np.zeros((0, w), np.float32) for w in out_widths)
    return tuple(np.concatenate(p) for p in parts)
