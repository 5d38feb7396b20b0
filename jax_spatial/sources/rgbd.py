"""Single RGB-D frames (NYU Depth v2, SUN RGB-D / SUN3D, TUM RGB-D, Redwood) with sensor depth.

Layouts found under root (searched recursively, in sorted order):

* **Pairs** `<prefix>_color.<ext>` + `<prefix>_depth.<ext>` in one folder (Open3D's test
  data naming): scene id `<folder>/<prefix>`. The dataset is the `dataset` option, or with
  `dataset="auto"` the prefix (`NYU*`, `SUN*`, `TUM*`).
* **Redwood sequences**: a folder with `color/` and `depth/` sub-folders, frames paired by
  `rgbd.match` when present (`depth/x.png color/x.jpg` per line), else by sorted order; poses
  from `trajectory.log` (blocks of a `i j n` line and four rows of camera-to-world), intrinsics
  from the nearest `camera_primesense.json` (Open3D's `PinholeCameraIntrinsic` JSON: `width`,
  `height`, column-major `intrinsic_matrix`) in the folder or above it (up to root). Scene id
  `<folder>/<frame stem>`: one scene per frame.

Depth decoding (checked against Open3D's `RGBDImage.create_from_*_format` readers in the
tests; Open3D additionally zeroes depth beyond 7 m for NYU and SUN and 4 m for TUM and Redwood,
which `max_depth` reproduces when wanted and which is off by default):

* NYU (raw Kinect `.pgm`, 16-bit): the samples are stored little-endian in spite of the PGM
  header (Open3D reads big-endian and swaps the bytes back; the first pixel of the shared frame
  is `ff 07` = 2047, Kinect's "no reading"), and are Kinect disparities: depth =
  `351.3 / (1092.5 - d)` metres (NYU toolbox `depth_rel2depth_abs`), not positive -> missing.
  These are the *raw* frames: depth is in the depth camera, not registered to the colour image
  (a baseline of about 2.5 cm and a different focal length), so masks drawn on the colour image
  sit a few pixels off on the depth; the labelled NYU subset (`.mat`) has registered depth.
* SUN RGB-D / SUN3D (16-bit `.png`): bits rotated right by 3,
  `d = (v >> 3) | (v << 13)` (16-bit), then millimetres (SUN3D's `depthRead.m`; Open3D's
  `CreateFromSUNFormat` does the same).
* TUM (16-bit `.png`): `v / 5000` metres.
* Redwood (16-bit `.png`): millimetres.

Intrinsics (`intrinsics=(fx, fy, cx, cy)` overrides all):

* NYU: the colour camera of the NYU toolbox's `camera_params.m`: fx 518.8579, fy 519.4696,
  cx 325.5824, cy 253.7362.
* SUN RGB-D: per sensor by image size: 730x530 frames are Kinect v2, fx = fy = 529.5,
  cx 365, cy 265 (the `depth2img` of SUN RGB-D 000017 decomposes to exactly this); any other
  size gets the generic PrimeSense 525 / 525 / (W - 1) / 2 / (H - 1) / 2 (what Open3D's SUN
  example uses, and right for 640x480 SUN3D / Xtion frames to a few percent).
* TUM: the generic 525 / 525 / 319.5 / 239.5 by default, because one frame does not say which
  of TUM's three Kinects took it, and TUM's depth images are registered to the colour camera
  with the factory calibration. `tum_camera="fr1"|"fr2"|"fr3"` selects the published per-sensor
  colour calibration (fr1 517.3 / 516.5 / 318.6 / 255.3, fr2 520.9 / 521.0 / 325.1 / 249.7,
  fr3 535.4 / 539.2 / 320.1 / 247.6).
* Redwood: `camera_primesense.json` (525 / 525 / 319.5 / 239.5 in the shared sample).

Gravity: the single-frame layouts have no pose, so a frame is an image-only frame tilted by the
gravity option (level prior by default, or a JSON of tilts: see `scene_lift.GravityTable`),
and the world is its view frame. Redwood frames carry their trajectory pose; the sequence's
world has `up_axis` (default "y": the ICL-NUIM / Augmented ICL-NUIM scenes Redwood's format is
used for are y-up, and on the shared sequence the camera's down axis is world -y to within
2 degrees) and is turned to z-up.

Objects come from an optional COCO-style JSON beside the frames (`annotations=path`, relative
to root): an `images` entry whose `file_name` is the colour file (relative to root, or its
basename) gives that frame its annotations (`segmentation` masks and/or `bbox`, `iscrowd` as
ignore regions), with `categories` naming them (see `coco.py`). **Without annotations every
scene has zero objects**: the frames are still useful as depth/pose plumbing, but produce no
questions.
"""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np
from PIL import Image

