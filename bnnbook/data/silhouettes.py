"""Binary silhouettes of standing children (labelled by height) and of spiders, and hairs to
hang on either.

Taught in chapter "Flipout".
"""

from __future__ import annotations

import numpy as np

from bnnbook._checks import check_count


# --------------------------------------------------------------------------
# Silhouettes for the Bayesian CNN regression of chapter "Flipout".
# --------------------------------------------------------------------------

SILHOUETTE_SIZE = 126
SILHOUETTE_KINDS = ("child", "spider")


def _child_silhouette(rng: np.random.Generator, scale_range: tuple[float, float]):
    """One child standing upright; returns the drawing and its height from the top of the head to the soles."""
    from PIL import Image, ImageDraw

    size = SILHOUETTE_SIZE
    base_height = rng.uniform(30.0, 60.0)  # a child's height before the random rescaling
    scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    height = int(np.clip(round(base_height * scale), 12, size - 4))
    build = rng.uniform(0.85, 1.2)  # slimmer or stockier
    half_span = int(np.ceil(0.5 * height * build)) + 2  # conservative horizontal reach of the arms
    centre_x = int(rng.integers(half_span, size - half_span)) if size - 2 * half_span > 0 else size // 2
    top = int(rng.integers(0, size - height + 1))
    bottom = top + height - 1  # the sole row: height = bottom - top + 1 pixels

    def px(value):
        return int(round(value))

    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    head_height = max(3, px(rng.uniform(0.2, 0.25) * height))
    head_half_width = max(1, px(0.42 * head_height * rng.uniform(0.9, 1.1)))
    draw.ellipse([centre_x - head_half_width, top, centre_x + head_half_width, top + head_height - 1], fill=255)
    shoulder_y = top + head_height + max(1, px(0.02 * height))
    hip_y = top + px(0.58 * height)
    torso_half_width = max(1, px(0.13 * height * build))
    draw.ellipse([centre_x - torso_half_width, top + head_height - 1, centre_x + torso_half_width, hip_y + px(0.04 * height)],
                 fill=255)
    limb_width = max(2, px(0.075 * height * build))
    foot_height = max(2, (limb_width + 1) // 2 + 1)  # a leg's flat end never reaches below the sole
    ankle_y = bottom - foot_height
    foot_length = max(2, px(0.1 * height))
    for side in (-1, 1):
        hip_x = centre_x + side * max(1, px(0.06 * height * build))
        ankle_x = hip_x + side * px(rng.uniform(0.0, 0.12) * height)
        draw.line([hip_x, hip_y, ankle_x, ankle_y], fill=255, width=limb_width)
        toe_x = ankle_x + side * foot_length
        draw.rectangle([min(ankle_x, toe_x), ankle_y, max(ankle_x, toe_x), bottom], fill=255)
        # Arms from hanging down (-80 degrees) to raised (+30): the hand stays below the top of the head.
        angle = np.deg2rad(rng.uniform(-80.0, 30.0))
        arm_length = 0.3 * height
        shoulder_x = centre_x + side * torso_half_width
        hand = (shoulder_x + side * arm_length * np.cos(angle), shoulder_y - arm_length * np.sin(angle))
        draw.line([shoulder_x, shoulder_y, px(hand[0]), px(hand[1])], fill=255, width=max(2, limb_width - 1))
    return np.asarray(canvas) > 127, float(height)


def _spider_silhouette(rng: np.random.Generator, scale_range: tuple[float, float]):
    """A spider (two body parts, eight bent legs) with an overall size drawn like a child's height."""
    from PIL import Image, ImageDraw

    size = SILHOUETTE_SIZE
    span = float(np.clip(rng.uniform(30.0, 60.0) * np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))),
                         16, size - 6))
    centre = rng.uniform(span / 2 + 2, size - span / 2 - 3, size=2)
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    abdomen = (0.16 * span, 0.2 * span)
    head = (0.1 * span, 0.1 * span)
    cx, cy = centre
    draw.ellipse([cx - abdomen[0], cy, cx + abdomen[0], cy + 2 * abdomen[1]], fill=255)
    draw.ellipse([cx - head[0], cy - 1.6 * head[1], cx + head[0], cy + 0.4 * head[1]], fill=255)
    leg_width = max(2, int(round(0.035 * span)))
    for side in (-1, 1):
        for i, base_angle in enumerate((-40.0, -12.0, 12.0, 40.0)):  # four legs a side, fanned out
            angle = np.deg2rad(base_angle + rng.uniform(-8, 8))
            root = (cx + side * 0.05 * span, cy + (i - 1.5) * 0.04 * span)
            knee_length, foot_length = 0.25 * span, 0.3 * span
            knee = (root[0] + side * knee_length * np.cos(angle), root[1] + knee_length * np.sin(angle) - 0.12 * span)
            foot_angle = angle + np.deg2rad(rng.uniform(25, 45)) * (1 if base_angle >= 0 else 0.6)
            foot = (knee[0] + side * foot_length * np.cos(foot_angle) * 0.6,
                    knee[1] + foot_length * abs(np.sin(foot_angle)) + 0.1 * span)
            points = [tuple(np.clip(p, 0, size - 1)) for p in (root, knee, foot)]
            draw.line(points, fill=255, width=leg_width, joint="curve")
    mask = np.asarray(canvas) > 127
    rows = np.flatnonzero(mask.any(axis=1))
    return mask, float(rows[-1] - rows[0] + 1)


