"""Rotation stimuli: one asymmetric object in two views with a known yaw change.

`get_source("rotation_pairs", None, num_pairs=32)` draws procedural furniture composites
(chair, cup, shelf, lamp, table, box, cylinder, cone); `mesh_dir=...` draws the meshes of a
folder instead (GLB, OBJ, PLY, ... each scaled to 0.4-0.9 m, category from the file name).
Each scene is one pair, frames `"before"` and `"after"`, and `sample_clip(scene, 2)` its
two-frame clip; `scene.meta["rotation"]` holds the answer.

Kinds (`kind`):

* `"object"`: the camera stays, the object turns about its vertical axis by
  `yaw_change_deg`;
* `"camera"`: the object stays, the camera orbits it by `yaw_change_deg` about the
  object's vertical axis, still looking at it (its own yaw changes by the same angle).

Angles are signed, anticlockwise seen from above positive (right-handed about +z), a
multiple of 15 degrees with magnitude 30-180.

World frame: the object's. The object sits at the origin (base on `z = 0`) with the same box
in both frames, and each frame's `world_from_cam` is the camera relative to it, so per-view
geometry (which side of the object faces the camera) is right in both frames. For `"object"`
pairs the second camera is therefore the first turned by `-yaw_change_deg` about the
object's axis; only the floor (not an object) shows that it was the object that turned.

**Symmetry is measured, not assumed** (`measure_symmetry`). A turn can be read off two views
only when no other answer explains them equally well. The object is rendered alone, from the
pair's camera, at the yaws (relative to the camera) of its two views, `a` and `b = a + d`,
and at the yaws other answers would give: `a` and `b` turned by 90, 180 and 270 degrees
(rotational symmetry: a box or table looks the same after a half turn, a cylinder after any)
and `a - d` (the same turn the other way, which a mirror-symmetric object seen head-on
cannot tell apart). Two views are compared pixel by pixel over the union of the object's
masks: a pixel *tells them apart* when only one view covers it or its colours differ by more
than `PIXEL_TOL` (0.1 of full scale, any channel). The object is refused when, for any of
these comparisons, at most `SYMMETRY_CHANGED` (8%) of the union's pixels tell the views apart.

Why these numbers, measured at 160 x 120 (procedural composites: 15 random draws of camera,
size and yaw each, half and quarter turns; the shared sample meshes: 3 draws each):

* exactly symmetric meshes re-render almost identically, at most 0.2% of pixels apart (a
  cylinder, cone or lamp at any turn; a box or table at a half turn; only silhouette pixels
  differ);
* nearly symmetric views differ in 3.5-7%: an untextured soda bottle (trimesh's `fuze.obj`)
  3.5%, a crate with the same texture on every side 4-7%, a shelf seen almost side-on, where
  only a sliver of its open front shows, 4.5-6%. A person would have to hunt for the
  difference, so these are refused on purpose;
* clearly asymmetric views differ in 10% and more: a textured box whose logo turns with it
  10-19%, a shelf's open front against its closed back 15-40%, a cup by its handle 21-47%, a
  chair 25-78%, the scanned and modelled meshes (bunny, duck, monkey, truck, chair) 40-77%.

A mean colour difference would not do: a shelf's open front and closed back differ in a
fifth of its pixels but by only 2% on average, so a mean threshold refuses views a person
tells apart at a glance. Instance-mask IoU is reported beside each score.
A refused candidate is recorded in `meta["rotation"]["refused"]` with its scores and the
next one is drawn; so is one whose views show it on fewer than 1% of the pixels (a sword
seen edge-on).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jax_spatial import masks as mask_lib
from jax_spatial.errors import UsageError, UserError
from jax_spatial.geometry import frames as frames_lib
from jax_spatial.render import meshes, rasterizer
from jax_spatial.scene import Box3D, Frame, Scene, SceneObject, SceneSkip
from jax_spatial.sources import Source, procedural, register

SYMMETRY_CHANGED = 0.08
PIXEL_TOL = 0.1
ROTATION_KINDS = ("object", "camera")
DEFAULT_CATEGORIES = ("chair", "cup", "shelf", "lamp", "table", "box", "cylinder", "cone")
TURN_STEP_DEG = 15
TURN_RANGE_DEG = (30, 180)
# Rendering: a 50 degree lens; the object fills about 60% of the image's height.
HFOV_DEG = 50.0
FILL = 0.6
ELEVATION_DEG = (20.0, 40.0)
BACKGROUND = (0.78, 0.82, 0.87)
FLOOR_HALF_M = 15.0
OBJECT_ID = 0
# Each view of a pair must show the object on at least 1% of its pixels.
MIN_OBJECT_FRACTION = 0.01


def look_at(eye, target) -> np.ndarray:
    """`[4, 4]` world_from_cam of an OpenCV camera at `eye` looking at `target` (z up, no roll)."""
    eye, target = np.asarray(eye, np.float64), np.asarray(target, np.float64)
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, forward], axis=1)
    pose[:3, 3] = eye
    return pose


def turn_about_z(angle_deg: float) -> np.ndarray:
    """`[4, 4]` rotation about the world's z axis (through the origin), degrees."""
    pose = np.eye(4)
    pose[:3, :3] = np.asarray(frames_lib.rotation_z(math.radians(angle_deg)), np.float64)
    return pose


