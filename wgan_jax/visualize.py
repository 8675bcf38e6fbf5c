"""Pictures of a run: image grids and the toy critic's value surface with samples."""
from __future__ import annotations

import io

import numpy as np
from etils import epath


def image_grid(images: np.ndarray, value_range: tuple[float, float],
               cols: int | None = None) -> np.ndarray:
    """[N, H, W, C] images in `value_range` -> one uint8 [rows*H, cols*W, 3] grid, filled row
    by row (`cols` default: a square grid)."""
    images = np.asarray(images, np.float32)
    lo, hi = value_range
    images = np.clip((images - lo) / (hi - lo), 0.0, 1.0)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    n, h, w, c = images.shape
    cols = int(np.ceil(np.sqrt(n))) if cols is None else cols
    rows = int(np.ceil(n / cols))
    grid = np.ones((rows * h, cols * w, c), np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = images[i]
    return (grid * 255).round().astype(np.uint8)


def save_png(array: np.ndarray, path: str) -> None:
    """Write a uint8 [H, W, 3] array as PNG (local or gs:// path; folders created as needed)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, format="png")
    out = epath.Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())


def toy_figure(real: np.ndarray, fake: np.ndarray, critic_values: np.ndarray,
               grid_range: float, title: str = "") -> np.ndarray:
    """The critic's value over a square grid as contours, real (orange) and generated (green)
    points on top, as gan_toy.py draws it. Returns the figure as a uint8 [H, W, 3] array."""
    from wgan_jax.plotting import plt  # matplotlib only where a figure is drawn

    n = critic_values.shape[0]
    xs = np.linspace(-grid_range, grid_range, n)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.contour(xs, xs, critic_values.T, levels=20)
    ax.scatter(real[:, 0], real[:, 1], c="orange", marker="+", s=10, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], c="green", marker="+", s=10, label="generated")
    ax.set_xlim(-grid_range, grid_range)
    ax.set_ylim(-grid_range, grid_range)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb


def toy_grid(grid_range: float = 3.0, n: int = 128) -> np.ndarray:
    """The [n*n, 2] points where gan_toy.py evaluates the critic (x-major order)."""
    xs = np.linspace(-grid_range, grid_range, n, dtype=np.float32)
    return np.stack(np.meshgrid(xs, xs, indexing="ij"), axis=-1).reshape(-1, 2)
