"""Capital letters rendered in matplotlib's bundled DejaVu fonts as 28x28 MNIST-like images.

Taught in chapter "Why Bayesian neural networks".
"""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np


# --------------------------------------------------------------------------
# Out-of-distribution images made by our own code.
# --------------------------------------------------------------------------

LETTER_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
)


def _font_path(filename: str) -> str:
    import matplotlib

    path = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf" / filename
    if not path.exists():
        raise FileNotFoundError(f"font {filename} is not among matplotlib's bundled fonts ({path.parent})")
    return str(path)


def _mnist_style(glyph: np.ndarray) -> np.ndarray:
    """Fit a glyph (float, ink = high) into 20x20 keeping its aspect ratio, then
    centre its centre of mass in a 28x28 frame, as MNIST digits were made."""
    from PIL import Image

    rows, cols = np.nonzero(glyph > 0.05)
    glyph = glyph[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    height, width = glyph.shape
    scale = 20.0 / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    small = Image.fromarray((glyph * 255).astype(np.uint8)).resize((new_w, new_h), Image.LANCZOS)
    small = np.clip(np.asarray(small, dtype=np.float32) / 255.0, 0.0, 1.0)
    canvas = np.zeros((28, 28), np.float32)
    top, left = (28 - new_h) // 2, (28 - new_w) // 2
    canvas[top: top + new_h, left: left + new_w] = small
    total = canvas.sum()
    yy, xx = np.mgrid[0:28, 0:28]
    shift_y = int(round(13.5 - (yy * canvas).sum() / total))
    shift_x = int(round(13.5 - (xx * canvas).sum() / total))
    # Shift without wrapping ink around the border.
    shift_y = int(np.clip(shift_y, -top, 28 - new_h - top))
    shift_x = int(np.clip(shift_x, -left, 28 - new_w - left))
    return np.roll(np.roll(canvas, shift_y, axis=0), shift_x, axis=1)


def render_letters(letters: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", fonts: Sequence[str] = LETTER_FONTS,
                   rotations: Sequence[float] = (0.0,), stroke_widths: Sequence[int] = (0,)) -> tuple[np.ndarray, list[str]]:
    """Render letters as 28x28 MNIST-like images (white ink on black, float32 in [0, 1]).

    One image per (letter, font, rotation in degrees, extra stroke width in
    pixels at the 112-pixel rendering). Deterministic: no randomness at all.
    Returns ``(images, labels)`` with images of shape ``(n, 28, 28)`` and the
    letter of each image.

    Taught in chapter "Why Bayesian neural networks".
    """
    from PIL import Image, ImageDraw, ImageFont

    if not letters:
        raise ValueError("letters is empty; pass e.g. 'ABC'")
    images, labels = [], []
    for font_file in fonts:
        font = ImageFont.truetype(_font_path(font_file), 96)
        for stroke in stroke_widths:
            if stroke < 0:
                raise ValueError(f"stroke width {stroke} must be >= 0")
            for angle in rotations:
                for letter in letters:
                    canvas = Image.new("L", (160, 160), 0)
                    ImageDraw.Draw(canvas).text((80, 80), letter, fill=255, font=font, anchor="mm",
                                                stroke_width=stroke, stroke_fill=255)
                    if angle:
                        canvas = canvas.rotate(angle, resample=Image.BICUBIC)
                    glyph = np.asarray(canvas, dtype=np.float32) / 255.0
                    if glyph.max() <= 0.05:
                        raise ValueError(f"letter {letter!r} renders empty in {font_file}")
                    images.append(_mnist_style(glyph))
                    labels.append(letter)
    return np.stack(images).astype(np.float32), labels


def letters_dataset(size: str = "standard") -> tuple[np.ndarray, list[str]]:
    """The book's letter set: A-Z in 12 DejaVu styles; ``"standard"`` adds
    rotations of -10/+10 degrees and a thicker stroke (26 x 12 x 3 x 2 = 1,872
    images), ``"small"`` is upright only (312 images).

    Taught in chapter "Why Bayesian neural networks".
    """
    if size == "small":
        return render_letters()
    if size == "standard":
        return render_letters(rotations=(0.0, -10.0, 10.0), stroke_widths=(0, 4))
    raise ValueError(f"size={size!r}; use 'small' or 'standard'")
