"""KITTI object detection benchmark in its native layout.

Layout (the split folder, `training/` by default; `root` may be the split folder itself)::

    image_2/NNNNNN.png   left colour camera, rectified
    label_2/NNNNNN.txt   one object per line (below)
    calib/NNNNNN.txt     P0..P3 (3x4), R0_rect (3x3), Tr_velo_to_cam (3x4), ...
    velodyne/NNNNNN.bin  optional, float32 rows (x, y, z, reflectance) in the LiDAR frame

Label line: `type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]`. The
location `(x, y, z)` is the *bottom centre* of the box in the rectified reference camera
frame `rect` (x right, y down, z forward); `h, w, l` are metres; `rotation_y` turns the box
about rect's y axis. The devkit builds the corners as `x = +-l/2`, `y = 0 .. -h`,
`z = +-w/2`, rotated by `R_y(ry) = [[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]]` and moved to
the location: the box's length runs along its x axis, its height up from the location.

Calibration: `P2 = K [I | t2]` projects rect coordinates into the left colour image, so
`K = P2[:, :3]`, `t2 = inv(K) @ P2[:, 3]` and colour-camera coordinates are `rect + t2`
(the colour camera sits about 6 cm left of the reference camera, rotation-free after
rectification).

World frame. The engine wants a z-up world. KITTI's rectified reference camera is mounted level
on the car (its y axis is the car's down direction to within the calibration's fraction of a
degree), and the car drives on roads, so we take **gravity = the vehicle's down = rect +y**:
`world = rect` turned to x right, y forward, z up,
`world_from_rect = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]`. On slopes the world tilts with the
road; relations of objects on that road stay right.

Boxes in world. A KITTI box turns only about rect's y axis, which is world's -z, so in world it
is a yaw-only box: `rotation = R_z(-rotation_y)` with extent `(l, w, h)` along its
(length, width, up) axes. That is the devkit box exactly (the tests compare corners), with the
box's z axis pointing up as for every other source, so `extent[2]` is always the height.

Objects: every non-DontCare line, `SceneObject.index` = its 0-based line number (DontCare
lines keep their numbers, so indices trace back to the file), category lower case
("person sitting"), the label's pixel box in `boxes2d["image_2"]`. DontCare lines become
`Frame.ignore_boxes`: something may hide there unlabelled, so the frame is not counted.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
from PIL import Image

from jax_spatial.scene import (
    Box3D,
    Frame,
    Scene,
    SceneObject,
    SceneSkip,
    box_problem,
    check_rigid,
)
from jax_spatial.sources import Source, register

FRAME_ID = "image_2"
# Rows are world axes in rect coordinates: world x = rect x, world y = rect z, world z = -rect y.
WORLD_FROM_RECT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

CATEGORY_NAMES = {
    "car": "car",
    "van": "van",
    "truck": "truck",
    "pedestrian": "pedestrian",
    "person_sitting": "person sitting",
    "cyclist": "cyclist",
    "tram": "tram",
    "misc": "misc",
}


def readable_category(kitti_type: str) -> str:
    """`"Person_sitting"` -> `"person sitting"`; unknown types are lower-cased, `_` -> space."""
    key = kitti_type.strip().lower()
    return CATEGORY_NAMES.get(key, key.replace("_", " "))


def rotation_z(angle: float) -> np.ndarray:
    """`[3, 3]` right-handed rotation about +z (numpy twin of `geometry.frames.rotation_z`)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rect_box_to_world(
    bottom_centre, length: float, height: float, width: float, rotation_y: float
) -> Box3D:
    """A KITTI camera box (bottom centre in rect, dims, rotation_y) as a world `Box3D`.

    Args:
      bottom_centre: `[3]` rect coordinates of the bottom face's centre.
      length, height, width: metres along the box's x (heading), y (down) and z axes.
      rotation_y: radians about rect +y (KITTI's `rotation_y`).
    """
    bottom = np.asarray(bottom_centre, np.float64)
    # rect y points down, so the geometric centre is h/2 *above* (smaller y than) the bottom.
    centre_rect = bottom - np.array([0.0, height / 2.0, 0.0])
    return Box3D(
        centre=WORLD_FROM_RECT @ centre_rect,
        extent=np.array([length, width, height], np.float64),
        rotation=rotation_z(-rotation_y),
    )