from jax_spatial.lift import estimators as est
from jax_spatial.lift.scene_lift import GravityTable, open_image, tilt_pose
from jax_spatial.scene import Frame, Scene, SceneObject, SceneSkip, check_rigid
from jax_spatial.sources import Source, register
from jax_spatial.sources.coco import readable_name, xywh_to_xyxy

DATASETS = ("nyu", "sun", "tum", "redwood")

NYU_RGB_INTRINSICS = (5.1885790117450188e02, 5.1946961112127485e02,
                      3.2558244941119034e02, 2.5373616633400465e02)  # fmt: skip
SUN_KV2_INTRINSICS = (529.5, 529.5, 365.0, 265.0)
TUM_INTRINSICS = {
    "generic": (525.0, 525.0, 319.5, 239.5),
    "fr1": (517.3, 516.5, 318.6, 255.3),
    "fr2": (520.9, 521.0, 325.1, 249.7),
    "fr3": (535.4, 539.2, 320.1, 247.6),
}
# Open3D's depth_trunc in create_from_{nyu,sun,tum,redwood}_format.
OPEN3D_MAX_DEPTH = {"nyu": 7.0, "sun": 7.0, "tum": 4.0, "redwood": 4.0}
_UP = {
    "z": np.eye(3),
    "y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
    "-y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
}
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".ppm", ".pgm")


def _k(fx, fy, cx, cy) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], np.float64)


def read_pgm16(path) -> np.ndarray:
    """Raw 16-bit PGM samples as `[H, W]` uint16, read little-endian (see the module notes)."""
    data = pathlib.Path(path).read_bytes()
    match = re.match(rb"P5\s+(?:#[^\n]*\s+)*(\d+)\s+(\d+)\s+(\d+)\s", data)
    if match is None:
        raise ValueError(f"{path}: not a binary PGM")
    width, height, maxval = (int(g) for g in match.groups())
    if maxval < 256:
        raise ValueError(f"{path}: an 8-bit PGM is not a depth map")
    count = width * height
    raw = np.frombuffer(data, dtype="<u2", count=count, offset=match.end())
    return raw.reshape(height, width)


def _read_u16(path) -> np.ndarray:
    with Image.open(path) as im:
        raw = np.asarray(im)
    if raw.ndim != 2:
        raise ValueError(f"{path}: depth must be one channel, got shape {raw.shape}")
    return raw.astype(np.uint16)


def decode_depth(path, dataset: str) -> np.ndarray:
    """A dataset's depth file -> `[H, W]` float32 metres, 0 where missing."""
    if dataset == "nyu":
        raw = read_pgm16(path).astype(np.float64)
        depth = 351.3 / (1092.5 - raw)
    elif dataset == "sun":
        raw = _read_u16(path)
        depth = ((raw >> 3) | (raw << 13)).astype(np.float64) / 1000.0
    elif dataset == "tum":
        depth = _read_u16(path).astype(np.float64) / 5000.0
    elif dataset == "redwood":
        depth = _read_u16(path).astype(np.float64) / 1000.0
    else:
        raise ValueError(f"unknown RGB-D dataset {dataset!r}; known: {', '.join(DATASETS)}")
    return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)


