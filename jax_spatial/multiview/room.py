"""Room floor areas: exact for polygon rooms, VSI-Bench's alpha shape for scanned rooms.

* `polygon_area`: the shoelace formula, for procedural rooms whose floor is a known polygon.
* `room_area_from_points`: VSI-Bench's room size. Its authors compute it (answer in the
  benchmark's issue tracker, vision-x-nyu/thinking-in-space #34) as
  `alphashape.alphashape(points[:, :2], alpha=5).area` on 10,000 points drawn at random,
  with replacement, from the scan's vertices projected on the floor plane, using the
  `alphashape` package. We follow that recipe with our own vectorised alpha shape
  (`alpha_shape_area`, seeded sampling): `alphashape` loops over triangles in Python and
  builds shapely polygons, ~1.5 s per room, and this takes ~20 ms. tests/test_room_route.py
  checks that both give the same area.
* `occupancy_area`: a rasterised occupancy grid of the same points, an independent estimate
  used to cross-check the alpha shape on real scans.

The alpha shape as `alphashape` defines it: the Delaunay triangles of the points whose
circumradius is below `1 / alpha` (0.2 m for alpha = 5), merged. `alphashape` merges them by
polygonising the kept triangles' edges and taking the union of the faces, which also fills
any hole the kept triangles enclose (a region without points, such as under a bed, counts
as floor). `alpha_shape_area(fill_holes=True)` does the same: a hole is a connected set of
rejected triangles that reaches no edge of the convex hull.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay, QhullError

VSI_BENCH_ALPHA = 5.0
VSI_BENCH_SAMPLES = 10_000


def polygon_area(vertices) -> float:
    """Area of a simple polygon by the shoelace formula, square metres.

    Args:
      vertices: `[P, 2]` floor-plane corners in order (either orientation), P >= 3; the
        polygon is closed implicitly.

    Raises:
      ValueError: fewer than 3 vertices, or non-finite ones.
    """
    v = np.asarray(vertices, np.float64)
    if v.ndim != 2 or v.shape[1] != 2 or len(v) < 3:
        raise ValueError(f"a polygon needs [P >= 3, 2] vertices, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("polygon vertices must be finite")
    # Relative to one vertex: keeps the cross products small for rooms far from the origin.
    x, y = (v - v[0]).T
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _triangle_geometry(points, simplices):
    """Areas and circumradii `[S]` of Delaunay triangles (inf radius for degenerate ones)."""
    a, b, c = (points[simplices[:, k]] for k in range(3))
    ab = np.linalg.norm(b - a, axis=1)
    bc = np.linalg.norm(c - b, axis=1)
    ca = np.linalg.norm(a - c, axis=1)
    u, w = b - a, c - a
    area = 0.5 * np.abs(u[:, 0] * w[:, 1] - u[:, 1] * w[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = np.where(area > 0, ab * bc * ca / (4.0 * area), np.inf)
    return area, radius


def _convex_hull_area(points) -> float:
    if len(points) < 3:
        return 0.0
    try:
        tri = Delaunay(points)
    except QhullError:  # collinear: no area
        return 0.0
    return float(_triangle_geometry(points, tri.simplices)[0].sum())


def alpha_shape_area(points, alpha: float = VSI_BENCH_ALPHA, fill_holes: bool = True) -> float:
    """Area of the 2D alpha shape of points, as `alphashape.alphashape(points, alpha).area`.

    Args:
      points: `[P, 2+]` points; only x and y are used.
      alpha: the triangle filter: Delaunay triangles with circumradius `< 1 / alpha` (metres)
        are kept. alpha <= 0 gives the convex hull.
      fill_holes: count regions the kept triangles enclose (module doc), as `alphashape`.

    Returns:
      square metres; 0 for fewer than three distinct, non-collinear points. Fewer than four
      points give their convex hull, as `alphashape` does.
    """
    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise ValueError(f"points must be [P, 2+], got shape {pts.shape}")
    pts = pts[:, :2]
    if len(pts) < 4 or alpha <= 0:
        return _convex_hull_area(np.unique(pts, axis=0))
    # Repeated points (sampling with replacement) add nothing to a triangulation.
    pts = np.unique(pts, axis=0)
    if len(pts) < 3:
        return 0.0
    try:
        tri = Delaunay(pts)
    except QhullError:
        return 0.0
    area, radius = _triangle_geometry(pts, tri.simplices)
    keep = radius < 1.0 / alpha
    total = float(area[keep].sum())
    if not fill_holes or keep.all() or not keep.any():
        return total
    # Rejected triangles, linked across shared edges; a component that touches the hull
    # (a neighbour of -1) is open to the outside, any other one is an enclosed hole.
    rejected = np.flatnonzero(~keep)
    index = np.full(len(keep), -1)
    index[rejected] = np.arange(len(rejected))
    nbr = tri.neighbors[rejected]  # [R, 3]
    rows = np.repeat(np.arange(len(rejected)), 3)
    cols = index[np.where(nbr >= 0, nbr, 0)].reshape(-1)
    link = (nbr.reshape(-1) >= 0) & (cols >= 0)
    graph = coo_matrix(
        (np.ones(link.sum()), (rows[link], cols[link])), shape=(len(rejected), len(rejected))
    )
    _, label = connected_components(graph, directed=False)
    open_labels = np.unique(label[np.any(nbr < 0, axis=1)])
    hole = ~np.isin(label, open_labels)
    return total + float(area[rejected][hole].sum())


def room_area_from_points(
    points,
    alpha: float = VSI_BENCH_ALPHA,
    num_samples: int | None = VSI_BENCH_SAMPLES,
    seed: int = 0,
    fill_holes: bool = True,
) -> float:
    """VSI-Bench's room size from a scan: the alpha-shape area of the points' floor plan.

    Args:
      points: `[P, 3]` scan points (mesh vertices) in a z-up frame; x and y are used.
      alpha: 5, VSI-Bench's value (circumradius below 0.2 m).
      num_samples: points drawn at random with replacement first (VSI-Bench draws 10,000
        to bound the cost); None uses every point.
      seed: the draw's seed (VSI-Bench's draw is unseeded; a seed makes answers repeatable).
      fill_holes: see `alpha_shape_area`.

    Returns:
      square metres.
    """
    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2 or not len(pts):
        raise ValueError(f"points must be a non-empty [P, 2+] array, got shape {pts.shape}")
    if num_samples is not None:
        pts = pts[np.random.default_rng(seed).choice(len(pts), num_samples)]
    return alpha_shape_area(pts[:, :2], alpha, fill_holes)


def occupancy_area(points, cell: float = 0.1, fill_holes: bool = True) -> float:
    """Floor area as the cells of a square grid that hold at least one point.

    An estimate independent of triangulations, for cross-checks: cells of `cell` metres
    holding a point count whole, and with `fill_holes` so do empty cells that occupied
    cells enclose (`scipy.ndimage.binary_fill_holes`), as the alpha shape fills its holes.
    It overestimates a dense sample's outline by about half a cell along the perimeter and
    underestimates a sparse one where boundary cells miss their points.
    """
    xy = np.asarray(points, np.float64)[:, :2]
    if not len(xy):
        return 0.0
    ij = np.floor((xy - xy.min(axis=0)) / cell).astype(np.int64)
    grid = np.zeros(tuple(ij.max(axis=0) + 1), bool)
    grid[ij[:, 0], ij[:, 1]] = True
    if fill_holes:
        grid = ndimage.binary_fill_holes(grid)
    return float(grid.sum()) * cell * cell


def rectangle(width: float, depth: float, origin=(0.0, 0.0)) -> np.ndarray:
    """`[4, 2]` anticlockwise corners of an axis-aligned `width x depth` rectangle."""
    x, y = origin
    return np.array([[x, y], [x + width, y], [x + width, y + depth], [x, y + depth]], float)


def sample_polygon(vertices, density: float, seed: int = 0) -> np.ndarray:
    """Uniform random points inside a polygon, `density` per square metre. -> `[P, 2]`.

    Rejection sampling from the bounding box; for tests and benchmarks of floor areas.
    """
    v = np.asarray(vertices, np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    rng = np.random.default_rng(seed)
    count = rng.poisson(density * float(np.prod(hi - lo)))
    pts = lo + rng.random((count, 2)) * (hi - lo)
    return pts[points_in_polygon(pts, v)]


def points_in_polygon(points, vertices) -> np.ndarray:
    """Even-odd rule: which `[..., 2]` points lie inside the `[P, 2]` polygon. -> `[...]` bool.

    Points exactly on an edge may fall either way; callers keep a clearance.
    """
    shape = np.shape(points)[:-1]
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    a = np.asarray(vertices, np.float64)
    b = np.roll(a, -1, axis=0)
    x, y = pts[:, None, 0], pts[:, None, 1]
    straddle = (a[None, :, 1] > y) != (b[None, :, 1] > y)
    dy = np.where(straddle, b[None, :, 1] - a[None, :, 1], 1.0)
    x_cross = a[None, :, 0] + (y - a[None, :, 1]) * (b[None, :, 0] - a[None, :, 0]) / dy
    return (np.sum(straddle & (x < x_cross), axis=1) % 2 == 1).reshape(shape)


__all__ = [
    "VSI_BENCH_ALPHA",
    "VSI_BENCH_SAMPLES",
    "alpha_shape_area",
    "occupancy_area",
    "points_in_polygon",
    "polygon_area",
    "rectangle",
    "room_area_from_points",
    "sample_polygon",
]