def camera_from_projection(P) -> tuple[np.ndarray, np.ndarray]:
    """Splits a rectified projection `P = K [I | t]` into `K` and the camera's pose in rect.

    Args:
      P: `[3, 4]` (or a `[4, 4]` padded) projection from rect coordinates to pixels.

    Returns:
      K: `[3, 3]`; rect_from_cam: `[4, 4]`, a pure translation by `-t` (cam = rect + t).
    """
    P = np.asarray(P, np.float64)[:3, :4]
    K = P[:, :3].copy()
    t = np.linalg.solve(K, P[:, 3])
    rect_from_cam = np.eye(4)
    rect_from_cam[:3, 3] = -t
    return K, rect_from_cam


def world_from_rect4() -> np.ndarray:
    """`[4, 4]` homogeneous `WORLD_FROM_RECT`."""
    out = np.eye(4)
    out[:3, :3] = WORLD_FROM_RECT
    return out


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the image header; PIL does not decode the pixels for this."""
    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except (OSError, ValueError) as err:
        raise SceneSkip(f"unreadable image {path}: {err}", file=str(path), field="image") from err


def read_calib(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """KITTI calib file -> {"P0".."P3": `[3, 4]`, "R0_rect": `[3, 3]`, "Tr_velo_to_cam": ...}."""
    shapes = {"R0_rect": (3, 3)}
    calib = {}
    try:
        lines = pathlib.Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise SceneSkip(f"{path}: unreadable calib file ({err})", file=str(path)) from None
    for line_no, line in enumerate(lines, 1):
        if ":" not in line:
            continue
        key, values = line.split(":", 1)
        try:
            numbers = np.array([float(v) for v in values.split()], np.float64)
            if numbers.size == 0:
                continue
            shape = shapes.get(key.strip(), (3, 4) if numbers.size == 12 else (numbers.size,))
            calib[key.strip()] = numbers.reshape(shape)
        except ValueError as err:
            raise SceneSkip(
                f"{path}:{line_no}: bad {key.strip()} ({err})",
                file=str(path),
                field=f"{key.strip()} (line {line_no})",
            ) from None
    if "P2" not in calib:
        raise SceneSkip(f"calib {path} has no P2", file=str(path), field="P2")
    return calib


def velo_to_rect(calib: dict[str, np.ndarray]) -> np.ndarray:
    """`[4, 4]` rect_from_velo = R0_rect @ Tr_velo_to_cam (the devkit's LiDAR-to-camera chain)."""
    rect = np.eye(4)
    rect[:3, :3] = calib.get("R0_rect", np.eye(3))
    velo = np.eye(4)
    velo[:3, :4] = calib["Tr_velo_to_cam"]
    return rect @ velo


def read_points(path: str | os.PathLike, num_features: int) -> np.ndarray:
    """`[P, num_features]` float32 rows of a `.bin` point file."""
    data = np.fromfile(path, dtype=np.float32)
    if data.size % num_features:
        raise SceneSkip(f"{path}: {data.size} floats is not a multiple of {num_features} features")
    return data.reshape(-1, num_features)


def transform_points(a_from_b: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`[4, 4]`, `[P, 3]` -> `[P, 3]` float32 (points are large; float32 keeps mm precision)."""
    return (points.astype(np.float64) @ a_from_b[:3, :3].T + a_from_b[:3, 3]).astype(np.float32)


@register("kitti")
class KittiSource(Source):
    """KITTI object benchmark, native layout: one scene per frame id (see the module docstring).

    Options:
      split: folder under `root` holding `image_2/` etc. (default "training"); ignored when
        `root` itself holds `image_2/`.
      load_points: read `velodyne/NNNNNN.bin` into `Scene.points` when present (default True).
    """

    def __init__(self, root: str, split: str = "training", load_points: bool = True, **options):
        super().__init__(root, split=split, load_points=load_points, **options)
        base = pathlib.Path(root)
        if (base / "image_2").is_dir() or (base / "label_2").is_dir():
            self.split_dir = base
        else:
            self.split_dir = base / split
        if not self.split_dir.is_dir():
            raise FileNotFoundError(f"KITTI split folder not found: {self.split_dir}")
        self.load_points = load_points

    def scene_ids(self) -> list[str]:
        # Ids come from the labels: a frame without a label file has nothing to ask about.
        label_dir = self.split_dir / "label_2"
        if not label_dir.is_dir():
            return []
        return sorted(p.stem for p in label_dir.glob("*.txt"))

    def load(self, scene_id: str) -> Scene:
        d = self.split_dir
        image_path = d / "image_2" / f"{scene_id}.png"
        label_path = d / "label_2" / f"{scene_id}.txt"
        calib_path = d / "calib" / f"{scene_id}.txt"
        for kind, path in (("image", image_path), ("label", label_path), ("calib", calib_path)):
            if not path.is_file():
                raise SceneSkip(
                    f"kitti {scene_id}: missing {kind} file {path}", file=str(path), field=kind
                )
        calib = read_calib(calib_path)
        K, rect_from_cam = camera_from_projection(calib["P2"])
        width, height = image_size(image_path)
        objects, ignore = parse_label_file(label_path, frame_id=FRAME_ID)
        frame = Frame(
            frame_id=FRAME_ID,
            width=width,
            height=height,
            K=K,
            world_from_cam=world_from_rect4() @ rect_from_cam,
            image_path=str(image_path.resolve()),
            ignore_boxes=np.array(ignore).reshape(-1, 4),
        )
        points = None
        meta = {"dataset": "kitti", "label_path": str(label_path), "calib_path": str(calib_path)}
        velo_path = d / "velodyne" / f"{scene_id}.bin"
        if self.load_points and velo_path.is_file() and "Tr_velo_to_cam" in calib:
            xyz = read_points(velo_path, 4)[:, :3]
            world_from_velo = check_rigid(
                world_from_rect4() @ velo_to_rect(calib), calib_path, "R0_rect @ Tr_velo_to_cam"
            )
            points = transform_points(world_from_velo, xyz)
            # A LiDAR sweep: occlusion splats its returns by angle from the sensor.
            meta["lidar_origin"] = world_from_velo[:3, 3].tolist()
        return Scene(
            scene_id=scene_id,
            source=self.name,
            frames=[frame],
            objects=objects,
            points=points,
            root=str(d.resolve()),
            meta=meta,
        )


def parse_label_file(path: str | os.PathLike, frame_id: str = FRAME_ID):
    """Reads a KITTI label file.

    Returns:
      objects: `SceneObject`s for the non-DontCare lines, `index` = line number.
      ignore: list of `[4]` DontCare pixel boxes.
    """
    objects, ignore = [], []
    try:
        lines = pathlib.Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise SceneSkip(f"{path}: unreadable label file ({err})", file=str(path)) from None
    for line_no, line in enumerate(lines):
        fields = line.split()
        if not fields:
            continue
        where = {"file": str(path), "field": f"line {line_no + 1}"}
        if len(fields) < 15:
            raise SceneSkip(
                f"{path}:{line_no + 1}: expected 15 or 16 fields, got {len(fields)}", **where
            )
        kitti_type = fields[0]
        try:
            values = [float(v) for v in fields[1:]]
            truncated, occluded, alpha = values[0], int(values[1]), values[2]
        except (ValueError, OverflowError) as err:
            raise SceneSkip(
                f"{path}:{line_no + 1}: not a KITTI label line ({err})", **where
            ) from None
        box2d = np.array(values[3:7], np.float64)
        h, w, length = values[7:10]
        location = np.array(values[10:13], np.float64)
        rotation_y = values[13]
        if kitti_type == "DontCare":
            ignore.append(box2d)
            continue
        extra = {
            "kitti_type": kitti_type,
            "truncated": truncated,
            "occluded": occluded,
            "alpha": alpha,
        }
        if len(values) > 14:
            extra["score"] = values[14]
        box3d = None
        problem = box_problem(location, [h, w, length], [rotation_y])
        if problem is None:
            box3d = rect_box_to_world(location, length, h, w, rotation_y)
        else:
            # Dropped from the questions; observe makes the frame non-exhaustive and the run
            # counts it (`invalid_box3d` names the file, line and fields).
            extra["invalid_box3d"] = f"{path}:{line_no + 1}: h w l x y z rotation_y: {problem}"
        objects.append(
            SceneObject(
                index=line_no,
                category=readable_category(kitti_type),
                box3d=box3d,
                boxes2d={frame_id: box2d},
                extra=extra,
            )
        )
    return objects, ignore
