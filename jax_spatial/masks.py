"""Instance masks: COCO run-length encoding, polygon rasterisation, boxes and areas.

Pure numpy on the host: masks arrive with the sources (COCO-style JSON, mmdetection3d infos)
and are decoded once per frame before being padded into `[N, H, W]` batches for lifting.

**RLE.** COCO's run-length encoding walks the mask in column-major (Fortran) order, i.e. down
the first column, then down the second, and alternates run lengths of 0s and 1s, starting with
0s (a mask whose first pixel is set starts with a zero-length run). `counts` is either a list of
ints ("uncompressed RLE", as COCO's `iscrowd` annotations store it) or pycocotools' compressed
string: each count after the second is stored as the difference to the count two places before,
and every value is written as little-endian groups of 5 bits, each group as the character
`48 + bits`, with bit 0x20 meaning "another group follows" and bit 0x10 of the last group
carrying the sign. `encode_rle` writes the compressed string byte for byte as pycocotools'
`rleToString`, and `decode_rle` reads both forms.

**Polygons.** `rasterize_polygons` fills each ring with the even-odd rule, sampling every pixel
at one point, and takes the union of the rings (pycocotools merges the rings of a COCO polygon
annotation with a union too). The sample point of pixel `(col, row)` is
`(col + offset, row + offset)`; the default `offset=0.5` samples pixel centres, which is both
this project's pixel convention (`cameras.py`) and what pycocotools' `frPyObjects` does in
effect. Against pycocotools 2.0 on random polygons: axis-aligned rectangles give identical
masks; sloped edges differ on at most ~0.17 boundary pixels per pixel of perimeter (about 1-2%
of the area of a 30 px polygon), because pycocotools first snaps vertices to a 1/5 px grid and
walks edges on that grid, while this rasteriser intersects the exact edges. A sample exactly on
a left or top edge counts as inside, on a right or bottom edge as outside (the half-open
scanline rule, also pycocotools' choice for rectangles), so two polygons that share an edge
never both claim the pixels on it.

**Boxes.** `mask_box` returns `(x1, y1, x2, y2)` in the continuous pixel convention of the
rest of the project: a mask whose set pixels span columns `c0..c1` gives `x1 = c0`,
`x2 = c1 + 1`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "decode",
    "decode_rle",
    "encode_rle",
    "mask_area",
    "mask_box",
    "polygon_area",
    "rasterize_polygons",
    "rle_area",
    "rle_from_string",
    "rle_to_string",
]


# --------------------------------------------------------------------------------------------
# RLE


def _runs_from_mask(mask: np.ndarray) -> np.ndarray:
    """`[H, W]` bool -> `[m]` run lengths in column-major order, starting with a 0-run."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return np.zeros((0,), np.int64)
    # Positions where the value changes delimit the runs; a leading True gets a 0-length run
    # of zeros so that runs always alternate 0, 1, 0, ...
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds)
    if flat[0]:
        runs = np.concatenate([[0], runs])
    return runs.astype(np.int64)


def rle_to_string(counts: Sequence[int]) -> str:
    """Run lengths -> pycocotools' compressed string (`rleToString`)."""
    counts = [int(c) for c in counts]
    out = []
    for i, count in enumerate(counts):
        # Deltas against the run of the same parity shrink typical counts to a few characters.
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift, as the C code on a signed long
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_from_string(s: str | bytes) -> np.ndarray:
    """pycocotools' compressed string -> `[m]` int64 run lengths (`rleFrString`)."""
    if isinstance(s, bytes):
        s = s.decode("ascii")
    counts: list[int] = []
    p = 0
    n = len(s)
    while p < n:
        x = 0
        k = 0
        more = True
        while more:
            if p >= n:
                raise ValueError("truncated RLE string")
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)  # sign-extend the last group
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    runs = np.asarray(counts, dtype=np.int64)
    if np.any(runs < 0):
        raise ValueError("RLE string decodes to negative run lengths")
    return runs


