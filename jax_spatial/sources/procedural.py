"""Procedural rooms rendered with the JAX rasterizer: scenes with exact ground truth.

Needs no files: `get_source("procedural", None, num_scenes=32, seed=0)`. Each scene is a box
room (textured floor, tinted walls with baseboards, ceiling) furnished with 4-10 objects built
from primitives and composites (`render/meshes.py`), optionally mixed with the user's own meshes
(`mesh_dir`). Every number a question may ask about is known exactly: the objects' oriented 3D
boxes, the cameras, and per view the rendered depth, instance masks and tight 2D boxes.

World frame: the room's, z up, floor at `z = 0`, the room spanning `[0, Lx] x [0, Ly]`.

Sampling, and why:

* Objects stand on the floor or on a support's top (table, low shelf), never interpenetrating:
  floor footprints (oriented rectangles grown by `GAP_M`) are rejection-sampled against each
  other and the walls, and objects on a support keep their footprint inside the support's top
  and apart from each other. A supported object's bottom is exactly the support's top.
* Cameras stand 1.2-1.8 m high (a person's eye or a head-mounted camera), pitch -25..+5 deg
  (looking down into a room more than up), roll -8..+8 deg (hand-held tilt), yaw towards a
  random object plus noise, and a view is kept only when at least `MIN_OBJECTS_IN_VIEW` object
  centres project into the image in front of the camera.
* Colours come from eleven named colours with a small jitter, so the name in a caption is
  always right; sizes are sampled per category within plausible ranges. With `size_spread`
  above 1 each object is also scaled by a log-uniform factor in `[1 / spread, spread]`: then
  the category no longer decides most size comparisons (a table is not always bigger than a
  box), and only the image can tell (the learning benchmark's rooms, `docs/learning.md`).

Captions are unique within the scene where possible: the category alone, then colour +
category, then size + category, then size + colour + category ("small red cylinder"); an
object that none of these singles out gets caption None (its category is then used, and
questions that need a unique reference skip it). Captions carry no article, like categories.

Instance ids in the rendered id map: objects `0..n-1` in annotation order, room surfaces
`ROOM_ID` (not objects: no masks or boxes), -1 where nothing was hit (never inside a room).
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from jax_spatial import masks as mask_lib
from jax_spatial.errors import UserError
from jax_spatial.geometry import frames
from jax_spatial.render import meshes, rasterizer
from jax_spatial.scene import Box3D, Frame, Scene, SceneObject
from jax_spatial.sources import Source, register

COLOURS = {
    "red": (0.80, 0.12, 0.10),
    "green": (0.16, 0.58, 0.22),
    "blue": (0.12, 0.26, 0.80),
    "yellow": (0.93, 0.82, 0.14),
    "white": (0.93, 0.93, 0.91),
    "black": (0.08, 0.08, 0.09),
    "grey": (0.50, 0.50, 0.52),
    "brown": (0.45, 0.28, 0.14),
    "orange": (0.95, 0.48, 0.08),
    "purple": (0.50, 0.18, 0.62),
    "pink": (0.96, 0.56, 0.70),
}
ROOM_ID = 10_000
# Off-white wall paints (warm, cool, beige, sage, grey), one per room.
WALL_TINTS = (
    (0.86, 0.84, 0.78),
    (0.80, 0.84, 0.86),
    (0.88, 0.82, 0.74),
    (0.78, 0.82, 0.76),
    (0.90, 0.88, 0.86),
)
# Clearance between floor footprints: a visible gap keeps boxes apart and objects distinct.
GAP_M = 0.05
# Cameras keep this far from walls and from object footprints so nothing fills the view.
CAMERA_CLEARANCE_M = 0.35
MIN_OBJECTS_IN_VIEW = 3
# Size adjectives need a clear ratio of volumes to the runner-up, or a person would not agree.
SIZE_RATIO = 1.5

# category -> (weight as a floor object, weight as an object on a support)
_CATEGORY_WEIGHTS = {
    "table": (3.0, 0.0),
    "chair": (3.0, 0.0),
    "shelf": (1.5, 0.0),
    "lamp": (1.0, 0.6),
    "box": (2.0, 1.5),
    "ball": (1.5, 1.0),
    "cone": (1.0, 0.6),
    "cylinder": (1.5, 0.8),
    "cup": (0.0, 2.0),
}


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def _make_shape(category: str, on_support: bool, rng) -> meshes.Shape:
    """A randomly sized shape of `category` (small variants for objects on a support)."""
    if category == "table":
        return meshes.table_shape(_u(rng, 0.8, 1.6), _u(rng, 0.6, 0.9), _u(rng, 0.68, 0.78))
    if category == "chair":
        w = _u(rng, 0.40, 0.50)
        return meshes.chair_shape(
            w, w * _u(rng, 0.95, 1.1), _u(rng, 0.42, 0.48), _u(rng, 0.35, 0.50)
        )
    if category == "shelf":
        h = _u(rng, 0.8, 1.8)
        return meshes.shelf_shape(
            _u(rng, 0.6, 1.2), _u(rng, 0.30, 0.40), h, boards=3 if h < 1.2 else 5
        )
    if category == "lamp":
        if on_support:
            return meshes.lamp_shape(_u(rng, 0.06, 0.09), _u(rng, 0.35, 0.5), _u(rng, 0.10, 0.14))
        return meshes.lamp_shape(_u(rng, 0.12, 0.18), _u(rng, 1.2, 1.7), _u(rng, 0.16, 0.24))
    scale = (0.25, 0.6) if on_support else (1.0, 1.0)
    s = _u(rng, *scale) if on_support else 1.0
    if category == "box":
        return meshes.box_shape(np.array([_u(rng, 0.2, 0.6) for _ in range(3)]) * s)
    if category == "ball":
        return meshes.sphere_shape(_u(rng, 0.10, 0.28) * s)
    if category == "cone":
        return meshes.cone_shape(_u(rng, 0.10, 0.25) * s, _u(rng, 0.3, 0.7) * s)
    if category == "cylinder":
        return meshes.cylinder_shape(_u(rng, 0.08, 0.22) * s, _u(rng, 0.3, 0.9) * s)
    if category == "cup":
        return meshes.cup_shape(_u(rng, 0.035, 0.05), _u(rng, 0.08, 0.12))
    raise ValueError(f"unknown category {category!r}")


def _footprint(centre_xy, yaw, size_xy):
    """`[4, 2]` corners of an oriented rectangle."""
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, -s], [s, c]])
    signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    return centre_xy + (signs * (0.5 * np.asarray(size_xy))) @ rot.T


def _rects_overlap(a, b) -> bool:
    """Separating-axis test for two convex `[4, 2]` polygons (touching counts as overlap)."""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def _rgb(name, rng):
    """The named colour with a small per-channel jitter (keeps the name right)."""
    return np.clip(np.asarray(COLOURS[name]) * rng.uniform(0.92, 1.06, 3), 0.0, 1.0)


def _floor_texture(rng, size=256):
    """A tiled or planked floor texture, `[size, size, 3]` uint8, tiling seamlessly."""
    base = np.asarray(
        [
            (0.55, 0.38, 0.22),
            (0.62, 0.60, 0.56),
            (0.42, 0.30, 0.20),
            (0.70, 0.66, 0.58),
            (0.35, 0.36, 0.40),
        ][rng.integers(5)]
    )
    img = np.empty((size, size, 3))
    if rng.random() < 0.5:  # checker tiles: 4x4 per texture repeat
        cell = size // 4
        yy, xx = np.mgrid[:size, :size] // cell
        tone = np.where((yy + xx) % 2 == 0, 1.0, 0.78)
        img[:] = base * tone[..., None]
        grout = ((np.mgrid[:size, :size] % cell) < 2).any(0)
        img[grout] *= 0.7
    else:  # planks: 8 boards with per-board tone and thin gaps
        board = size // 8
        rows = np.arange(size) // board
        tones = rng.uniform(0.8, 1.1, 8)
        img[:] = base * tones[rows][:, None, None]
        img[(np.arange(size) % board) < 2] *= 0.6
        grain = 0.04 * np.sin(np.arange(size) * 0.35 + rng.uniform(0, 6))[None, :, None]
        img *= 1.0 + grain
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _room_meshes(size, rng):
    """Floor, walls, baseboards and ceiling of an `[Lx, Ly, Lz]` room: list of (mesh, tex?)."""
    lx, ly, lz = size
    tile_m = _u(rng, 1.2, 2.0)  # metres per texture repeat
    floor = meshes.Mesh(
        vertices=[(0, 0, 0), (lx, 0, 0), (lx, ly, 0), (0, ly, 0)],
        faces=[(0, 1, 2), (0, 2, 3)],
        uv=np.array([(0, 0), (lx, 0), (lx, ly), (0, ly)]) / tile_m,
        texture=_floor_texture(rng),
        face_colors=np.ones((2, 3)),
    )
    wall_rgb = np.asarray(WALL_TINTS[rng.integers(len(WALL_TINTS))])
    parts = []
    corners = [(0, 0), (lx, 0), (lx, ly), (0, ly)]
    for i in range(4):
        (x0, y0), (x1, y1) = corners[i], corners[(i + 1) % 4]
        wall = meshes.Mesh(
            vertices=[(x0, y0, 0), (x1, y1, 0), (x1, y1, lz), (x0, y0, lz)],
            faces=[(0, 1, 2), (0, 2, 3)],
        )
        # Neighbouring walls differ a little in tone, as painted walls under one light do.
        parts.append(wall.with_color(wall_rgb * (0.94 + 0.04 * (i % 2))))
    board_rgb = np.asarray((0.95, 0.95, 0.93)) * _u(rng, 0.5, 1.0)
    t, h = 0.015, 0.08
    parts += [
        meshes.box((lx, t, h), (lx / 2, t / 2, h / 2)).with_color(board_rgb),
        meshes.box((lx, t, h), (lx / 2, ly - t / 2, h / 2)).with_color(board_rgb),
        meshes.box((t, ly - 2 * t, h), (t / 2, ly / 2, h / 2)).with_color(board_rgb),
        meshes.box((t, ly - 2 * t, h), (lx - t / 2, ly / 2, h / 2)).with_color(board_rgb),
    ]
    ceiling = meshes.Mesh(
        vertices=[(0, 0, lz), (lx, 0, lz), (lx, ly, lz), (0, ly, lz)], faces=[(0, 2, 1), (0, 3, 2)]
    ).with_color((0.95, 0.95, 0.95))
    return [floor, meshes.concatenate(parts + [ceiling])]


class _Placed:
    """One placed object while a scene is being built."""

    def __init__(self, shape, colour, rgb, centre, yaw, shiny, support=None, source_mesh=None):
        self.shape, self.colour, self.rgb = shape, colour, rgb
        self.centre, self.yaw, self.shiny, self.support = centre, yaw, shiny, support
        self.source_mesh = source_mesh
        self.footprint = _footprint(centre[:2], yaw, shape.extent[:2])
        self.children: list[np.ndarray] = []  # footprints of objects standing on it

    @property
    def world_from_local(self):
        m = np.eye(4)
        m[:3, :3] = np.asarray(frames.rotation_z(self.yaw), np.float64)
        m[:3, 3] = self.centre - np.array([0, 0, self.shape.extent[2] / 2])
        return m

    def mesh(self) -> meshes.Mesh:
        mesh = self.shape.mesh
        if self.rgb is not None:
            colours = np.broadcast_to(self.rgb, (len(mesh.faces), 3)).copy()
            if self.shape.accent is not None:
                colours[self.shape.accent] = (0.55, 0.55, 0.57)
            mesh = meshes.Mesh(
                mesh.vertices, mesh.faces, face_colors=colours, uv=mesh.uv, texture=mesh.texture
            )
        mesh.specular = 0.6 if self.shiny else 0.0
        return mesh


@register("procedural")
class ProceduralSource(Source):
    """Randomly furnished rooms rendered on the fly (deterministic per `seed`).

    Options:
      num_scenes: how many scenes the source lists (default 32).
      seed: base seed; scene `i` uses `np.random.default_rng([seed, i])` (default 0).
      views_per_scene: cameras per scene (default 3).
      width, height: image size (default 320 x 240).
      mesh_dir: a folder of mesh files (GLB, OBJ, PLY, ...) mixed in as extra objects, each
        scaled to a plausible size; the category is the file name ("duck.glb" -> "duck").
      mesh_fraction: chance that a floor or support object is a user mesh when `mesh_dir`
        is set (default 0.3).
      size_spread: each object scaled by a factor drawn log-uniformly from
        `[1 / size_spread, size_spread]` (default 1: none; at most 2.2 m tall on the floor,
        1 m on a support).
    """

    OPTIONS = (
        ("num_scenes", 32),
        ("seed", 0),
        ("views_per_scene", 3),
        ("width", 320),
        ("height", 240),
        ("mesh_dir", ""),
        ("mesh_fraction", 0.3),
        ("size_spread", 1.0),
    )

    def __init__(self, root: str | None = None, **options):
        super().__init__(root or "", **options)
        self.num_scenes = int(options.get("num_scenes", 32))
        self.seed = int(options.get("seed", 0))
        self.views = int(options.get("views_per_scene", 3))
        self.width = int(options.get("width", 320))
        self.height = int(options.get("height", 240))
        self.mesh_fraction = float(options.get("mesh_fraction", 0.3))
        spread = options.get("size_spread", 1.0)
        try:
            self.size_spread = float(spread)
        except (TypeError, ValueError):
            self.size_spread = math.nan
        if not (self.size_spread >= 1.0 and math.isfinite(self.size_spread)):
            raise UserError(f"size_spread must be a number of at least 1, not {spread!r}")
        mesh_dir = options.get("mesh_dir")
        self.mesh_paths = meshes.find_meshes(mesh_dir) if mesh_dir else []
        self._mesh_cache: dict[int, meshes.Mesh] = {}

    def scene_ids(self) -> list[str]:
        return [f"proc_{i:06d}" for i in range(self.num_scenes)]

    def load(self, scene_id: str) -> Scene:
        index = int(scene_id.rsplit("_", 1)[1])
        rng = np.random.default_rng([self.seed, index])
        room = np.array([_u(rng, 4.0, 7.0), _u(rng, 4.0, 7.0), _u(rng, 2.6, 3.0)])
        placed = self._furnish(room, rng)
        cams = [self._camera(room, placed, rng) for _ in range(self.views)]
        return self._render_scene(scene_id, index, room, placed, cams, rng)

    # ------------------------------------------------------------------ furnishing

    def _user_mesh(self, rng, on_support):
        k = int(rng.integers(len(self.mesh_paths)))
        if k not in self._mesh_cache:
            self._mesh_cache[k] = meshes.load_mesh(self.mesh_paths[k])
        size = _u(rng, 0.12, 0.25) if on_support else _u(rng, 0.3, 0.8)
        mesh = meshes.normalised(self._mesh_cache[k], size)
        lo, hi = mesh.bounds
        name = self.mesh_paths[k].stem.lower().replace("_", " ").replace("-", " ")
        category = "".join(ch for ch in name if not ch.isdigit()).strip() or "object"
        return meshes.Shape(category, mesh, hi - lo)

    def _spread(self, shape, on_support, rng):
        """`shape` scaled by this source's size spread (unchanged, no draw, at spread 1)."""
        if self.size_spread <= 1.0:
            return shape
        log = math.log(self.size_spread)
        factor = math.exp(_u(rng, -log, log))
        tallest = 1.0 if on_support else 2.2  # under any ceiling (2.6-3.0 m), on a support too
        factor = min(factor, tallest / max(float(shape.extent[2]), 1e-9))
        return meshes.scaled(shape, factor)

    def _sample_shape(self, rng, on_support):
        if self.mesh_paths and rng.random() < self.mesh_fraction:
            return self._spread(self._user_mesh(rng, on_support), on_support, rng), None
        cats = list(_CATEGORY_WEIGHTS)
        w = np.array([_CATEGORY_WEIGHTS[c][1 if on_support else 0] for c in cats])
        category = cats[int(rng.choice(len(cats), p=w / w.sum()))]
        colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        return self._spread(_make_shape(category, on_support, rng), on_support, rng), colour

    def _furnish(self, room, rng, count=(4, 11)) -> list[_Placed]:
        """Places `count[0]..count[1] - 1` objects (fewer when the room fills up)."""
        target = int(rng.integers(*count))
        placed: list[_Placed] = []
        if rng.random() < 0.75:  # most rooms get a table to put things on
            shape = self._spread(_make_shape("table", False, rng), False, rng)
            colour = ["brown", "white", "black", "grey"][int(rng.integers(4))]
            self._place_on_floor(room, placed, shape, colour, rng)
        for _ in range(200):
            if len(placed) >= target:
                break
            supports = [
                p for p in placed if p.shape.support is not None and p.shape.support[0] <= 1.2
            ]
            on_support = bool(supports) and rng.random() < 0.4
            shape, colour = self._sample_shape(rng, on_support)
            if on_support:
                parent = supports[int(rng.integers(len(supports)))]
                self._place_on_support(placed, parent, shape, colour, rng)
            else:
                self._place_on_floor(room, placed, shape, colour, rng)
        return placed

    def _finish(self, shape, colour, rng):
        rgb = _rgb(colour, rng) if colour is not None else None
        shiny = (
            colour is not None
            and shape.category not in ("table", "shelf", "chair")
            and (rng.random() < 0.35)
        )
        return rgb, shiny

    def _place_on_floor(self, room, placed, shape, colour, rng) -> bool:
        margin = 0.1
        for _ in range(30):
            yaw = _u(rng, -math.pi, math.pi)
            if shape.category == "shelf" or rng.random() < 0.3:
                yaw = float(rng.integers(4)) * math.pi / 2  # furniture tends to line up
            half = 0.5 * np.hypot(*shape.extent[:2])
            lo, hi = half + margin, room[:2] - half - margin
            if np.any(lo > hi):
                return False
            xy = rng.uniform(lo, hi)
            fp = _footprint(xy, yaw, shape.extent[:2] + GAP_M)
            if any(_rects_overlap(fp, p.footprint) for p in placed if p.support is None):
                continue
            rgb, shiny = self._finish(shape, colour, rng)
            centre = np.array([xy[0], xy[1], shape.extent[2] / 2])
            placed.append(_Placed(shape, colour, rgb, centre, yaw, shiny))
            return True
        return False

    def _place_on_support(self, placed, parent, shape, colour, rng) -> bool:
        top, sx, sy = parent.shape.support
        inner = np.array([sx, sy]) - 0.04  # keep off the very edge
        for _ in range(20):
            local_yaw = _u(rng, -math.pi, math.pi)
            local = _footprint(np.zeros(2), local_yaw, shape.extent[:2] + 0.02)
            room_left = inner / 2 - np.abs(local).max(0)
            if np.any(room_left <= 0):
                return False
            local_xy = rng.uniform(-room_left, room_left)
            c, s = math.cos(parent.yaw), math.sin(parent.yaw)
            xy = parent.centre[:2] + np.array([[c, -s], [s, c]]) @ local_xy
            yaw = parent.yaw + local_yaw
            fp = _footprint(xy, yaw, shape.extent[:2] + 0.02)
            if any(_rects_overlap(fp, other) for other in parent.children):
                continue
            parent.children.append(fp)
            rgb, shiny = self._finish(shape, colour, rng)
            # The support's top is its box's top face: the object's bottom lies exactly on it.
            base = parent.centre[2] + parent.shape.extent[2] / 2
            assert abs(base - top) < 1e-9
            centre = np.array([xy[0], xy[1], base + shape.extent[2] / 2])
            placed.append(_Placed(shape, colour, rgb, centre, yaw, shiny, support=parent))
            return True
        return False

    # ------------------------------------------------------------------ cameras

    def _camera(self, room, placed, rng):
        """`(K [3, 3], world_from_cam [4, 4])` of one sampled view."""
        w, h = self.width, self.height
        best, best_count = None, -1
        need = min(MIN_OBJECTS_IN_VIEW, len(placed))
        for _ in range(100):
            hfov = math.radians(_u(rng, 55.0, 70.0))
            f = 0.5 * w / math.tan(hfov / 2)
            K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
            xy = rng.uniform(CAMERA_CLEARANCE_M, room[:2] - CAMERA_CLEARANCE_M)
            blocked = any(
                _rects_overlap(_footprint(xy, 0.0, (2 * CAMERA_CLEARANCE_M,) * 2), p.footprint)
                for p in placed
                if p.support is None
            )
            if blocked:
                continue
            target = placed[int(rng.integers(len(placed)))].centre if placed else room / 2
            yaw = math.atan2(target[1] - xy[1], target[0] - xy[0]) + math.radians(rng.normal(0, 12))
            pitch, roll = math.radians(_u(rng, -25, 5)), math.radians(_u(rng, -8, 8))
            z = _u(rng, 1.2, 1.8)
            world_from_cam = np.eye(4)
            world_from_cam[:3, :3] = np.asarray(
                frames.rotation_z(yaw - math.pi / 2) @ frames.view_from_cam_rotation(pitch, roll),
                np.float64,
            )
            world_from_cam[:3, 3] = (xy[0], xy[1], z)
            count = self._count_in_view(placed, K, world_from_cam)
            if count > best_count:
                best, best_count = (K, world_from_cam), count
            if count >= need:
                break
        return best

    def _count_in_view(self, placed, K, world_from_cam):
        if not placed:
            return 0
        centres = np.stack([p.centre for p in placed])
        cam = (centres - world_from_cam[:3, 3]) @ world_from_cam[:3, :3]
        front = cam[:, 2] > 0.5
        uvw = cam @ K.T
        uv = uvw[:, :2] / np.maximum(uvw[:, 2:], 1e-6)
        inside = (uv[:, 0] > 0.05 * self.width) & (uv[:, 0] < 0.95 * self.width)
        inside &= (uv[:, 1] > 0.05 * self.height) & (uv[:, 1] < 0.95 * self.height)
        return int(np.sum(front & inside))

    # ------------------------------------------------------------------ rendering

    def _render_scene(self, scene_id, index, room, placed, cams, rng) -> Scene:
        frame_ids = [f"view_{v:02d}" for v in range(len(cams))]
        objects, frame_list = render_views(
            _room_meshes(room, rng), placed, cams, frame_ids, self.width, self.height
        )
        return Scene(
            scene_id=scene_id,
            source="procedural",
            frames=frame_list,
            objects=objects,
            meta={
                "seed": self.seed,
                "index": index,
                "room_size": room.tolist(),
                "room_instance_id": ROOM_ID,
                # What a lifting of these views would run on: all of it exact by construction.
                "estimators": {"depth": "rendered", "intrinsics": "exact", "gravity": "exact"},
                # Read by `writers.ground_truth` (world-frame boxes, per-view pixel boxes).
                "ground_truth": truth_entries(objects),
            },
        )