def silhouettes(n: int, kind: str = "child", seed: int = 0,
                scale_range: tuple[float, float] = (0.5, 2.0)) -> tuple[np.ndarray, np.ndarray]:
    """Binary silhouettes on a 126 x 126 grid: standing children, or spiders as unseen inputs.

    ``kind="child"``: a head, a torso, two arms and two legs with feet, drawn
    upright with random build, arm angles and stance; a base height between
    30 and 60 pixels is rescaled by a factor drawn log-uniformly from
    ``scale_range`` (default 1/2 to 2x) and the figure placed at random. The
    label is the standing height in pixels, from the top row of the head to
    the row of the soles: exactly the number of image rows the figure
    covers. ``kind="spider"``: a body of two parts and eight bent legs, of a
    size drawn like a child's height; its "height" is the number of rows it
    covers (a spider has no label to learn; it is an input unlike any
    training image). Returns ``(images, heights)``: float32 arrays of shape
    ``(n, 126, 126)`` (1 = figure, 0 = background) and ``(n,)``.
    Deterministic for a ``seed`` (NumPy ``default_rng``); drawn with PIL.

    Taught in chapter "Flipout".
    """
    check_count("n", n, hint="the number of silhouettes, e.g. n=836")
    if kind not in SILHOUETTE_KINDS:
        raise ValueError(f"kind={kind!r} must be 'child' or 'spider'")
    low, high = (float(v) for v in scale_range)
    if not 0.0 < low <= high <= 2.0:
        raise ValueError(f"scale_range={scale_range!r} must be (low, high) with 0 < low <= high <= 2 (larger "
                         f"figures do not fit 126 x 126), e.g. (0.5, 2.0)")
    rng = np.random.default_rng(seed)
    draw = _child_silhouette if kind == "child" else _spider_silhouette
    images = np.zeros((n, SILHOUETTE_SIZE, SILHOUETTE_SIZE), np.float32)
    heights = np.zeros(n, np.float32)
    for i in range(n):
        mask, heights[i] = draw(rng, (low, high))
        images[i] = mask
    return images, heights


def add_hairs(images, seed: int = 0, density: float = 0.35,
              length: tuple[float, float] = (2.0, 6.0)) -> np.ndarray:
    """Binary silhouettes with bristles: short one-pixel lines that stick out of the figure's edge.

    A share ``density`` of the edge pixels (figure pixels with a background
    neighbour), picked at random, each grows one hair of a length drawn
    uniformly from ``length`` (pixels), pointing outwards (along the normal
    of the smoothed outline, turned by up to about 30 degrees either way).
    The figure itself is kept: hairs only add pixels, and every added pixel
    lies within ``length[1] + 1`` pixels of the original figure.
    ``images``: ``(n, H, W)`` or ``(H, W)``, 1 = figure; returns float32 of
    the same shape. Deterministic for a ``seed``.

    The source's spider is a *hairy* one: a texture no child has. The
    chapter hangs hairs on spiders and on children to test whether a new
    local texture, rather than a new shape, is what raises a mean-field
    network's uncertainty.

    Taught in chapter "Flipout".
    """
    from PIL import Image, ImageDraw
    from scipy import ndimage

    masks = np.asarray(images) > 0.5
    single = masks.ndim == 2
    if single:
        masks = masks[None]
    if masks.ndim != 3 or masks.size == 0:
        raise ValueError(f"images has shape {np.shape(images)}; pass binary silhouettes of shape (n, H, W) "
                         f"or (H, W), e.g. from silhouettes()")
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density={density!r} must be in (0, 1]: the share of edge pixels that grow a hair")
    shortest, longest = (float(v) for v in length)
    if not 0.0 < shortest <= longest:
        raise ValueError(f"length={length!r} must be (shortest, longest) in pixels with 0 < shortest <= "
                         f"longest, e.g. (2.0, 6.0)")
    rng = np.random.default_rng(seed)
    hairy = np.zeros(masks.shape, np.float32)
    for i, mask in enumerate(masks):
        smooth = ndimage.gaussian_filter(mask.astype(np.float32), 1.5)
        slope_y, slope_x = np.gradient(smooth)
        edge_y, edge_x = np.nonzero(mask & ~ndimage.binary_erosion(mask))
        chosen = rng.random(len(edge_y)) < density
        turns = rng.uniform(-0.5, 0.5, size=len(edge_y))
        lengths = rng.uniform(shortest, longest, size=len(edge_y))
        canvas = Image.fromarray(mask.astype(np.uint8) * 255)
        draw = ImageDraw.Draw(canvas)
        for y, x, turn, hair in zip(edge_y[chosen], edge_x[chosen], turns[chosen], lengths[chosen]):
            # Outwards is down the slope of the smoothed figure.
            if np.hypot(slope_x[y, x], slope_y[y, x]) < 1e-6:
                continue
            angle = np.arctan2(-slope_y[y, x], -slope_x[y, x]) + turn
            draw.line([x, y, x + hair * np.cos(angle), y + hair * np.sin(angle)], fill=255, width=1)
        hairy[i] = np.asarray(canvas) > 127
    return hairy[0] if single else hairy