def read_trajectory(path) -> dict[int, np.ndarray]:
    """Redwood `trajectory.log` -> {frame index: `[4, 4]` camera-to-world}."""
    lines = [ln.split() for ln in pathlib.Path(path).read_text().splitlines() if ln.strip()]
    poses = {}
    for start in range(0, len(lines) - 4, 5):
        meta = lines[start]
        pose = np.array([[float(v) for v in row] for row in lines[start + 1 : start + 5]])
        if pose.shape != (4, 4):
            raise ValueError(f"{path}: malformed pose block at line {start + 1}")
        poses[int(meta[0])] = pose
    return poses


def read_intrinsics_json(path) -> tuple[np.ndarray, int, int]:
    """Open3D `PinholeCameraIntrinsic` JSON -> (`[3, 3]` K, width, height)."""
    data = json.loads(pathlib.Path(path).read_text())
    K = np.asarray(data["intrinsic_matrix"], np.float64).reshape(3, 3).T  # column-major
    return K, int(data["width"]), int(data["height"])


@register("rgbd")
class RgbdFramesSource(Source):
    """Single RGB-D frames in the NYU / SUN / TUM / Redwood layouts (see the module docstring).

    Options:
      dataset: "auto" (from file names / folders), or one of nyu, sun, tum, redwood.
      intrinsics: `(fx, fy, cx, cy)` overriding the dataset's.
      tum_camera: "generic", "fr1", "fr2" or "fr3".
      annotations: COCO-style JSON of objects on the colour images.
      gravity: tilt JSON for unposed frames (default: level prior).
      up_axis: the Redwood world's up axis, "y" (default), "-y" or "z".
      max_depth: zero depth beyond this many metres (None: keep all; `OPEN3D_MAX_DEPTH` gives
        Open3D's choices).
    """

    def __init__(
        self,
        root: str,
        dataset: str = "auto",
        intrinsics=None,
        tum_camera: str = "generic",
        annotations: str | None = None,
        gravity: str | None = None,
        up_axis: str = "y",
        max_depth: float | None = None,
        **options,
    ):
        super().__init__(
            root, dataset=dataset, intrinsics=intrinsics, tum_camera=tum_camera,
            annotations=annotations, gravity=gravity, up_axis=up_axis, max_depth=max_depth,
            **options,
        )  # fmt: skip
        if dataset != "auto" and dataset not in DATASETS:
            raise ValueError(f"dataset must be 'auto' or one of {DATASETS}, got {dataset!r}")
        if tum_camera not in TUM_INTRINSICS:
            raise ValueError(f"tum_camera must be one of {sorted(TUM_INTRINSICS)}")
        if up_axis not in _UP:
            raise ValueError(f"up_axis must be one of {sorted(_UP)}")
        self.root_path = pathlib.Path(root)
        self.dataset = dataset
        self.intrinsics = None if intrinsics is None else tuple(float(v) for v in intrinsics)
        self.tum_camera = tum_camera
        self.up_axis = up_axis
        self.max_depth = max_depth
        self.gravity = GravityTable(str(self._under_root(gravity))) if gravity else None
        self._frames = self._discover()
        self._annotations = self._read_annotations(annotations) if annotations else None

    # -- discovery -----------------------------------------------------------------------

    def _under_root(self, path) -> pathlib.Path:
        path = pathlib.Path(path)
        return path if path.is_absolute() or path.exists() else self.root_path / path

    def _rel(self, path: pathlib.Path) -> str:
        return path.relative_to(self.root_path).as_posix()

    def _discover(self) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for color in sorted(self.root_path.rglob("*_color.*")):
            if color.suffix.lower() not in _IMAGE_EXT:
                continue
            prefix = color.name[: -len("_color" + color.suffix)]
            depths = sorted(
                p for p in color.parent.glob(f"{prefix}_depth.*") if p.suffix in _IMAGE_EXT
            )
            if not depths:
                continue
            dataset = self.dataset
            if dataset == "auto":
                dataset = next((d for d in DATASETS if prefix.lower().startswith(d)), None)
                if dataset is None:
                    continue
            sid = self._rel(color.parent / prefix)
            found[sid] = {"color": color, "depth": depths[0], "dataset": dataset}
        if self.dataset in ("auto", "redwood"):
            for color_dir in sorted(self.root_path.rglob("color")):
                seq = color_dir.parent
                if color_dir.is_dir() and (seq / "depth").is_dir():
                    found.update(self._redwood_frames(seq))
        return dict(sorted(found.items()))

    def _redwood_frames(self, seq: pathlib.Path) -> dict[str, dict]:
        pairs = []
        match = seq / "rgbd.match"
        if match.is_file():
            for line in match.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 2:
                    pairs.append((seq / parts[1], seq / parts[0]))
        else:
            colors = sorted(p for p in (seq / "color").iterdir() if p.suffix in _IMAGE_EXT)
            depths = sorted(p for p in (seq / "depth").iterdir() if p.suffix in _IMAGE_EXT)
            pairs = list(zip(colors, depths, strict=False))
        out = {}
        for k, (color, depth) in enumerate(pairs):
            out[self._rel(seq / color.stem)] = {
                "color": color,
                "depth": depth,
                "dataset": "redwood",
                "sequence": seq,
                "index": k,
            }
        return out

    def _read_annotations(self, path) -> dict[str, dict]:
        path = self._under_root(path)
        with open(path) as f:
            data = json.load(f)
        categories = {int(c["id"]): readable_name(c["name"]) for c in data.get("categories", [])}
        by_image = {int(im["id"]): [] for im in data.get("images", [])}
        for ann in data.get("annotations", []):
            by_image.setdefault(int(ann["image_id"]), []).append(ann)
        out = {}
        for im in data.get("images", []):
            entry = {"annotations": by_image[int(im["id"])], "categories": categories}
            out[str(im["file_name"])] = entry
            out.setdefault(pathlib.Path(str(im["file_name"])).name, entry)
        return out

    def scene_ids(self) -> list[str]:
        return list(self._frames)

    # -- loading -------------------------------------------------------------------------

    def _K(self, dataset: str, width: int, height: int, entry: dict) -> tuple[np.ndarray, str]:
        if self.intrinsics is not None:
            return _k(*self.intrinsics), "option"
        if dataset == "nyu":
            return _k(*NYU_RGB_INTRINSICS), "nyu_toolbox_rgb"
        if dataset == "sun":
            if (width, height) == (730, 530):
                return _k(*SUN_KV2_INTRINSICS), "sunrgbd_kv2"
            return _k(525.0, 525.0, (width - 1) / 2, (height - 1) / 2), "primesense_default"
        if dataset == "tum":
            return _k(*TUM_INTRINSICS[self.tum_camera]), f"tum_{self.tum_camera}"
        for folder in (entry["sequence"], *entry["sequence"].parents):
            path = folder / "camera_primesense.json"
            if path.is_file():
                K, w, h = read_intrinsics_json(path)
                if (w, h) != (width, height):
                    raise SceneSkip(f"{path} is for {w}x{h} images, frame is {width}x{height}")
                return K, "camera_primesense.json"
            if folder == self.root_path:
                break
        return _k(525.0, 525.0, (width - 1) / 2, (height - 1) / 2), "primesense_default"

    def load(self, scene_id: str) -> Scene:
        entry = self._frames.get(scene_id)
        if entry is None:
            raise SceneSkip(f"rgbd: no frame {scene_id!r} under {self.root_path}")
        dataset = entry["dataset"]
        color = str(entry["color"])
        width, height = open_image(color)
        try:
            depth = decode_depth(entry["depth"], dataset)
        except (OSError, ValueError) as err:
            raise SceneSkip(
                f"{scene_id}: unreadable depth {entry['depth']}: {err}",
                file=str(entry["depth"]),
                field="depth",
            ) from err
        if depth.shape != (height, width):
            raise SceneSkip(
                f"{scene_id}: depth is {depth.shape[1]}x{depth.shape[0]}, "
                f"colour is {width}x{height}"
            )
        if self.max_depth is not None:
            depth = np.where(depth <= self.max_depth, depth, 0.0).astype(np.float32)
        K, k_name = self._K(dataset, width, height, entry)
        names = {"depth": f"sensor:{dataset}", "intrinsics": k_name}
        if dataset == "redwood":
            world_from_cam, names["gravity"] = self._redwood_pose(entry)
        else:
            gravity = self.gravity or est.LevelGravity()
            g = gravity.estimate_gravity(color, image_path=color)
            world_from_cam, names["gravity"] = tilt_pose(g.pitch, g.roll), g.name
        frame_id = pathlib.Path(color).stem
        frame = Frame(
            frame_id=frame_id,
            width=width,
            height=height,
            K=K,
            world_from_cam=world_from_cam,
            image_path=color,
            depth=depth,
        )
        objects = self._objects(color, frame)
        return Scene(
            scene_id=scene_id,
            source=self.name,
            frames=[frame],
            objects=objects,
            root=str(self.root_path.resolve()),
            meta={
                "dataset": dataset,
                "depth_path": str(entry["depth"]),
                "estimators": names,
                "annotated": self._annotations is not None,
            },
        )

    def _redwood_pose(self, entry: dict) -> tuple[np.ndarray, str]:
        traj = entry["sequence"] / "trajectory.log"
        if not traj.is_file():
            # No pose: the frame is as good as an unposed photo.
            return tilt_pose(0.0, 0.0), "level_prior"
        poses = read_trajectory(traj)
        pose = poses.get(entry["index"])
        if pose is None or not np.all(np.isfinite(pose)):
            raise SceneSkip(
                f"{traj}: no valid pose for frame {entry['index']}",
                file=str(traj),
                field=f"pose {entry['index']}",
            )
        check_rigid(pose, traj, f"pose of frame {entry['index']}")
        zup = np.eye(4)
        zup[:3, :3] = _UP[self.up_axis]
        return zup @ pose, f"trajectory:{self.up_axis}-up"

    def _objects(self, color: str, frame: Frame) -> list[SceneObject]:
        if self._annotations is None:
            return []
        rel = self._rel(pathlib.Path(color))
        entry = self._annotations.get(rel) or self._annotations.get(pathlib.Path(color).name)
        if entry is None:
            return []
        objects, ignore = [], []
        for k, ann in enumerate(entry["annotations"]):
            box = xywh_to_xyxy(ann.get("bbox"))
            if ann.get("iscrowd", 0):
                if box is not None:
                    ignore.append(box)
                continue
            cat_id = int(ann.get("category_id", -1))
            seg = ann.get("segmentation")
            objects.append(
                SceneObject(
                    index=k,
                    category=entry["categories"].get(cat_id, f"category {cat_id}"),
                    boxes2d={frame.frame_id: box} if box is not None else {},
                    masks={frame.frame_id: seg} if seg else {},
                    extra={"ann_id": ann.get("id"), "category_id": cat_id},
                )
            )
        frame.ignore_boxes = np.asarray(ignore, np.float64).reshape(-1, 4)
        frame.exhaustive = not ignore
        return objects


__all__ = [
    "DATASETS",
    "OPEN3D_MAX_DEPTH",
    "RgbdFramesSource",
    "decode_depth",
    "read_intrinsics_json",
    "read_pgm16",
    "read_trajectory",
]