def stimulus_camera(extent, width: int, height: int, rng):
    """`(K [3, 3], world_from_cam [4, 4])` looking at an object at the origin.

    The camera stands at a random azimuth, 20-40 degrees above the object's centre, far enough
    that the object's bounding sphere spans about `FILL` of the image height.
    """
    extent = np.asarray(extent, np.float64)
    f = 0.5 * width / math.tan(math.radians(HFOV_DEG) / 2)
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    vfov = 2 * math.atan(0.5 * height / f)
    radius = 0.5 * float(np.linalg.norm(extent))
    distance = max(radius / math.tan(FILL * vfov / 2), radius + 0.2)
    azimuth = float(rng.uniform(0, 2 * math.pi))
    elevation = math.radians(float(rng.uniform(*ELEVATION_DEG)))
    target = np.array([0.0, 0.0, extent[2] / 2])
    eye = target + distance * np.array(
        [
            math.cos(elevation) * math.cos(azimuth),
            math.cos(elevation) * math.sin(azimuth),
            math.sin(elevation),
        ]
    )
    return K, look_at(eye, target)


def _floor(rng) -> meshes.Mesh:
    h = FLOOR_HALF_M
    return meshes.Mesh(
        vertices=[(-h, -h, 0), (h, -h, 0), (h, h, 0), (-h, h, 0)],
        faces=[(0, 1, 2), (0, 2, 3)],
        uv=np.array([(-h, -h), (h, -h), (h, h), (-h, h)]),  # one texture repeat per metre
        texture=procedural._floor_texture(rng),
        face_colors=np.ones((2, 3)),
    )


def render_object(mesh, yaws_deg, K, world_from_cam, width, height, floor=None):
    """Renders the object at the origin turned to each yaw, from one camera.

    Args:
      mesh: the object, local frame (z up, base on `z = 0`, centred footprint).
      yaws_deg: `[V]` object yaws about z, degrees.
      K, world_from_cam: the camera.
      floor: an optional floor mesh (instance `procedural.ROOM_ID`), not turned.

    Returns:
      `(rgb [V, H, W, 3] float32, mask [V, H, W] bool, depth [V, H, W] float32)`.
    """
    rgb, mask, depth = [], [], []
    # Every yaw has the same triangle count and textures, so one compiled renderer serves all.
    for yaw in yaws_deg:
        items = [(mesh, turn_about_z(float(yaw)), OBJECT_ID)]
        if floor is not None:
            items.append((floor, np.eye(4), procedural.ROOM_ID))
        tris, textures = meshes.pack(items, min_triangles=1024)
        out = rasterizer.render(
            tris, textures, K, world_from_cam, height=height, width=width, background=BACKGROUND
        )
        rgb.append(np.asarray(out.rgb))
        mask.append(np.asarray(out.instance) == OBJECT_ID)
        depth.append(np.asarray(out.depth, np.float32))
    return np.stack(rgb), np.stack(mask), np.stack(depth)


def compare_views(rgb_a, mask_a, rgb_b, mask_b, pixel_tol: float = PIXEL_TOL):
    """`(mask IoU, fraction of the masks' union that tells the views apart)` (module doc).

    A union pixel tells them apart when only one mask covers it, or when both do and some
    colour channel differs by more than `pixel_tol`.
    """
    union = mask_a | mask_b
    if not union.any():
        return 1.0, 0.0
    both = mask_a & mask_b
    differs = np.abs(np.asarray(rgb_a) - np.asarray(rgb_b)).max(axis=-1) > pixel_tol
    apart = union & (~both | differs)
    return float(both.sum() / union.sum()), float(apart.sum() / union.sum())


