"""Procedural clips: a camera walking through a furnished, non-rectangular room.

Needs no files: `get_source("procedural_clips", None, num_scenes=8, seed=0)`; each scene is
one walk, and `sample_clip(scene, 16)` (or `ProceduralClipSource.load_clip`) its clip. The
room, the furniture and the camera are all known exactly, and every frame is rendered with
the JAX rasterizer, so each multi-view answer (counts, distances, sizes, room size, order of
appearance, routes) is exact.

World frame: the room's, z up, floor at `z = 0`.

**Rooms** (`sample_room`): a floor polygon, counter-clockwise, with axis-aligned walls, so
that room size means more than width times depth:

* `"l_shape"`: a 5.5-8.5 m rectangle with one corner rectangle (35-55% of each side) cut
  away;
* `"alcove"`: a 4.5-7 m rectangle with a 1.2-2.2 m wide, 0.8-1.4 m deep alcove set into one
  wall;
* `"rect"`: a plain 4.5-7.5 m rectangle.

Walls stand on every polygon edge (with baseboards), the floor and ceiling are the polygon
(ear-clipped, `triangulate_polygon`), ceilings 2.6-3.0 m. `Room.construction` keeps the
rectangles the polygon was built from, which gives its area a second way.

**Furniture** is placed by `procedural.py`'s rejection sampling (no interpenetration,
objects on supports rest on them) with one change: a floor footprint, grown by 0.1 m, must
lie inside the polygon (`rect_inside_polygon`: corners inside and no edge crossing, so the
inner corner of an L cannot cut into it). 5-12 objects per room.

**The walk** (`walk`): a free-space grid (0.1 m cells) keeps `wall_clearance` (0.5 m: a
person walking does not brush the wall) from walls and `object_clearance` (0.4 m: nor the
furniture) from object footprints, each grown by half a cell diagonal so that the straight
segment between two neighbouring free cells keeps the clearance too. Waypoints are chosen by
farthest-point sampling over the largest connected part of it, so the walk crosses the whole
room (both arms of an L). Consecutive waypoints are joined by Dijkstra on the 8-connected
grid, each step costed by its length times `1 + 0.3 m / (0.1 m + spare clearance)`, which
keeps the path in the middle of corridors. The path is smoothed (moving average over about
0.7 m) wherever the smoothed points keep the clearance; a dense check every 2 cm falls back
to the grid path if it does not. The camera walks it at `speed` (0.5 m/s, a slow indoor
walk) with frames every `1 / fps` seconds (2 fps), pitched 8-20 deg down, rolled at most
2 deg, at eye height 1.5-1.7 m.

**The gaze** (`gaze_schedule`, `gaze_yaw`): each object gets the frame where the walk passes
it closest to 2.5 m, each frame looks at the object whose frame is nearest in time, and a
Viterbi track over 5-degree yaw bins trades facing it against turning (at most 60 deg/s),
plus a slow 5-12 deg sway. (Looking along the path alone showed bare walls in most frames.)
Of `attempts` (4) walks per room the one whose frames have the most object centres in view
is kept.

**Rendering**: `frames="clip"` (default) renders only the `num_frames` frames a uniform clip
takes (`multiview.clip.sample_frame_indices`); `"all"` every frame of the walk. Frames carry
PNG (or `image_format="jpeg"`) bytes, depth and per-object instance masks, from which
`sample_clip` reads visibility (`scene.meta["instance_masks"]`).
"""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
from PIL import Image

from jax_spatial.errors import UsageError
from jax_spatial.geometry import frames as frames_lib
from jax_spatial.multiview import clip as clip_lib
from jax_spatial.multiview import room as room_lib
from jax_spatial.multiview import route as route_lib
from jax_spatial.render import meshes
from jax_spatial.scene import Scene, SceneSkip
from jax_spatial.sources import Source, procedural, register

ROOM_SHAPES = ("l_shape", "alcove", "rect")
WALL_MARGIN_M = 0.1  # furniture footprints keep this far inside the walls
EYE_HEIGHT_M = (1.5, 1.7)
GRID_CELL_M = 0.1
# Dijkstra's cost per metre: 1 + PATH_CLEARANCE_WEIGHT / (0.1 + spare clearance).
PATH_CLEARANCE_WEIGHT = 0.3
SMOOTH_WINDOW = 7  # cells, about 0.7 m
HEADING_SIGMA_M = 0.6
CHECK_STEP_M = 0.02
# Gaze (`gaze_yaw`): 5 degree bins, a turn costs as much per radian as one object in view.
GAZE_BINS = 72
TURN_COST = 1.0
MAX_TURN_DEG_S = 60.0
GAZE_DISTANCE_M = 2.5
SWAY_DEG = (5.0, 12.0)
MIN_FREE_CELLS = 40  # a walkable area below 0.4 m^2 is no walk: the room is refurnished