def scene_objects(placed: list[_Placed]) -> list[SceneObject]:
    """The placed objects as `SceneObject`s: exact world boxes, attributes, unique captions."""
    objects = []
    for i, p in enumerate(placed):
        rot = np.asarray(frames.rotation_z(p.yaw), np.float64)
        attributes = (p.colour, "shiny" if p.shiny else "matte") if p.colour else ()
        objects.append(
            SceneObject(
                index=i,
                category=p.shape.category,
                box3d=Box3D(centre=p.centre.copy(), extent=p.shape.extent.copy(), rotation=rot),
                attributes=attributes,
                extra={"support": placed.index(p.support) if p.support is not None else None},
            )
        )
    for obj, caption in zip(objects, _captions(placed), strict=True):
        obj.caption = caption
    return objects


def render_views(
    room_meshes, placed, cams, frame_ids, width, height, view_chunk: int | None = None
) -> tuple[list[SceneObject], list[Frame]]:
    """Renders a furnished room from `cams` into objects (with masks) and PNG frames.

    Args:
      room_meshes: meshes of the room's surfaces (instance `ROOM_ID`).
      placed: the objects (instance ids `0..n-1` in this order).
      cams: `(K [3, 3], world_from_cam [4, 4])` per view.
      frame_ids: one id per view.
      width, height: image size.
      view_chunk: render at most this many views per compiled call, the last call padded to
        the same count, so scenes with different view counts share one compiled renderer;
        None renders all views in one call.

    Returns:
      `(objects, frames)`: per object its per-frame instance mask (RLE), tight pixel box and
      pixel count (`extra["pixels"]`) where it is seen; frames with depth, exhaustive.
    """
    items = [(m, np.eye(4), ROOM_ID) for m in room_meshes]
    items += [(p.mesh(), p.world_from_local, i) for i, p in enumerate(placed)]
    tris, textures = meshes.pack(items, min_triangles=1024)
    K = np.stack([c[0] for c in cams])
    poses = np.stack([c[1] for c in cams])
    chunk = len(cams) if view_chunk is None else int(view_chunk)
    rgb, depth, ids = [], [], []
    for start in range(0, len(cams), chunk):
        take = np.arange(start, start + chunk).clip(max=len(cams) - 1)
        out = rasterizer.render(tris, textures, K[take], poses[take], height=height, width=width)
        keep = min(chunk, len(cams) - start)
        rgb.append(np.asarray(out.rgb)[:keep])
        depth.append(np.asarray(out.depth, np.float32)[:keep])
        ids.append(np.asarray(out.instance)[:keep])
    rgb, depth, ids = np.concatenate(rgb), np.concatenate(depth), np.concatenate(ids)

    objects = scene_objects(placed)
    frame_list = []
    for v, frame_id in enumerate(frame_ids):
        buf = io.BytesIO()
        Image.fromarray((rgb[v] * 255.0).round().astype(np.uint8)).save(buf, format="PNG")
        frame_list.append(
            Frame(
                frame_id=frame_id,
                width=width,
                height=height,
                K=K[v],
                world_from_cam=poses[v],
                image_bytes=buf.getvalue(),
                depth=depth[v],
                exhaustive=True,
            )
        )
        for i, obj in enumerate(objects):
            mask = ids[v] == i
            if not mask.any():
                continue
            obj.boxes2d[frame_id] = mask_lib.mask_box(mask).astype(np.float64)
            obj.masks[frame_id] = mask_lib.encode_rle(mask)
            obj.extra.setdefault("pixels", {})[frame_id] = int(mask.sum())
    return objects, frame_list