@dataclasses.dataclass
class SymmetryReport:
    """What `measure_symmetry` found.

    Attributes:
      ambiguous: some other answer explains the two views as well (the object is refused).
      comparisons: one dict per tested ambiguity: `name`, `yaw_deg` (the view it stands in
        for) and `other_yaw_deg`, `iou`, `changed` (the fraction telling them apart),
        `match`.
      pixels: the object's pixel count in the pair's first and second view.
    """

    ambiguous: bool
    comparisons: list[dict]
    pixels: tuple[int, int] = (0, 0)

    @property
    def worst(self) -> dict | None:
        """The comparison closest to a match: the one with the fewest pixels telling it apart."""
        return max(self.comparisons, key=lambda c: (c["match"], -c["changed"]), default=None)

    def as_dict(self) -> dict:
        return {
            "ambiguous": self.ambiguous,
            "comparisons": self.comparisons,
            "pixels": list(self.pixels),
        }


def measure_symmetry(
    mesh,
    first_yaw_deg: float,
    turn_deg: float,
    K,
    world_from_cam,
    width: int,
    height: int,
    *,
    kind: str = "object",
    changed_threshold: float = SYMMETRY_CHANGED,
) -> SymmetryReport:
    """Whether the two views of a rotation pair pin its turn down (module docstring).

    Args:
      mesh: the object (local frame, base on `z = 0`), at the origin.
      first_yaw_deg: its yaw in the first view.
      turn_deg: the answer: the object's yaw change (`kind="object"`) or the camera's orbit
        about the object (`kind="camera"`), degrees, anticlockwise seen from above.
      K, world_from_cam: the first view's camera; width, height: image size.
      kind: "object" or "camera". Views are compared by the object's yaw as the camera sees
        it (an orbit by `t` turns it by `-t`), always rendered as the object turning in front
        of a fixed camera and light: it is the object's own shape and colours that must pin
        the turn down. (An orbiting camera also sees the light move across the object, a
        cue too faint to count on: a ball would pass on it alone.)
    """
    a = float(first_yaw_deg)
    d = float(turn_deg) if kind == "object" else -float(turn_deg)
    b = a + d
    tests = [(f"first+{k}", a, a + k) for k in (90, 180, 270)]
    tests += [(f"second+{k}", b, b + k) for k in (90, 180, 270)]
    if abs(((d + 180.0) % 360.0) - 180.0) not in (0.0, 180.0):
        tests.append(("direction", b, a - d))
    yaws = sorted({y % 360.0 for _, p, q in tests for y in (p, q)})
    rgb, mask, _ = render_object(mesh, yaws, K, world_from_cam, width, height)
    view = {y: k for k, y in enumerate(yaws)}
    comparisons, ambiguous = [], False
    for name, p, q in tests:
        i, j = view[p % 360.0], view[q % 360.0]
        iou, changed = compare_views(rgb[i], mask[i], rgb[j], mask[j])
        match = changed <= changed_threshold
        ambiguous |= match
        comparisons.append(
            {
                "name": name,
                "yaw_deg": p % 360.0,
                "other_yaw_deg": q % 360.0,
                "iou": round(iou, 4),
                "changed": round(changed, 4),
                "match": bool(match),
            }
        )
    pixels = (int(mask[view[a % 360.0]].sum()), int(mask[view[b % 360.0]].sum()))
    return SymmetryReport(bool(ambiguous), comparisons, pixels)


# Words of mesh file names that say nothing of what the object is.
_GENERIC_WORDS = {"model", "mesh", "textured", "solid", "uv", "scene", "object", "obj"}


def category_from_path(path) -> str:
    """A mesh file's category: its name's words ("chair_model.obj" -> "chair", CamelCase
    split, digits and generic words dropped), else its folder's name ("sword/UV.obj")."""
    import pathlib
    import re

    path = pathlib.Path(path)
    for name in (path.stem, path.parent.name):
        name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower()
        words = re.sub(r"[^a-z]+", " ", name).split()
        words = [w for w in words if w not in _GENERIC_WORDS]
        if words:
            return " ".join(words)
    return "object"


@dataclasses.dataclass
class RotationPair:
    """One pair as drawn by `RotationPairSource.build`.

    Attributes:
      index: the pair's number; kind: "object" or "camera".
      category, mesh, extent, attributes: the object (local frame, base on `z = 0`).
      first_yaw_deg: the object's yaw in the first view; turn_deg: the answer.
      K, world_from_cam: the first view's camera (the object at the origin).
      symmetry: its `measure_symmetry` report; refused: the candidates drawn before it.
      rng: the generator, positioned for rendering.
    """

    index: int
    kind: str
    category: str
    mesh: meshes.Mesh
    extent: np.ndarray
    attributes: tuple
    first_yaw_deg: float
    turn_deg: float
    K: np.ndarray
    world_from_cam: np.ndarray
    symmetry: SymmetryReport
    refused: list
    rng: np.random.Generator