# ----------------------------------------------------------------------------- rooms


@dataclasses.dataclass
class Room:
    """A room's floor plan.

    Attributes:
      polygon: `[P, 2]` floor polygon, world metres, counter-clockwise, no repeated vertex.
      height: floor-to-ceiling metres.
      shape: one of `ROOM_SHAPES`.
      construction: the rectangles it was built from: `base` `[lx, ly]`, and `cut` (L) or
        `alcove` `[width, depth]`.
    """

    polygon: np.ndarray
    height: float
    shape: str
    construction: dict

    @property
    def area(self) -> float:
        return room_lib.polygon_area(self.polygon)


def _signed_area(polygon) -> float:
    p = np.asarray(polygon, np.float64)
    return 0.5 * float(
        np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))
    )


def sample_room(rng, shape: str) -> Room:
    """A random room of `shape` (module docstring), its polygon's lower-left at the origin."""
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    height = u(2.6, 3.0)
    if shape == "rect":
        lx, ly = u(4.5, 7.5), u(4.5, 7.5)
        poly = np.array([(0, 0), (lx, 0), (lx, ly), (0, ly)], float)
        return Room(poly, height, shape, {"base": [lx, ly]})
    if shape == "l_shape":
        lx, ly = u(5.5, 8.5), u(5.5, 8.5)
        wx, wy = u(0.35, 0.55) * lx, u(0.35, 0.55) * ly
        corners = np.array([(0, 0), (lx, 0), (lx, ly), (0, ly)], float)
        k = int(rng.integers(4))
        p, prev, nxt = corners[k], corners[k - 1], corners[(k + 1) % 4]

        def towards(q):
            d = (q - p) / np.linalg.norm(q - p)
            return d * (wx if abs(d[0]) > 0.5 else wy)

        cut = [p + towards(prev), p + towards(prev) + towards(nxt), p + towards(nxt)]
        poly = np.concatenate([corners[:k], cut, corners[k + 1 :]])
        return Room(poly, height, shape, {"base": [lx, ly], "cut": [wx, wy]})
    if shape == "alcove":
        lx, ly = u(4.5, 7.0), u(4.5, 7.0)
        corners = np.array([(0, 0), (lx, 0), (lx, ly), (0, ly)], float)
        k = int(rng.integers(4))
        a, b = corners[k], corners[(k + 1) % 4]
        length = float(np.linalg.norm(b - a))
        d = (b - a) / length
        outward = np.array([d[1], -d[0]])  # right of a counter-clockwise edge
        width = u(1.2, min(2.2, length - 1.0))
        depth = u(0.8, 1.4)
        s = u(0.5, length - width - 0.5)
        alcove = [a + d * s, a + d * s + outward * depth]
        alcove += [a + d * (s + width) + outward * depth, a + d * (s + width)]
        poly = np.concatenate([corners[: k + 1], alcove, corners[k + 1 :]])
        poly = poly - poly.min(0)
        return Room(poly, height, shape, {"base": [lx, ly], "alcove": [width, depth]})
    raise ValueError(f"unknown room shape {shape!r}; known: {', '.join(ROOM_SHAPES)}")


def triangulate_polygon(polygon) -> np.ndarray:
    """Ear clipping of a simple polygon: `[P, 2]` -> `[P - 2, 3]` vertex indices.

    Triangles are counter-clockwise. Raises ValueError for a polygon with no ear (not simple).
    """
    p = np.asarray(polygon, np.float64).reshape(-1, 2)
    idx = list(range(len(p)))
    if _signed_area(p) < 0:
        idx.reverse()
    tris = []

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    while len(idx) > 3:
        for k in range(len(idx)):
            i0, i1, i2 = idx[k - 1], idx[k], idx[(k + 1) % len(idx)]
            a, b, c = p[i0], p[i1], p[i2]
            if cross(a, b, c) <= 1e-12:
                continue  # reflex or flat corner: not an ear
            others = [p[j] for j in idx if j not in (i0, i1, i2)]
            # Another vertex in the triangle, or on its boundary, would make the ear overlap it.
            if any(
                cross(a, b, q) >= -1e-12 and cross(b, c, q) >= -1e-12 and cross(c, a, q) >= -1e-12
                for q in others
            ):
                continue
            tris.append((i0, i1, i2))
            idx.pop(k)
            break
        else:
            raise ValueError("polygon has no ear: it is not simple")
    tris.append(tuple(idx))
    return np.asarray(tris, np.int64)


