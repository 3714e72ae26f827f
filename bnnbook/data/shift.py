"""Dataset shift: the test digits rotated by a given angle.

Taught in chapter "Practical approximations" (after Ovadia et al. 2019,
whose rotated-MNIST benchmark this follows).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bnnbook._checks import check_finite


def rotate(images, degrees: float) -> np.ndarray:
    """Rotate every image anticlockwise by ``degrees`` about its centre (bilinear, zero fill, same size).

    ``images`` is ``(n, 28, 28)`` or flat ``(n, 784)``; the result has the
    same shape and dtype, pixel values stay in the input's range.
    """
    images = np.asarray(images)
    flat = images.ndim == 2
    if flat:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError(f"flat images need a square number of pixels; got {images.shape[1]}")
        square = images.reshape(-1, side, side)
    elif images.ndim == 3:
        square = images
    else:
        raise ValueError(f"images must be (n, height, width) or (n, pixels); got shape {images.shape}")
    if not np.isfinite(degrees):
        raise ValueError(f"degrees={degrees!r} must be finite")
    if images.shape[0] == 0:
        raise ValueError(f"images is empty (shape {images.shape}); pass at least one image")
    check_finite("images", images, "pixel values must be finite")
    turned = ndimage.rotate(square, float(degrees), axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0)
    turned = np.clip(turned, square.min(), square.max()).astype(images.dtype)
    return turned.reshape(images.shape)


__all__ = ["rotate"]