@register("rotation_pairs")
class RotationPairSource(Source):
    """Two-view rotation stimuli (module docstring), deterministic per `seed`.

    Options:
      num_pairs: how many pairs the source lists (default 32).
      seed: base seed; pair `i` uses `np.random.default_rng([seed, i])` (default 0).
      kind: "object", "camera" or "mixed" (default: each pair draws one).
      width, height: image size (default 160 x 120: small for speed, see docs/multi_view.md).
      mesh_dir: a folder of meshes to draw objects from (default: procedural composites).
      categories: comma-separated composites to draw from (default all of
        `DEFAULT_CATEGORIES`; symmetric ones are drawn too, and refused by measurement).
      max_candidates: objects tried per pair before the pair is skipped (default 12).
      changed_threshold: `measure_symmetry`'s (default `SYMMETRY_CHANGED`, 0.08).
    """

    OPTIONS = (
        ("num_pairs", 32),
        ("seed", 0),
        ("kind", "mixed"),
        ("width", 160),
        ("height", 120),
        ("mesh_dir", ""),
        ("categories", ",".join(DEFAULT_CATEGORIES)),
        ("max_candidates", 12),
        ("changed_threshold", SYMMETRY_CHANGED),
    )

    def __init__(self, root: str | None = None, **options):
        super().__init__(root or "", **options)
        get = dict(self.OPTIONS) | options
        self.num_pairs, self.seed = int(get["num_pairs"]), int(get["seed"])
        self.kind = str(get["kind"])
        if self.kind not in ROTATION_KINDS + ("mixed",):
            raise UsageError(f"rotation_pairs: kind must be object, camera or mixed: {self.kind!r}")
        self.width, self.height = int(get["width"]), int(get["height"])
        cats = get["categories"]
        self.categories = [c.strip() for c in (cats.split(",") if isinstance(cats, str) else cats)]
        unknown = sorted(set(self.categories) - set(procedural._CATEGORY_WEIGHTS))
        if unknown:
            raise UsageError(f"rotation_pairs: unknown categories {unknown}")
        self.max_candidates = int(get["max_candidates"])
        self.changed_threshold = float(get["changed_threshold"])
        self.mesh_paths = meshes.find_meshes(get["mesh_dir"]) if get["mesh_dir"] else []
        if get["mesh_dir"] and not self.mesh_paths:
            raise UserError(f"rotation_pairs: no mesh files under {get['mesh_dir']}")
        self._mesh_cache: dict[int, meshes.Mesh] = {}

    def scene_ids(self) -> list[str]:
        return [f"pair_{i:06d}" for i in range(self.num_pairs)]

    def _candidate(self, rng) -> tuple[str, meshes.Mesh, np.ndarray, tuple]:
        """`(category, mesh, extent, attributes)` of one randomly drawn object."""
        if self.mesh_paths:
            k = int(rng.integers(len(self.mesh_paths)))
            if k not in self._mesh_cache:
                self._mesh_cache[k] = meshes.load_mesh(self.mesh_paths[k])
            mesh = meshes.normalised(self._mesh_cache[k], float(rng.uniform(0.4, 0.9)))
            lo, hi = mesh.bounds
            return category_from_path(self.mesh_paths[k]), mesh, hi - lo, ()
        category = self.categories[int(rng.integers(len(self.categories)))]
        shape = procedural._make_shape(category, category == "cup", rng)
        colour = list(procedural.COLOURS)[int(rng.integers(len(procedural.COLOURS)))]
        placed = procedural._Placed(
            shape, colour, procedural._rgb(colour, rng), np.zeros(3), 0.0, False
        )
        return category, placed.mesh(), shape.extent.copy(), (colour, "matte")

    def build(self, scene_id: str) -> RotationPair:
        """The pair's object, turn and camera, drawn and checked, before rendering."""
        try:
            index = int(scene_id.rsplit("_", 1)[1])
        except (IndexError, ValueError):
            raise SceneSkip(f"rotation_pairs: bad scene id {scene_id!r}") from None
        rng = np.random.default_rng([self.seed, index])
        kind = self.kind if self.kind != "mixed" else ROTATION_KINDS[int(rng.integers(2))]
        refused = []
        steps = np.arange(TURN_RANGE_DEG[0], TURN_RANGE_DEG[1] + 1, TURN_STEP_DEG)
        for _ in range(self.max_candidates):
            category, mesh, extent, attributes = self._candidate(rng)
            turn = float(rng.choice(steps)) * (1.0 if rng.random() < 0.5 else -1.0)
            turn = 180.0 if abs(turn) == 180.0 else turn
            first = float(rng.uniform(0.0, 360.0))
            K, camera = stimulus_camera(extent, self.width, self.height, rng)
            report = measure_symmetry(
                mesh, first, turn, K, camera, self.width, self.height, kind=kind,
                changed_threshold=self.changed_threshold,
            )  # fmt: skip
            if report.ambiguous:
                refused.append({"category": category, "reason": "symmetric", **report.worst})
                continue
            if min(report.pixels) < MIN_OBJECT_FRACTION * self.width * self.height:
                # A thin object seen edge-on (a sword) shows too little to read a turn from.
                refused.append(
                    {"category": category, "reason": "too small", "pixels": min(report.pixels)}
                )
                continue
            return RotationPair(
                index, kind, category, mesh, extent, attributes, first, turn, K, camera,
                report, refused, rng,
            )  # fmt: skip
        raise SceneSkip(
            f"rotation_pairs: {scene_id}: every one of {self.max_candidates} objects was "
            f"refused ({', '.join(sorted({r['category'] for r in refused}))})"
        )

    def load(self, scene_id: str) -> Scene:
        return self._scene(scene_id, self.build(scene_id))

    def _scene(self, scene_id: str, pair: RotationPair) -> Scene:
        kind, category, mesh, extent = pair.kind, pair.category, pair.mesh, pair.extent
        first, turn, K, camera = pair.first_yaw_deg, pair.turn_deg, pair.K, pair.world_from_cam
        floor = _floor(pair.rng)
        if kind == "object":
            rgb0, mask0, depth0 = render_object(
                mesh, [first], K, camera, self.width, self.height, floor
            )
            rgb1, mask1, depth1 = render_object(
                mesh, [first + turn], K, camera, self.width, self.height, floor
            )
            after = turn_about_z(-turn) @ camera  # the same view, in the object's frame
            object_yaws = [first, first + turn]
            camera_turn = 0.0
        else:
            after = turn_about_z(turn) @ camera
            rgb0, mask0, depth0 = render_object(
                mesh, [first], K, camera, self.width, self.height, floor
            )
            rgb1, mask1, depth1 = render_object(
                mesh, [first], K, after, self.width, self.height, floor
            )
            object_yaws = [first, first]
            camera_turn = turn
        obj = SceneObject(
            index=0,
            category=category,
            caption=category,
            box3d=Box3D(
                centre=np.array([0.0, 0.0, extent[2] / 2]),
                extent=np.asarray(extent, np.float64),
                rotation=np.asarray(frames_lib.rotation_z(math.radians(first)), np.float64),
            ),
            attributes=pair.attributes,
        )
        frame_list = []
        for frame_id, rgb, mask, depth, pose in (
            ("before", rgb0[0], mask0[0], depth0[0], camera),
            ("after", rgb1[0], mask1[0], depth1[0], after),
        ):
            frame_list.append(
                Frame(
                    frame_id=frame_id,
                    width=self.width,
                    height=self.height,
                    K=K,
                    world_from_cam=pose,
                    image_bytes=_png(rgb),
                    depth=depth,
                )
            )
            if mask.any():
                obj.masks[frame_id] = mask_lib.encode_rle(mask)
                obj.boxes2d[frame_id] = mask_lib.mask_box(mask).astype(np.float64)
                obj.extra.setdefault("pixels", {})[frame_id] = int(mask.sum())
        return Scene(
            scene_id=scene_id,
            source=self.name,
            frames=frame_list,
            objects=[obj],
            meta={
                "seed": self.seed,
                "index": pair.index,
                "instance_masks": True,
                "frame_time": {"before": 0.0, "after": 1.0},
                "rotation": {
                    "kind": kind,
                    "object_index": 0,
                    "frames": ["before", "after"],
                    "yaw_change_deg": turn,
                    "object_yaw_deg": [o % 360.0 for o in object_yaws],
                    "camera_yaw_change_deg": camera_turn,
                    "symmetry": pair.symmetry.as_dict(),
                    "refused": pair.refused,
                },
                "estimators": {"depth": "rendered", "intrinsics": "exact", "gravity": "exact"},
                "ground_truth": procedural.truth_entries([obj]),
            },
        )


def _png(rgb) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.asarray(rgb) * 255.0).round().astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


__all__ = [
    "DEFAULT_CATEGORIES",
    "ROTATION_KINDS",
    "PIXEL_TOL",
    "SYMMETRY_CHANGED",
    "RotationPair",
    "RotationPairSource",
    "SymmetryReport",
    "category_from_path",
    "compare_views",
    "look_at",
    "measure_symmetry",
    "render_object",
    "stimulus_camera",
    "turn_about_z",
]