def room_meshes(room: Room, rng) -> list[meshes.Mesh]:
    """Floor (textured), walls with baseboards, and ceiling of a polygon room."""
    poly, lz = room.polygon, room.height
    tile_m = float(rng.uniform(1.2, 2.0))  # metres per texture repeat
    faces = triangulate_polygon(poly)
    floor = meshes.Mesh(
        vertices=np.concatenate([poly, np.zeros((len(poly), 1))], 1),
        faces=faces,
        uv=poly / tile_m,
        texture=procedural._floor_texture(rng),
        face_colors=np.ones((len(faces), 3)),
    )
    wall_rgb = np.asarray(procedural.WALL_TINTS[rng.integers(len(procedural.WALL_TINTS))])
    board_rgb = np.asarray((0.95, 0.95, 0.93)) * float(rng.uniform(0.5, 1.0))
    t, h = 0.015, 0.08
    parts = []
    for i in range(len(poly)):
        (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % len(poly)]
        wall = meshes.Mesh(
            vertices=[(x0, y0, 0), (x1, y1, 0), (x1, y1, lz), (x0, y0, lz)],
            faces=[(0, 1, 2), (0, 2, 3)],
        )
        # Walls at right angles differ a little in tone, as painted walls under one light do.
        parts.append(wall.with_color(wall_rgb * (0.94 + 0.04 * (i % 2))))
        d = np.array([x1 - x0, y1 - y0])
        length = float(np.linalg.norm(d))
        inward = np.array([-d[1], d[0]]) / length  # left of a counter-clockwise edge
        centre = 0.5 * (poly[i] + poly[(i + 1) % len(poly)]) + inward * t / 2
        pose = np.eye(4)
        pose[:3, :3] = np.asarray(frames_lib.rotation_z(math.atan2(d[1], d[0])), np.float64)
        pose[:3, 3] = (centre[0], centre[1], h / 2)
        parts.append(meshes.box((length, t, h)).transformed(pose).with_color(board_rgb))
    ceiling = meshes.Mesh(
        vertices=np.concatenate([poly, np.full((len(poly), 1), lz)], 1), faces=faces[:, ::-1]
    ).with_color((0.95, 0.95, 0.95))
    return [floor, meshes.concatenate(parts + [ceiling])]


def _segments_cross(a0, a1, b0, b1) -> np.ndarray:
    """`[A, 2]` x `[B, 2]` segments -> `[A, B]` bool, they intersect or touch."""

    def orient(p, q, r):
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (
            r[..., 0] - p[..., 0]
        )

    a0, a1 = a0[:, None], a1[:, None]
    b0, b1 = b0[None], b1[None]
    o1, o2 = orient(a0, a1, b0), orient(a0, a1, b1)
    o3, o4 = orient(b0, b1, a0), orient(b0, b1, a1)
    return (o1 * o2 <= 0) & (o3 * o4 <= 0)


def rect_inside_polygon(rect, polygon) -> bool:
    """A convex `[4, 2]` quad lies inside a simple `[P, 2]` polygon, touching nothing.

    Its corners must be inside and no edge of it may meet an edge of the polygon, which also
    catches a reflex corner poking into it between two corners.
    """
    rect = np.asarray(rect, np.float64)
    poly = np.asarray(polygon, np.float64)
    if not np.all(room_lib.points_in_polygon(rect, poly)):
        return False
    return not _segments_cross(rect, np.roll(rect, -1, 0), poly, np.roll(poly, -1, 0)).any()


class _PolygonFurnisher(procedural.ProceduralSource):
    """`procedural.py`'s furnishing with floor objects kept inside a polygon (not a source)."""

    def _place_on_floor(self, room: Room, placed, shape, colour, rng) -> bool:
        lo, hi = room.polygon.min(0), room.polygon.max(0)
        for _ in range(40):
            yaw = float(rng.uniform(-math.pi, math.pi))
            if shape.category == "shelf" or rng.random() < 0.3:
                yaw = float(rng.integers(4)) * math.pi / 2  # furniture tends to line up
            half = 0.5 * np.hypot(*shape.extent[:2])
            a, b = lo + half + WALL_MARGIN_M, hi - half - WALL_MARGIN_M
            if np.any(a > b):
                return False
            xy = rng.uniform(a, b)
            grown = procedural._footprint(xy, yaw, shape.extent[:2] + 2 * WALL_MARGIN_M)
            if not rect_inside_polygon(grown, room.polygon):
                continue
            fp = procedural._footprint(xy, yaw, shape.extent[:2] + procedural.GAP_M)
            if any(procedural._rects_overlap(fp, p.footprint) for p in placed if p.support is None):
                continue
            rgb, shiny = self._finish(shape, colour, rng)
            centre = np.array([xy[0], xy[1], shape.extent[2] / 2])
            placed.append(procedural._Placed(shape, colour, rgb, centre, yaw, shiny))
            return True
        return False


