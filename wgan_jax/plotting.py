"""Matplotlib for figures written to files: the one place that chooses the backend.

Every module that draws imports `plt` from here, so the non-interactive Agg backend is set
before pyplot is first imported and no machine needs a display.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

__all__ = ["plt", "save_figure", "save_palette_figure"]


def save_figure(fig, path: str, dpi: int = 80) -> None:
    """Write `fig` to `path` (format from the suffix) and close it."""
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def save_palette_figure(fig, path: str, dpi: int, colors: int = 128) -> None:
    """Write `fig` as a palette PNG and close it: contour plots compress several times smaller."""
    from PIL import Image  # matplotlib depends on Pillow

    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    plt.close(fig)
    buf.seek(0)
    image = Image.open(buf).convert("RGB")
    image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