def encode_rle(mask: np.ndarray, compressed: bool = True) -> dict:
    """Encodes a mask as a COCO RLE dict.

    Args:
      mask: `[H, W]` bool (anything non-zero is set).
      compressed: write `counts` as pycocotools' string (as `pycocotools.mask.encode` does,
        but as `str`, not `bytes`, so the dict is JSON-ready); else as a list of ints.

    Returns:
      `{"size": [H, W], "counts": str | list[int]}`.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be [H, W], got shape {mask.shape}")
    runs = _runs_from_mask(mask)
    counts = rle_to_string(runs) if compressed else [int(r) for r in runs]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def _rle_runs(rle: Mapping) -> tuple[np.ndarray, int, int]:
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, str | bytes):
        runs = rle_from_string(counts)
    else:
        runs = np.asarray(counts, dtype=np.int64).reshape(-1)
        if np.any(runs < 0):
            raise ValueError("RLE counts must be non-negative")
    if int(runs.sum()) != h * w:
        raise ValueError(f"RLE counts sum to {int(runs.sum())}, expected {h} * {w} = {h * w}")
    return runs, h, w


def decode_rle(rle: Mapping) -> np.ndarray:
    """COCO RLE dict (compressed string/bytes or list counts) -> `[H, W]` bool mask."""
    runs, h, w = _rle_runs(rle)
    values = (np.arange(runs.size) % 2).astype(bool)
    flat = np.repeat(values, runs)
    return flat.reshape((w, h)).T.copy()


def rle_area(rle: Mapping) -> int:
    """Number of set pixels of a COCO RLE, without decoding it."""
    runs, _, _ = _rle_runs(rle)
    return int(runs[1::2].sum())


# --------------------------------------------------------------------------------------------
# Polygons


def _as_rings(polygons) -> list[np.ndarray]:
    """COCO polygon list (`[[x1, y1, x2, y2, ...], ...]`) or one flat ring -> `[k, 2]` arrays."""
    if len(polygons) and np.isscalar(polygons[0]):
        polygons = [polygons]
    rings = []
    for poly in polygons:
        xy = np.asarray(poly, dtype=np.float64).reshape(-1)
        if xy.size % 2:
            raise ValueError("polygon has an odd number of coordinates")
        xy = xy.reshape(-1, 2)
        if len(xy) >= 3:  # fewer vertices enclose nothing
            rings.append(xy)
    return rings


def _rasterize_ring(xy: np.ndarray, height: int, width: int, offset: float) -> np.ndarray:
    """Even-odd fill of one closed ring `[k, 2]` -> `[H, W]` bool, by vectorised scanlines."""
    x0, y0 = xy[:, 0], xy[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    ys = np.arange(height, dtype=np.float64)[:, None] + offset  # [H, 1] sample rows
    # Half-open rule: an edge covers rows with min(y0, y1) <= y < max(y0, y1). Horizontal
    # edges cover none, and a vertex shared by two edges is counted once.
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    crosses = (ys >= lo) & (ys < hi)  # [H, E]
    dy = np.where(y1 != y0, y1 - y0, 1.0)
    xc = x0 + (ys - y0) * (x1 - x0) / dy  # [H, E] crossing abscissae
    rows, edges = np.nonzero(crosses)
    # A pixel is inside when an odd number of crossings lie at or left of its sample, so each
    # crossing toggles parity from the first column whose sample is not left of it.
    first_col = np.ceil(xc[rows, edges] - offset).astype(np.int64)
    first_col = np.clip(first_col, 0, width)
    toggles = np.zeros((height, width + 1), np.int32)
    np.add.at(toggles, (rows, first_col), 1)
    return (np.cumsum(toggles[:, :width], axis=1) % 2).astype(bool)


def rasterize_polygons(polygons, height: int, width: int, offset: float = 0.5) -> np.ndarray:
    """Rasterises a COCO polygon annotation.

    Args:
      polygons: a list of rings `[[x1, y1, x2, y2, ...], ...]` in pixels (or one flat ring).
      height, width: mask size.
      offset: where in a pixel it is sampled: pixel `(col, row)` is tested at
        `(col + offset, row + offset)`; 0.5 (pixel centres) matches pycocotools.

    Returns:
      `[H, W]` bool: the union of the rings, each filled by the even-odd rule.
    """
    mask = np.zeros((int(height), int(width)), dtype=bool)
    for ring in _as_rings(polygons):
        mask |= _rasterize_ring(ring, int(height), int(width), float(offset))
    return mask


def polygon_area(polygons) -> float:
    """Sum of the rings' shoelace areas (absolute), in square pixels."""
    total = 0.0
    for xy in _as_rings(polygons):
        x, y = xy[:, 0], xy[:, 1]
        total += 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))
    return total


# --------------------------------------------------------------------------------------------
# Any mask spec


def decode(spec, height: int | None = None, width: int | None = None, offset: float = 0.5):
    """A `SceneObject.masks` entry -> `[H, W]` bool.

    Args:
      spec: a COCO RLE dict (`size` and `counts`), a polygon list, or an array already decoded.
      height, width: the frame size; required for polygons, checked against an RLE's size.
      offset: polygon sample offset (see `rasterize_polygons`).
    """
    if isinstance(spec, Mapping):
        mask = decode_rle(spec)
        if height is not None and width is not None and mask.shape != (height, width):
            raise ValueError(f"RLE size {mask.shape} does not match the frame {(height, width)}")
        return mask
    if isinstance(spec, np.ndarray) and spec.ndim == 2:
        return spec.astype(bool)
    if height is None or width is None:
        raise ValueError("polygon masks need the frame's height and width")
    return rasterize_polygons(spec, height, width, offset=offset)


def mask_area(mask: np.ndarray) -> np.ndarray:
    """`[..., H, W]` -> `[...]` int64 number of set pixels."""
    return np.count_nonzero(np.asarray(mask, bool), axis=(-2, -1)).astype(np.int64)


def mask_box(mask: np.ndarray) -> np.ndarray:
    """Tight pixel box of each mask.

    Args:
      mask: `[..., H, W]` bool.

    Returns:
      `[..., 4]` float64 `(x1, y1, x2, y2)` in continuous pixel coordinates (a single set
      pixel at column c, row r gives `(c, r, c + 1, r + 1)`); NaN for an empty mask.
    """
    mask = np.asarray(mask, bool)
    h, w = mask.shape[-2:]
    cols = mask.any(axis=-2)  # [..., W]
    rows = mask.any(axis=-1)  # [..., H]
    empty = ~cols.any(axis=-1)
    x1 = np.argmax(cols, axis=-1)
    x2 = w - np.argmax(cols[..., ::-1], axis=-1)
    y1 = np.argmax(rows, axis=-1)
    y2 = h - np.argmax(rows[..., ::-1], axis=-1)
    box = np.stack([x1, y1, x2, y2], axis=-1).astype(np.float64)
    return np.where(empty[..., None], np.nan, box)