def footprints_of(placed) -> np.ndarray:
    """`[N, 4, 2]` exact floor footprints (each object's box seen from above)."""
    return np.array(
        [procedural._footprint(p.centre[:2], p.yaw, p.shape.extent[:2]) for p in placed]
    ).reshape(-1, 4, 2)


# ----------------------------------------------------------------------------- the walk


@dataclasses.dataclass
class Trajectory:
    """A camera walk, one entry per frame at the walk's frame rate.

    Attributes:
      time: `[F]` seconds.
      position: `[F, 3]` camera centre, world metres.
      yaw, pitch, roll: `[F]` radians (yaw: viewing direction, anticlockwise from +x).
      world_from_cam: `[F, 4, 4]` OpenCV camera poses.
      path: `[M, 2]` the planned floor path the camera walks along.
    """

    time: np.ndarray
    position: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    world_from_cam: np.ndarray
    path: np.ndarray


class NoWalk(Exception):
    """The room leaves no walkable free space (too cluttered for the clearances)."""


def _clearance_ok(points, polygon, footprints, wall_clearance, object_clearance) -> np.ndarray:
    inside = room_lib.points_in_polygon(points, polygon)
    walls = route_lib.wall_distance(points, polygon) >= wall_clearance
    objects = _footprint_distance(points, footprints) >= object_clearance
    return inside & walls & objects


def _footprint_distance(points, footprints) -> np.ndarray:
    """`[M, 2]` points -> `[M]` metres to the nearest `[N, 4, 2]` footprint (inf: none)."""
    out = np.full(len(np.asarray(points).reshape(-1, 2)), np.inf)
    for quad in np.asarray(footprints, np.float64):
        out = np.minimum(out, route_lib.polygon_distance(points, quad))
    return out


@dataclasses.dataclass
class _WalkGrid:
    """Free floor cells for the walk: `free [ny, nx]` and the metres each cell centre keeps
    beyond the required clearances (`spare`), cell centres at `origin + cell * (col, row)`."""

    origin: np.ndarray
    free: np.ndarray
    spare: np.ndarray

    def centres(self) -> np.ndarray:
        ny, nx = self.free.shape
        xs = self.origin[0] + GRID_CELL_M * np.arange(nx)
        ys = self.origin[1] + GRID_CELL_M * np.arange(ny)
        return np.stack(np.meshgrid(xs, ys), axis=-1)


def _walk_grid(polygon, footprints, wall_clearance, object_clearance) -> _WalkGrid:
    lo, hi = polygon.min(0), polygon.max(0)
    nx, ny = (int(math.ceil(v)) for v in (hi - lo) / GRID_CELL_M)
    grid = _WalkGrid(lo + 0.5 * GRID_CELL_M, np.zeros((ny, nx), bool), np.zeros((ny, nx)))
    centres = grid.centres().reshape(-1, 2)
    spare = np.minimum(
        route_lib.wall_distance(centres, polygon) - wall_clearance,
        _footprint_distance(centres, footprints) - object_clearance,
    )
    inside = room_lib.points_in_polygon(centres, polygon)
    grid.free = (inside & (spare >= 0)).reshape(ny, nx)
    grid.spare = spare.reshape(ny, nx)
    return grid


def _densify(path, step):
    seg = np.diff(path, axis=0)
    length = np.linalg.norm(seg, axis=1)
    out = [path[:1]]
    for p, d, n in zip(path[:-1], seg, np.ceil(length / step).astype(int), strict=True):
        if n > 0:
            out.append(p + d * (np.arange(1, n + 1) / n)[:, None])
    return np.concatenate(out)