def truth_entries(objects: list[SceneObject]) -> list[dict]:
    """The exact ground truth, kept apart from the objects: a lifting run discards their boxes
    (and drops objects it cannot lift), the ground-truth file still needs them."""
    return [
        {
            "index": o.index,
            "category": o.category,
            "caption": o.caption,
            "box3d": o.box3d,
            "boxes2d": dict(o.boxes2d),
            "pixels": dict(o.extra.get("pixels", {})),
        }
        for o in objects
    ]


def _captions(placed: list[_Placed]) -> list[str | None]:
    """Shortest unique phrase per object: category, colour, size, then size and colour."""
    volume = [float(np.prod(p.shape.extent)) for p in placed]

    def size_word(i, group):
        if len(group) < 2:
            return None
        ranked = sorted(group, key=lambda j: volume[j])
        if i == ranked[0] and volume[ranked[1]] >= SIZE_RATIO * volume[i]:
            return "small"
        if i == ranked[-1] and volume[i] >= SIZE_RATIO * volume[ranked[-2]]:
            return "large"
        return None

    captions = []
    for i, p in enumerate(placed):
        cat = p.shape.category
        same = [j for j, q in enumerate(placed) if q.shape.category == cat]
        same_colour = [j for j in same if placed[j].colour == p.colour]
        if len(same) == 1:
            captions.append(cat)
        elif p.colour is not None and len(same_colour) == 1:
            captions.append(f"{p.colour} {cat}")
        elif (word := size_word(i, same)) is not None:
            captions.append(f"{word} {cat}")
        elif p.colour is not None and (word := size_word(i, same_colour)) is not None:
            captions.append(f"{word} {p.colour} {cat}")
        else:
            captions.append(None)
    return captions