def plan_path(room: Room, footprints, rng, *, wall_clearance, object_clearance, waypoints=5):
    """A floor path through the room's free space (module docstring): `[M, 2]` world xy.

    Every point of the polyline (not only its vertices) keeps the clearances.

    Raises:
      NoWalk: the free space is too small.
    """
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    pad = GRID_CELL_M * math.sqrt(2) / 2
    grid = _walk_grid(room.polygon, footprints, wall_clearance + pad, object_clearance + pad)
    labels, count = ndimage.label(grid.free, structure=np.ones((3, 3)))
    if count == 0:
        raise NoWalk("no free space")
    sizes = np.bincount(labels.ravel())[1:]
    keep = labels == (1 + int(np.argmax(sizes)))
    if keep.sum() < MIN_FREE_CELLS:
        raise NoWalk(f"only {int(keep.sum())} free cells")
    rows, cols = np.nonzero(keep)
    centres = grid.centres()[rows, cols]
    node = -np.ones(keep.shape, np.int64)
    node[rows, cols] = np.arange(len(rows))

    # Waypoints by farthest-point sampling: each one as far as possible from those before.
    chosen = [int(rng.integers(len(rows)))]
    dist = np.linalg.norm(centres - centres[chosen[0]], axis=1)
    for _ in range(waypoints - 1):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.linalg.norm(centres - centres[chosen[-1]], axis=1))

    spare = grid.spare[rows, cols]
    src, dst, weight = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        r2, c2 = rows + dr, cols + dc
        ok = (r2 >= 0) & (r2 < keep.shape[0]) & (c2 >= 0) & (c2 < keep.shape[1])
        ok[ok] = keep[r2[ok], c2[ok]]
        a, b = np.flatnonzero(ok), node[r2[ok], c2[ok]]
        step = GRID_CELL_M * math.hypot(dr, dc)
        cost = 1 + PATH_CLEARANCE_WEIGHT / (0.1 + 0.5 * (spare[a] + spare[b]))
        src += [a, b]
        dst += [b, a]
        weight += [step * cost] * 2
    graph = coo_matrix(
        (np.concatenate(weight), (np.concatenate(src), np.concatenate(dst))),
        shape=(len(rows), len(rows)),
    ).tocsr()
    _, pred = dijkstra(graph, indices=chosen[:-1], return_predecessors=True)
    cells = []
    for k in range(len(chosen) - 1):
        leg, at = [], chosen[k + 1]
        while at != chosen[k]:
            leg.append(at)
            at = pred[k, at]
            if at < 0:
                raise NoWalk("waypoints not connected")
        leg.append(chosen[k])
        cells += leg[::-1] if not cells else leg[::-1][1:]
    path = centres[np.asarray(cells)]
    if len(path) < 2:
        raise NoWalk("path of one cell")

    smooth = path.copy()
    for _ in range(3):
        padded = np.pad(smooth, ((SMOOTH_WINDOW // 2,) * 2, (0, 0)), mode="edge")
        kernel = np.ones(SMOOTH_WINDOW) / SMOOTH_WINDOW
        trial = np.stack([np.convolve(padded[:, i], kernel, mode="valid") for i in (0, 1)], 1)
        ok = _clearance_ok(
            trial, room.polygon, footprints, wall_clearance + pad, object_clearance + pad
        )
        smooth = np.where(ok[:, None], trial, smooth)
    dense = _densify(smooth, CHECK_STEP_M)
    if not _clearance_ok(dense, room.polygon, footprints, wall_clearance, object_clearance).all():
        smooth = path  # the grid path keeps the clearance by construction
    return smooth


def walk(
    room: Room,
    footprints,
    rng,
    *,
    fps: float = 2.0,
    speed: float = 0.5,
    min_frames: int = 16,
    wall_clearance: float = 0.5,
    object_clearance: float = 0.4,
    targets=None,
    hfov: float = math.radians(65.0),
) -> Trajectory:
    """A camera walk through the room (module docstring), at least `min_frames` frames long.

    Args:
      targets: `[N, 2+]` object centres the camera's gaze is drawn to (`gaze_yaw`); None
        looks along the direction of travel.
      hfov: the camera's horizontal field of view, radians.

    Raises:
      NoWalk: the free space is too small.
    """
    path = plan_path(
        room,
        footprints,
        rng,
        wall_clearance=wall_clearance,
        object_clearance=object_clearance,
        waypoints=int(rng.integers(4, 7)),
    )
    path = path[np.r_[True, np.linalg.norm(np.diff(path, axis=0), axis=1) > 1e-9]]
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    total = float(s[-1])
    # A short path is walked more slowly rather than giving fewer frames than the clip needs.
    speed = min(speed, total * fps / max(min_frames - 1, 1))
    if speed < 0.1:
        raise NoWalk(f"path of {total:.2f} m is too short")
    count = int(math.floor(total / speed * fps)) + 1
    time = np.arange(count) / fps
    at = np.minimum(speed * time, total)
    xy = np.stack([np.interp(at, s, path[:, 0]), np.interp(at, s, path[:, 1])], 1)

    from scipy.ndimage import gaussian_filter1d

    fine = np.arange(0.0, total + CHECK_STEP_M, CHECK_STEP_M).clip(max=total)
    fine_xy = np.stack([np.interp(fine, s, path[:, 0]), np.interp(fine, s, path[:, 1])], 1)
    step = np.diff(fine_xy, axis=0, append=fine_xy[-1:] + (fine_xy[-1:] - fine_xy[-2:-1]))
    heading = np.unwrap(np.arctan2(step[:, 1], step[:, 0]))
    heading = gaussian_filter1d(heading, HEADING_SIGMA_M / CHECK_STEP_M, mode="nearest")
    heading = np.interp(at, fine, heading)
    if targets is not None and len(targets):
        yaw = gaze_yaw(
            xy, heading, np.asarray(targets)[:, :2], hfov, math.radians(MAX_TURN_DEG_S) / fps
        )
    else:
        yaw = heading
    # A slow sway on top, as a person glancing around does.
    amplitude = math.radians(float(rng.uniform(*SWAY_DEG)))
    period = float(rng.uniform(6.0, 10.0))
    phase = float(rng.uniform(0, 2 * math.pi))
    yaw = yaw + amplitude * np.sin(2 * math.pi * time / period + phase)
    pitch = math.radians(float(rng.uniform(-20.0, -8.0))) + math.radians(3.0) * np.sin(
        2 * math.pi * time / float(rng.uniform(7.0, 12.0))
    )
    roll = np.full(count, math.radians(float(rng.uniform(-2.0, 2.0))))
    eye = float(rng.uniform(EYE_HEIGHT_M[0] + 0.015, EYE_HEIGHT_M[1] - 0.015))
    z = eye + 0.01 * np.sin(2 * math.pi * time / 1.1)  # a walker's head bobs a centimetre
    rot = np.asarray(
        frames_lib.rotation_z(yaw - math.pi / 2) @ frames_lib.view_from_cam_rotation(pitch, roll),
        np.float64,
    )
    poses = np.tile(np.eye(4), (count, 1, 1))
    poses[:, :3, :3] = rot
    poses[:, :3, 3] = np.concatenate([xy, z[:, None]], 1)
    position = poses[:, :3, 3].copy()
    return Trajectory(time, position, yaw, pitch, roll, poses, path)


def _wrap(angle):
    return (np.asarray(angle) + math.pi) % (2 * math.pi) - math.pi


def gaze_schedule(xy, targets) -> np.ndarray:
    """Which object each frame of a walk looks at: `[F]` index into `targets`.

    Each object gets the frame where the walker passes it at the best viewing distance
    (closest to `GAZE_DISTANCE_M`), and every frame looks at the object whose frame is
    nearest in time, so the gaze visits every object once, in the order the walk passes them.

    Args:
      xy: `[F, 2]` camera positions; targets: `[N, 2]` object centres.
    """
    dist = np.linalg.norm(np.asarray(xy)[:, None] - np.asarray(targets)[None, :, :2], axis=-1)
    best = np.argmin(np.abs(dist - GAZE_DISTANCE_M), axis=0)  # [N] frame per object
    return np.argmin(np.abs(np.arange(len(xy))[:, None] - best[None, :]), axis=1)


def gaze_yaw(xy, heading, targets, hfov: float, max_turn: float) -> np.ndarray:
    """Where a walker looks: a smooth yaw track that visits every object.

    Each frame scores `GAZE_BINS` viewing directions: 2 points for facing its scheduled
    object (`gaze_schedule`; a Gaussian of the angle to the object's bearing, sigma a
    quarter of the field of view), 0.3 for each other object near that direction, and 0.3
    for looking where one walks. The best track under a turning cost of `TURN_COST` per
    radian, never turning more than `max_turn` radians between frames, is found by dynamic
    programming (Viterbi) and smoothed over one frame.

    Args:
      xy: `[F, 2]` camera positions; heading: `[F]` direction of travel, radians.
      targets: `[N, 2]` object centres.

    Returns:
      `[F]` unwrapped yaw, radians.
    """
    from scipy.ndimage import gaussian_filter1d

    theta = np.arange(GAZE_BINS) * (2 * math.pi / GAZE_BINS)
    rel = np.asarray(targets, np.float64)[None, :, :2] - np.asarray(xy, np.float64)[:, None]
    bearing = np.arctan2(rel[..., 1], rel[..., 0])  # [F, N]
    near = np.exp(-0.5 * (_wrap(theta[None, None] - bearing[..., None]) / (hfov / 4)) ** 2)
    scheduled = gaze_schedule(xy, targets)
    weight = np.full(bearing.shape, 0.3)
    weight[np.arange(len(xy)), scheduled] = 2.0
    score = np.sum(weight[..., None] * near, axis=1)  # [F, B]
    score += 0.3 * np.exp(-0.5 * _wrap(theta[None] - np.asarray(heading)[:, None]) ** 2)
    turn = np.abs(_wrap(theta[:, None] - theta[None]))
    trans = np.where(turn <= max_turn, -TURN_COST * turn, -np.inf)
    acc, back = score[0], []
    for k in range(1, len(score)):
        cand = acc[:, None] + trans  # [from, to]
        best = np.argmax(cand, axis=0)
        acc = cand[best, np.arange(GAZE_BINS)] + score[k]
        back.append(best)
    bins = [int(np.argmax(acc))]
    for best in reversed(back):
        bins.append(int(best[bins[-1]]))
    yaw = np.unwrap(theta[np.asarray(bins[::-1])])
    return gaussian_filter1d(yaw, 1.0, mode="nearest") if len(yaw) > 1 else yaw


def _centres_in_view(placed, K, poses, width, height) -> np.ndarray:
    """`[F, N]` bool, the object's box centre projects into the frame, in front of it."""
    centres = np.stack([p.centre for p in placed])
    cam = np.einsum("fji,fnj->fni", poses[:, :3, :3], centres[None] - poses[:, None, :3, 3])
    uvw = cam @ K.T
    uv = uvw[..., :2] / np.maximum(uvw[..., 2:], 1e-6)
    return (
        (cam[..., 2] > 0.3)
        & (uv[..., 0] > 0) & (uv[..., 0] < width) & (uv[..., 1] > 0) & (uv[..., 1] < height)
    )  # fmt: skip


# ----------------------------------------------------------------------------- the source


@register("procedural_clips")
class ProceduralClipSource(Source):
    """Walks through furnished polygon rooms, rendered on the fly (deterministic per `seed`).

    Options:
      num_scenes: how many walks the source lists (default 32).
      seed: base seed; scene `i` uses `np.random.default_rng([seed, i])` (default 0).
      num_frames: clip length (default 16); `frames="clip"` renders just these.
      frames: "clip" (default) or "all" (every frame of the walk).
      fps: frames per second of the walk (default 2).
      speed: walking speed, m/s (default 0.5).
      width, height: image size (default 160 x 120: small for speed, see docs/multi_view.md).
      room_shapes: comma-separated shapes to draw from (default "l_shape,alcove,rect").
      min_objects, max_objects: furniture count range (default 5..12).
      wall_clearance, object_clearance: metres the camera keeps (default 0.5, 0.4).
      attempts: walks tried per room, the best-covering one kept (default 4).
      image_format: "png" (default) or "jpeg".
      mesh_dir, mesh_fraction: user meshes mixed in, as for the `procedural` source.
    """

    OPTIONS = (
        ("num_scenes", 32),
        ("seed", 0),
        ("num_frames", 16),
        ("frames", "clip"),
        ("fps", 2.0),
        ("speed", 0.5),
        ("width", 160),
        ("height", 120),
        ("room_shapes", ",".join(ROOM_SHAPES)),
        ("min_objects", 5),
        ("max_objects", 12),
        ("wall_clearance", 0.5),
        ("object_clearance", 0.4),
        ("attempts", 4),
        ("image_format", "png"),
        ("mesh_dir", ""),
        ("mesh_fraction", 0.3),
    )

    def __init__(self, root: str | None = None, **options):
        super().__init__(root or "", **options)
        get = dict(self.OPTIONS) | options
        self.num_scenes = int(get["num_scenes"])
        self.seed = int(get["seed"])
        self.num_frames = int(get["num_frames"])
        self.frames = str(get["frames"])
        self.fps, self.speed = float(get["fps"]), float(get["speed"])
        self.width, self.height = int(get["width"]), int(get["height"])
        shapes = get["room_shapes"]
        self.room_shapes = [
            s.strip() for s in (shapes.split(",") if isinstance(shapes, str) else shapes)
        ]
        self.count = (int(get["min_objects"]), int(get["max_objects"]) + 1)
        self.wall_clearance = float(get["wall_clearance"])
        self.object_clearance = float(get["object_clearance"])
        self.attempts = int(get["attempts"])
        self.image_format = str(get["image_format"]).lower()
        for name, value, allowed in (
            ("frames", self.frames, ("clip", "all")),
            ("image_format", self.image_format, ("png", "jpeg")),
        ):
            if value not in allowed:
                raise UsageError(
                    f"procedural_clips: {name} must be one of {allowed}, got {value!r}"
                )
        unknown = sorted(set(self.room_shapes) - set(ROOM_SHAPES))
        if unknown or not self.room_shapes:
            raise UsageError(f"procedural_clips: room_shapes {unknown} not in {ROOM_SHAPES}")
        if not 1 <= self.count[0] < self.count[1]:
            raise UsageError("procedural_clips: need 1 <= min_objects <= max_objects")
        self._furnisher = _PolygonFurnisher(
            None, mesh_dir=get["mesh_dir"], mesh_fraction=get["mesh_fraction"]
        )

    def scene_ids(self) -> list[str]:
        return [f"room_{i:06d}" for i in range(self.num_scenes)]

    def load_clip(self, scene_id: str) -> clip_lib.Clip:
        """The scene's clip: `sample_clip(load(scene_id), num_frames)`."""
        return clip_lib.sample_clip(self.load(scene_id), self.num_frames)

    def build(self, scene_id: str):
        """`(room, placed, trajectory, K, rng)` of a scene, before rendering."""
        try:
            index = int(scene_id.rsplit("_", 1)[1])
        except (IndexError, ValueError):
            raise SceneSkip(f"procedural_clips: bad scene id {scene_id!r}") from None
        rng = np.random.default_rng([self.seed, index])
        hfov = math.radians(float(rng.uniform(60.0, 75.0)))
        f = 0.5 * self.width / math.tan(hfov / 2)
        K = np.array([[f, 0, self.width / 2], [0, f, self.height / 2], [0, 0, 1.0]])
        for _ in range(20):
            room = sample_room(rng, self.room_shapes[int(rng.integers(len(self.room_shapes)))])
            placed = self._furnisher._furnish(room, rng, count=self.count)
            if not placed:
                continue
            footprints = footprints_of(placed)
            best, best_seen = None, -1
            for _ in range(self.attempts):
                try:
                    traj = walk(
                        room,
                        footprints,
                        rng,
                        fps=self.fps,
                        speed=self.speed,
                        min_frames=self.num_frames,
                        wall_clearance=self.wall_clearance,
                        object_clearance=self.object_clearance,
                        targets=np.stack([p.centre for p in placed]),
                        hfov=hfov,
                    )
                except NoWalk:
                    continue
                seen = int(
                    _centres_in_view(placed, K, traj.world_from_cam, self.width, self.height)
                    .any(0)
                    .sum()
                )
                if seen > best_seen:
                    best, best_seen = traj, seen
                if seen == len(placed):
                    break
            if best is not None:
                return room, placed, best, K, rng
        raise SceneSkip(f"procedural_clips: {scene_id}: no walkable room in 20 tries")

    def load(self, scene_id: str) -> Scene:
        room, placed, traj, K, rng = self.build(scene_id)
        count = len(traj.time)
        if self.frames == "clip":
            picked = clip_lib.sample_frame_indices(count, self.num_frames, "uniform")
        else:
            picked = np.arange(count)
        frame_ids = [f"frame_{k:04d}" for k in picked]
        cams = [(K, traj.world_from_cam[k]) for k in picked]
        objects, frame_list = procedural.render_views(
            room_meshes(room, rng), placed, cams, frame_ids, self.width, self.height,
            view_chunk=16,
        )  # fmt: skip
        if self.image_format == "jpeg":
            for frame in frame_list:
                buf = io.BytesIO()
                Image.open(io.BytesIO(frame.image_bytes)).convert("RGB").save(
                    buf, format="JPEG", quality=92
                )
                frame.image_bytes = buf.getvalue()
        return Scene(
            scene_id=scene_id,
            source=self.name,
            frames=frame_list,
            objects=objects,
            meta={
                "seed": self.seed,
                "index": int(scene_id.rsplit("_", 1)[1]),
                "room_shape": room.shape,
                "room_polygon": room.polygon.tolist(),
                "room_height": room.height,
                "room_area": room.area,
                "room_construction": room.construction,
                "room_instance_id": procedural.ROOM_ID,
                "footprints": footprints_of(placed),
                "clearance": {"wall": self.wall_clearance, "object": self.object_clearance},
                "instance_masks": True,
                "fps": self.fps,
                "frame_time": {
                    i: float(traj.time[k]) for i, k in zip(frame_ids, picked, strict=True)
                },
                "trajectory": {
                    "time": traj.time.tolist(),
                    "position": traj.position.tolist(),
                    "yaw": traj.yaw.tolist(),
                    "path": traj.path.tolist(),
                },
                "estimators": {"depth": "rendered", "intrinsics": "exact", "gravity": "exact"},
                "ground_truth": procedural.truth_entries(objects),
            },
        )


__all__ = [
    "ROOM_SHAPES",
    "NoWalk",
    "ProceduralClipSource",
    "Room",
    "Trajectory",
    "footprints_of",
    "gaze_schedule",
    "gaze_yaw",
    "plan_path",
    "rect_inside_polygon",
    "room_meshes",
    "sample_room",
    "triangulate_polygon",
    "walk",
]
