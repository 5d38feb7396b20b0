"""mmdetection3d v1.x info files (`metainfo` + `data_list`) for KITTI, SUN RGB-D, ScanNet, nuScenes.

An info file is a pickle of `{"metainfo": {...}, "data_list": [info, ...]}`, one `info` per
sample, written by mmdetection3d's `tools/create_data.py` / `update_infos_to_v2.py`. It is read
with the restricted unpickler (`safe_pickle`), so a hostile file cannot run code. Paths inside
are relative: images and point files are looked up under `root` as written, then by basename
in `root` (the shared samples flatten folders), then under each dataset's usual sub-folder.

Per-dataset conventions (from mmdetection3d's converters and dataset classes; every source's
world is z-up and every world box has its z axis up, so `extent[2]` is the height):

* **KITTI** - `instances[i].bbox_3d = [x, y, z, l, h, w, rotation_y]` in the rectified
  reference camera frame (`CameraInstance3DBoxes`, origin (0.5, 1.0, 0.5): the *bottom*
  centre), dims reordered from the label's h w l to l h w. `images.CAM2.cam2img` is P2 padded
  to 4x4; LiDAR -> rect is `images.R0_rect @ lidar_points.Tr_velo_to_cam` (also stored as
  `images.CAM2.lidar2cam`). World, camera pose and boxes are exactly those of `kitti.py`, so
  both readers give the same scene. Instances with label -1 (DontCare) become ignore boxes.
* **SUN RGB-D** - `bbox_3d = [x, y, z, x_size, y_size, z_size, yaw]` in upright depth
  coordinates (x right, y forward, z up; `DepthInstance3DBoxes` with origin (0.5, 0.5, 0.5):
  the *gravity* centre), yaw anticlockwise about +z from +x. `images.CAM0.depth2img` is
  `K @ [[1, 0, 0], [0, 0, -1], [0, 1, 0]] @ Rtilt^T`: an RQ decomposition splits it into an
  upper-triangular K with positive diagonal and the camera's rotation; the camera sits at the
  upright frame's origin. World = upright depth frame.
* **ScanNet** - `bbox_3d = [x, y, z, dx, dy, dz]` axis-aligned in the *aligned* frame
  (`axis_align_matrix` applied), gravity centre, yaw 0 (a 7th value, when present, is a yaw).
  World = the aligned frame; point files are unaligned scans and get `axis_align_matrix`.
  Posed images, when the info has them, follow the multi-view layouts built on mmdetection3d
  (EmbodiedScan-style `images: [{img_path, cam2global, cam2img?}]` with a scene-level
  `cam2img`; or NeRF-Det's `img_paths` / `extrinsics` / `intrinsics`): camera-to-world in the
  unaligned scan frame, so `world_from_cam = axis_align_matrix @ cam2global`.
* **nuScenes** - `bbox_3d = [x, y, z, l, w, h, yaw, (vx, vy)]` in the LIDAR_TOP frame
  (`LiDARInstance3DBoxes`); the centre is the nuScenes box centre, i.e. the *gravity* centre
  (mmdetection3d builds these boxes with origin (0.5, 0.5, 0.5)); yaw anticlockwise about +z
  from +x. World = the LiDAR frame (z up). Each `images[CAM_*]` has `cam2img` and `lidar2cam`
  (else `cam2ego` with `lidar_points.lidar2ego`). `cam_instances[CAM_*]` holds that camera's
  projected 2D boxes with the same box in camera coordinates (gravity centre); they are matched
  to `instances` by centre, giving `boxes2d[cam]` and `frame_index[cam]`.

Classes: `metainfo["categories"]` (name -> label) or `metainfo["classes"]` when present, else
mmdetection3d's tuple for the dataset. `SceneObject.index` is the position in `instances`.

Missing data: a frame whose image or calibration cannot be found is dropped (listed in
`Scene.meta["dropped_frames"]`); a scene left with no frame raises `SceneSkip` naming what
was missing, unless the option `allow_no_frames=True` (point-cloud-only infos). An info with
no instances is a valid scene with zero objects. Point files that are absent leave
`Scene.points = None`.
"""

from __future__ import annotations

import pathlib

import numpy as np

from jax_spatial.scene import Box3D, Frame, Scene, SceneObject, SceneSkip, rigid_problem
from jax_spatial.sources import Source, register
from jax_spatial.sources import kitti as kitti_lib
from jax_spatial.sources.safe_pickle import (
    Refused,
    UnsafePickleError,
    find_refused,
    load_pickle_marked,
    salvage_truncated,
)

# mmdetection3d's class tuples, in label order (KittiDataset, SUNRGBDDataset, ScanNetDataset,
# NuScenesDataset METAINFO). KITTI infos written by update_infos_to_v2 label all eight types;
# the three-class configs use the same first three labels.
DEFAULT_CLASSES = {
    "kitti": ("Pedestrian", "Cyclist", "Car", "Van", "Truck", "Person_sitting", "Tram", "Misc"),
    "sunrgbd": (
        "bed", "table", "sofa", "chair", "toilet", "desk", "dresser", "night_stand", "bookshelf",
        "bathtub",
    ),
    "scannet": (
        "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
        "counter", "desk", "curtain", "refrigerator", "showercurtrain", "toilet", "sink",
        "bathtub", "garbagebin",
    ),
    "nuscenes": (
        "car", "truck", "trailer", "bus", "construction_vehicle", "bicycle", "motorcycle",
        "pedestrian", "traffic_cone", "barrier",
    ),
}  # fmt: skip

# Class names that are not readable after lower-casing and `_` -> " ".
_READABLE = {"showercurtrain": "shower curtain", "garbagebin": "garbage bin"}

_DATASETS = frozenset(DEFAULT_CLASSES)

# Where mmdetection3d's configs put the files (`data_prefix`), tried after the literal path
# and the basename in root. `{cam}` is the camera key, `{scene}` the scene id.
_IMAGE_DIRS = {
    "kitti": ("training/image_2", "testing/image_2"),
    "sunrgbd": ("sunrgbd_trainval/image", "image"),
    "scannet": ("posed_images/{scene}", "posed_images"),
    "nuscenes": ("samples/{cam}",),
}
_POINT_DIRS = {
    "kitti": ("training/velodyne_reduced", "training/velodyne", "testing/velodyne_reduced"),
    "sunrgbd": ("points",),
    "scannet": ("points",),
    "nuscenes": ("samples/LIDAR_TOP",),
}
_DEFAULT_POINT_FEATURES = {"kitti": 4, "sunrgbd": 6, "scannet": 6, "nuscenes": 5}
# Point files that are one spinning LiDAR's sweep, in the sensor's frame before the
# `world_from_points` transform (the others are depth-camera point clouds and scans).
_LIDAR_DATASETS = frozenset({"kitti", "nuscenes"})

# A cam_instance and an instance are the same object when their centres, both in the camera
# frame, agree this closely. Both come from one annotation; float32 storage and the ego motion
# between the LiDAR and camera timestamps (folded into lidar2cam) move them by centimetres,
# while two distinct objects' centres are rarely closer than a person's width.
_MATCH_TOLERANCE_M = 0.25


def readable_category(name: str) -> str:
    """mmdetection3d class name -> lower case with spaces ("night_stand" -> "night stand")."""
    key = name.strip().lower()
    return _READABLE.get(key, key.replace("_", " "))


def normalize_dataset(name: str) -> str:
    """ "SUNRGBD", "sun_rgbd", "SUN RGB-D" -> "sunrgbd"; raises ValueError for unsupported ones."""
    key = "".join(ch for ch in str(name).lower() if ch.isalnum())
    if key not in _DATASETS:
        raise ValueError(
            f"unsupported mmdetection3d dataset {name!r}; "
            "supported: kitti, sunrgbd, scannet, nuscenes"
        )
    return key


def rq_decompose(M) -> tuple[np.ndarray, np.ndarray]:
    """Splits a `[3, 3]` projection `M = s * K @ R` into intrinsics and rotation.

    Returns:
      K: `[3, 3]` upper triangular, positive diagonal, `K[2, 2] = 1`.
      R: `[3, 3]` rotation (det +1), cam_from_world.

    Raises:
      SceneSkip: `M` is singular or mirrors space, so no camera produces it.
    """
    M = np.asarray(M, np.float64)[:3, :3]
    if abs(np.linalg.det(M)) < 1e-12:
        raise SceneSkip("depth2img is singular")
    # QR of the row-reversed transpose gives RQ of M (reverse rows and columns back afterwards).
    flip = np.eye(3)[::-1]
    q, r = np.linalg.qr((flip @ M).T)
    K = flip @ r.T @ flip
    R = flip @ q.T
    signs = np.diag(np.sign(np.diag(K)))
    K, R = K @ signs, signs @ R
    if np.linalg.det(R) < 0:
        raise SceneSkip("depth2img has a mirrored rotation part")
    return K / K[2, 2], R


def _mat(value, rows: int, cols: int) -> np.ndarray:
    """A nested list / array as a float64 matrix, cut to its top-left `[rows, cols]` block."""
    arr = np.asarray(value, np.float64)
    if arr.ndim != 2 or arr.shape[0] < rows or arr.shape[1] < cols:
        raise SceneSkip(f"expected a matrix of at least {rows}x{cols}, got shape {arr.shape}")
    return arr[:rows, :cols]


def _hom(value) -> np.ndarray:
    """A 3x4 or 4x4 rigid transform as `[4, 4]`."""
    arr = np.asarray(value, np.float64)
    out = np.eye(4)
    out[: arr.shape[0], : arr.shape[1]] = arr[:4, :4]
    return out


def _label(instance: dict) -> int:
    label = instance.get("bbox_label_3d", instance.get("bbox_label", -1))
    return -1 if label is None else int(label)


def _bbox2d(instance: dict) -> np.ndarray | None:
    box = instance.get("bbox")
    if box is None:
        return None
    box = np.asarray(box, np.float64).reshape(-1)
    return box[:4] if box.size >= 4 and np.all(np.isfinite(box[:4])) else None


def _box_ok(values: np.ndarray, size_slice: slice) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values[size_slice] > 0))


@register("mmdet3d")
class Mmdet3dInfosSource(Source):
    """Scenes from an mmdetection3d v1.x info file (see the module docstring).

    Options:
      infos: path of the `.pkl` (absolute, or relative to root); default: the single `*.pkl`
        in root.
      dataset: overrides `metainfo["DATASET"]` / `metainfo["dataset"]` (case-insensitive).
      load_points: read the point file into `Scene.points` when it exists (default True).
      allow_no_frames: yield scenes that have no usable image instead of skipping them.
    """

    def __init__(
        self,
        root: str,
        infos: str | None = None,
        dataset: str | None = None,
        load_points: bool = True,
        allow_no_frames: bool = False,
        **options,
    ):
        super().__init__(
            root, infos=infos, dataset=dataset, load_points=load_points,
            allow_no_frames=allow_no_frames, **options,
        )  # fmt: skip
        self.root_path = pathlib.Path(root)
        self.infos_path = self._find_infos(infos)
        # Refused globals are marked rather than fatal, so one hostile entry costs only itself.
        try:
            data, any_refused = load_pickle_marked(self.infos_path)
        except SceneSkip as err:
            # A truncated file keeps the entries before the cut; the rest are reported lost.
            salvaged = salvage_truncated(self.infos_path) if "truncated" in str(err) else None
            if salvaged is None or not isinstance(salvaged[0], dict):
                raise
            if not isinstance(salvaged[0].get("data_list"), list):
                raise
            data, any_refused = salvaged[0], True
            kept = len(data["data_list"])
            self.skipped_entries.append({
                "scene_id": None,
                "file": str(self.infos_path),
                "field": f"data_list[{kept}:]",
                "reason": f"{self.infos_path}: truncated pickle; the entries after "
                f"data_list[{kept - 1}] are lost (the {kept} before are read)",
            })  # fmt: skip
        if any_refused and isinstance(data, dict):
            outside = find_refused({k: v for k, v in data.items() if k != "data_list"})
            if isinstance(data.get("data_list"), Refused):
                outside.append(("data_list", data["data_list"].name))
            if outside:
                raise UnsafePickleError(
                    f"{self.infos_path}: refused global {outside[0][1]} at {outside[0][0]}: "
                    "info pickles may only hold numpy arrays and plain Python values"
                )
        elif any_refused:
            raise UnsafePickleError(
                f"{self.infos_path}: refused global {find_refused(data)[0][1]}: info pickles "
                "may only hold numpy arrays and plain Python values"
            )
        if not isinstance(data, dict) or not isinstance(data.get("data_list"), list):
            raise ValueError(
                f"{self.infos_path} is not an mmdetection3d v1.x info file (no data_list); "
                "convert older infos with tools/dataset_converters/update_infos_to_v2.py"
            )
        self.metainfo = dict(data.get("metainfo") or {})
        declared = dataset or self.metainfo.get("DATASET") or self.metainfo.get("dataset")
        if not declared:
            raise ValueError(f"{self.infos_path}: metainfo names no dataset; pass dataset=...")
        self.dataset = normalize_dataset(declared)
        self.classes = self._classes()
        self.load_points = load_points
        self.allow_no_frames = allow_no_frames
        self._infos = data["data_list"]
        self._index_of = {}
        # data_list index -> (field, refused global) of entries that asked for code.
        self._refused: dict[int, tuple[str, str]] = {}
        for i, info in enumerate(self._infos):
            field = f"data_list[{i}]"
            if not isinstance(info, dict):
                what = (
                    f"refused global {info.name}"
                    if isinstance(info, Refused)
                    else f"a {type(info).__name__}, not a dict"
                )
                self._skip_entry(field, f"{self.infos_path}: {field} is {what}")
                continue
            try:
                sid = self._entry_id(info, i)
            except (TypeError, ValueError, AttributeError) as err:
                self._skip_entry(field, f"{self.infos_path}: {field} has no usable id ({err})")
                continue
            if sid in self._index_of:
                sid = f"{sid}_{i}"
            self._index_of[sid] = i
            if any_refused and (found := find_refused(info, field, limit=1)):
                self._refused[i] = found[0]
        if any_refused and len(self._refused) == len(self._index_of):
            # Nothing in the file is clean: it is a hostile file, not one bad entry.
            refused = [e["reason"] for e in self.skipped_entries if "refused" in e["reason"]]
            refused += [f"{self.infos_path}: {f} is refused global {n}" for f, n in
                        self._refused.values()]  # fmt: skip
            raise UnsafePickleError(
                f"{refused[0]}; info pickles may only hold numpy arrays and plain Python values"
            )

    def _skip_entry(self, field: str, reason: str) -> None:
        self.skipped_entries.append(
            {"scene_id": None, "file": str(self.infos_path), "field": field, "reason": reason}
        )

    # -- setup ---------------------------------------------------------------------------

    def _find_infos(self, infos: str | None) -> pathlib.Path:
        if infos is not None:
            path = pathlib.Path(infos)
            if not path.is_absolute() and not path.exists():
                path = self.root_path / path
            if not path.is_file():
                raise FileNotFoundError(f"info file not found: {infos}")
            return path
        found = sorted(self.root_path.glob("*.pkl"))
        if len(found) != 1:
            raise ValueError(
                f"expected exactly one *.pkl in {self.root_path}, found {len(found)}; "
                "pass infos=..."
            )
        return found[0]

    def _classes(self) -> tuple[str, ...]:
        categories = self.metainfo.get("categories")
        if isinstance(categories, dict) and categories:
            # Ignored classes are stored with label -1; they name no label.
            by_label = {int(v): str(k) for k, v in categories.items() if int(v) >= 0}
            if by_label:
                return tuple(by_label.get(i, f"class {i}") for i in range(max(by_label) + 1))
        classes = self.metainfo.get("classes")
        if classes:
            return tuple(str(c) for c in classes)
        return DEFAULT_CLASSES[self.dataset]

    def _entry_id(self, info: dict, i: int) -> str:
        if info.get("token"):
            return str(info["token"])
        if info.get("sample_idx") is not None:
            idx = info["sample_idx"]
            return f"{int(idx):06d}" if isinstance(idx, (int, np.integer)) else str(idx)
        lidar = (info.get("lidar_points") or {}).get("lidar_path")
        if lidar:
            return pathlib.Path(str(lidar)).stem
        for image in _image_entries(info):
            if image.get("img_path"):
                return pathlib.Path(str(image["img_path"])).stem
        return f"{i:06d}"

    def scene_ids(self) -> list[str]:
        return sorted(self._index_of)

    # -- loading -------------------------------------------------------------------------

    def load(self, scene_id: str) -> Scene:
        if scene_id not in self._index_of:
            raise SceneSkip(f"{self.infos_path}: no sample {scene_id!r}")
        index = self._index_of[scene_id]
        info = self._infos[index]
        if index in self._refused:
            field, name = self._refused[index]
            raise SceneSkip(
                f"{self.infos_path}: {field} is refused global {name} (not loaded, not run)",
                file=str(self.infos_path),
                field=field,
            )
        try:
            return self._load(scene_id, index, info)
        except SceneSkip as err:
            if getattr(err, "file", None) is not None:
                raise
            # A helper's complaint (`_mat`, `rq_decompose`) that does not say where it was.
            raise SceneSkip(
                f"{self.infos_path}: data_list[{index}] ({scene_id}): {err}",
                file=str(self.infos_path),
                field=f"data_list[{index}]",
            ) from err
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            # A missing key or a value of the wrong shape in one entry: name the entry.
            field = f"data_list[{index}]"
            if isinstance(err, KeyError) and err.args:
                field += f".{err.args[0]}"
                detail = "missing key"
            else:
                detail = f"{type(err).__name__}: {err}"
            raise SceneSkip(
                f"{self.infos_path}: {field} ({scene_id}): {detail}",
                file=str(self.infos_path),
                field=field,
            ) from err

    def _load(self, scene_id: str, index: int, info: dict) -> Scene:
        loader = {
            "kitti": self._load_kitti,
            "sunrgbd": self._load_sunrgbd,
            "scannet": self._load_scannet,
            "nuscenes": self._load_nuscenes,
        }[self.dataset]
        dropped: list[str] = []
        frames, objects, world_from_points = loader(info, scene_id, dropped)
        if not frames and not self.allow_no_frames:
            reason = "; ".join(dropped) if dropped else "the info lists no images"
            raise SceneSkip(
                f"{self.infos_path}: {self.dataset} {scene_id}: no usable frame ({reason})",
                file=str(self.infos_path),
                field=f"data_list[{index}].images",
            )
        points = self._points(info, scene_id, world_from_points) if self.load_points else None
        meta = {
            "dataset": self.dataset,
            "infos": str(self.infos_path),
            "data_index": index,
            "dropped_frames": dropped,
        }
        if points is not None and self.dataset in _LIDAR_DATASETS:
            # A LiDAR sweep: occlusion splats its returns by angle from the sensor.
            meta["lidar_origin"] = world_from_points[:3, 3].tolist()
        return Scene(
            scene_id=scene_id,
            source=self.name,
            frames=frames,
            objects=objects,
            points=points,
            root=str(self.root_path.resolve()),
            meta=meta,
        )

    def _resolve(self, rel: str | None, dirs: tuple[str, ...], **fmt) -> pathlib.Path | None:
        """The first existing file among root/rel, root/basename, root/<dataset dir>/basename."""
        if not rel:
            return None
        rel_path = pathlib.Path(str(rel))
        candidates = [rel_path] if rel_path.is_absolute() else []
        candidates += [self.root_path / rel_path, self.root_path / rel_path.name]
        candidates += [self.root_path / d.format(**fmt) / rel_path.name for d in dirs]
        for path in candidates:
            if path.is_file():
                return path.resolve()
        return None

    def _image(self, entry: dict, frame_id: str, scene_id: str, cam: str, dropped: list[str]):
        """(absolute path, width, height) of a frame's image, or None (and a reason) if missing."""
        path = self._resolve(
            entry.get("img_path"), _IMAGE_DIRS[self.dataset], cam=cam, scene=scene_id
        )
        if path is None:
            dropped.append(
                f"{frame_id}: image {entry.get('img_path')!r} not found under {self.root_path}"
            )
            return None
        width, height = entry.get("width"), entry.get("height")
        if width is None or height is None:
            width, height = kitti_lib.image_size(path)
        return str(path), int(width), int(height)

    def _points(
        self, info: dict, scene_id: str, world_from_points: np.ndarray | None
    ) -> np.ndarray | None:
        if world_from_points is None:
            return None
        lidar = info.get("lidar_points") or {}
        path = self._resolve(lidar.get("lidar_path"), _POINT_DIRS[self.dataset], scene=scene_id)
        if path is None:
            return None
        features = int(lidar.get("num_pts_feats") or _DEFAULT_POINT_FEATURES[self.dataset])
        xyz = kitti_lib.read_points(path, features)[:, :3]
        return kitti_lib.transform_points(world_from_points, xyz)

    def _category(self, label: int) -> str | None:
        if 0 <= label < len(self.classes):
            return readable_category(self.classes[label])
        return None

    def _generic_objects(self, info: dict, frame_id: str | None, box_fn, ignore: list):
        """Objects from `instances` whose 3D box `box_fn(values)` turns into a world `Box3D`.

        Instances with an unknown label (-1: KITTI DontCare, classes outside the tuple) are not
        objects; their 2D boxes, where given, become ignore regions of `frame_id`.
        """
        objects = []
        for i, inst in enumerate(info.get("instances") or []):
            label = _label(inst)
            box2d = _bbox2d(inst)
            category = self._category(label)
            if category is None:
                if box2d is not None and frame_id is not None:
                    ignore.append(box2d)
                continue
            values = np.asarray(inst.get("bbox_3d", []), np.float64).reshape(-1)
            box3d = box_fn(values) if values.size >= 6 else None
            extra = {
                k: inst[k]
                for k in (
                    "truncated",
                    "occluded",
                    "alpha",
                    "difficulty",
                    "num_lidar_pts",
                    "velocity",
                )
                if k in inst
            }
            extra["label"] = label
            extra["label_name"] = self.classes[label]
            if box3d is None:
                extra["invalid_bbox_3d"] = values.tolist()
                # Dropped from the questions; observe makes the frames that may show it
                # non-exhaustive and the run counts it.
                problem = (
                    f"{values.size} values" if values.size < 6
                    else "a zero, negative or non-finite size or value"
                )  # fmt: skip
                extra["invalid_box3d"] = (
                    f"{self.infos_path}: instances[{i}].bbox_3d {values.tolist()}: {problem}"
                )
            objects.append(
                SceneObject(
                    index=i,
                    category=category,
                    box3d=box3d,
                    boxes2d={frame_id: box2d}
                    if (box2d is not None and frame_id is not None)
                    else {},
                    extra=extra,
                )
            )
        return objects

    # KITTI ----------------------------------------------------------------------------------

    def _load_kitti(self, info: dict, scene_id: str, dropped: list[str]):
        images = info.get("images") or {}
        cam = images.get("CAM2") or {}
        frame_id = kitti_lib.FRAME_ID
        world_from_rect = kitti_lib.world_from_rect4()

        def box_fn(v):
            if v.size < 7 or not _box_ok(v[:7], slice(3, 6)):
                return None
            x, y, z, length, height, width, ry = v[:7]
            return kitti_lib.rect_box_to_world((x, y, z), length, height, width, ry)

        ignore: list = []
        objects = self._generic_objects(info, frame_id, box_fn, ignore)
        frames = []
        image = self._image(cam, frame_id, scene_id, "CAM2", dropped) if cam else None
        if not cam:
            dropped.append(f"{frame_id}: info has no images.CAM2")
        elif "cam2img" not in cam:
            dropped.append(f"{frame_id}: images.CAM2 has no cam2img")
        elif image is not None:
            K, rect_from_cam = kitti_lib.camera_from_projection(_mat(cam["cam2img"], 3, 4))
            path, width, height = image
            frames.append(
                Frame(
                    frame_id=frame_id,
                    width=width,
                    height=height,
                    K=K,
                    world_from_cam=world_from_rect @ rect_from_cam,
                    image_path=path,
                    ignore_boxes=np.array(ignore).reshape(-1, 4),
                )
            )
        lidar = info.get("lidar_points") or {}
        if "R0_rect" in images and "Tr_velo_to_cam" in lidar:
            rect_from_lidar = _hom(_mat(images["R0_rect"], 3, 3)) @ _hom(
                _mat(lidar["Tr_velo_to_cam"], 3, 4)
            )
        elif "lidar2cam" in cam:
            rect_from_lidar = _hom(cam["lidar2cam"])
        else:
            rect_from_lidar = None
        if rect_from_lidar is not None and (problem := rigid_problem(rect_from_lidar)):
            field = (
                "images.R0_rect @ lidar_points.Tr_velo_to_cam"
                if "R0_rect" in images and "Tr_velo_to_cam" in lidar
                else "images.CAM2.lidar2cam"
            )
            raise SceneSkip(
                f"{self.infos_path}: {scene_id} {field} is not a rigid pose: {problem}",
                file=str(self.infos_path),
                field=field,
            )
        # Without LiDAR calibration the sweep cannot be placed; dropping it beats misplacing it.
        world_from_lidar = None if rect_from_lidar is None else world_from_rect @ rect_from_lidar
        return frames, objects, world_from_lidar

    # SUN RGB-D ------------------------------------------------------------------------------

    def _load_sunrgbd(self, info: dict, scene_id: str, dropped: list[str]):
        def box_fn(v):
            if v.size < 6 or not _box_ok(v[:6], slice(3, 6)):
                return None
            yaw = float(v[6]) if v.size >= 7 else 0.0
            return Box3D(centre=v[:3], extent=v[3:6], rotation=kitti_lib.rotation_z(yaw))

        images = info.get("images") or {}
        frames = []
        ignore_by_cam: dict[str, list] = {}
        cam_names = [c for c, e in images.items() if isinstance(e, dict)] or ["CAM0"]
        first = cam_names[0]
        ignore_by_cam[first] = []
        objects = self._generic_objects(info, first, box_fn, ignore_by_cam[first])
        for cam_name in cam_names:
            entry = images.get(cam_name) or {}
            if "depth2img" not in entry:
                dropped.append(f"{cam_name}: no depth2img")
                continue
            image = self._image(entry, cam_name, scene_id, cam_name, dropped)
            if image is None:
                continue
            K, cam_from_world = rq_decompose(_mat(entry["depth2img"], 3, 3))
            world_from_cam = np.eye(4)
            world_from_cam[:3, :3] = cam_from_world.T
            path, width, height = image
            frames.append(
                Frame(
                    frame_id=cam_name,
                    width=width,
                    height=height,
                    K=K,
                    world_from_cam=world_from_cam,
                    image_path=path,
                    ignore_boxes=np.array(ignore_by_cam.get(cam_name, [])).reshape(-1, 4),
                )
            )
        return frames, objects, np.eye(4)

    # ScanNet --------------------------------------------------------------------------------

    def _load_scannet(self, info: dict, scene_id: str, dropped: list[str]):
        align = _hom(info["axis_align_matrix"]) if "axis_align_matrix" in info else np.eye(4)
        if problem := rigid_problem(align):
            raise SceneSkip(
                f"{self.infos_path}: {scene_id} axis_align_matrix is not rigid: {problem}",
                file=str(self.infos_path),
                field="axis_align_matrix",
            )

        def box_fn(v):
            if v.size < 6 or not _box_ok(v[:6], slice(3, 6)):
                return None
            yaw = float(v[6]) if v.size >= 7 else 0.0
            return Box3D(centre=v[:3], extent=v[3:6], rotation=kitti_lib.rotation_z(yaw))

        objects = self._generic_objects(info, None, box_fn, [])
        frames = []
        used_ids: set[str] = set()
        for k, entry in enumerate(_scannet_images(info)):
            frame_id = pathlib.Path(str(entry.get("img_path", f"{k:05d}"))).stem
            if frame_id in used_ids:
                frame_id = f"{frame_id}_{k}"
            used_ids.add(frame_id)
            intrinsics = entry.get("cam2img", info.get("cam2img"))
            if intrinsics is None or entry.get("cam2global") is None:
                dropped.append(f"{frame_id}: no cam2img/cam2global")
                continue
            cam2global = _hom(entry["cam2global"])
            if not np.all(np.isfinite(cam2global)):
                # ScanNet marks frames whose tracking failed with -inf poses.
                dropped.append(f"{frame_id}: invalid pose")
                continue
            if problem := rigid_problem(cam2global):
                # A mirrored or scaled pose would flip or stretch every relation of the frame.
                dropped.append(f"{frame_id}: {self.infos_path} images[{k}].cam2global is {problem}")
                continue
            image = self._image(entry, frame_id, scene_id, "", dropped)
            if image is None:
                continue
            path, width, height = image
            frames.append(
                Frame(
                    frame_id=frame_id,
                    width=width,
                    height=height,
                    K=_mat(intrinsics, 3, 3),
                    world_from_cam=align @ cam2global,
                    image_path=path,
                )
            )
        return frames, objects, align

    # nuScenes -------------------------------------------------------------------------------

    def _load_nuscenes(self, info: dict, scene_id: str, dropped: list[str]):
        def box_fn(v):
            if v.size < 7 or not _box_ok(v[:7], slice(3, 6)):
                return None
            return Box3D(centre=v[:3], extent=v[3:6], rotation=kitti_lib.rotation_z(float(v[6])))

        objects = self._generic_objects(info, None, box_fn, [])
        lidar = info.get("lidar_points") or {}
        frames = []
        cam_instances = info.get("cam_instances") or {}
        for cam_name, entry in (info.get("images") or {}).items():
            if not isinstance(entry, dict) or "cam2img" not in entry:
                continue
            if "lidar2cam" in entry:
                cam_from_lidar = _hom(entry["lidar2cam"])
            elif "cam2ego" in entry and "lidar2ego" in lidar:
                cam_from_lidar = np.linalg.inv(_hom(entry["cam2ego"])) @ _hom(lidar["lidar2ego"])
            else:
                dropped.append(f"{cam_name}: no lidar2cam (nor cam2ego + lidar2ego)")
                continue
            if problem := rigid_problem(cam_from_lidar):
                field = "lidar2cam" if "lidar2cam" in entry else "cam2ego / lidar2ego"
                dropped.append(
                    f"{cam_name}: {self.infos_path} images.{cam_name}.{field} is {problem}"
                )
                continue
            image = self._image(entry, cam_name, scene_id, cam_name, dropped)
            if image is None:
                continue
            path, width, height = image
            ignore = []
            for j, cam_inst in enumerate(cam_instances.get(cam_name) or []):
                matched = _match_cam_instance(cam_inst, objects, cam_from_lidar, cam_name)
                box2d = _bbox2d(cam_inst)
                if matched is None:
                    if box2d is not None:
                        ignore.append(box2d)
                    continue
                if box2d is not None:
                    matched.boxes2d[cam_name] = box2d
                matched.frame_index[cam_name] = j
            frames.append(
                Frame(
                    frame_id=cam_name,
                    width=width,
                    height=height,
                    K=_mat(entry["cam2img"], 3, 3),
                    world_from_cam=np.linalg.inv(cam_from_lidar),
                    image_path=path,
                    ignore_boxes=np.array(ignore).reshape(-1, 4),
                )
            )
        return frames, objects, np.eye(4)


def _image_entries(info: dict) -> list[dict]:
    images = info.get("images")
    if isinstance(images, dict):
        return [v for v in images.values() if isinstance(v, dict)]
    if isinstance(images, list):
        return [v for v in images if isinstance(v, dict)]
    return []


def _scannet_images(info: dict) -> list[dict]:
    """Posed images in one shape, `{img_path, cam2global, cam2img?}`, from either layout."""
    if info.get("images") is not None:
        return _image_entries(info)
    paths, extrinsics = info.get("img_paths") or [], info.get("extrinsics") or []
    intrinsics = info.get("intrinsics")
    return [
        {
            "img_path": p,
            "cam2global": e,
            **({"cam2img": intrinsics} if intrinsics is not None else {}),
        }
        for p, e in zip(paths, extrinsics, strict=False)
    ]


def _match_cam_instance(
    cam_inst: dict, objects: list[SceneObject], cam_from_lidar: np.ndarray, cam: str
):
    """The unmatched object whose centre, seen from the camera, is the cam_instance's centre."""
    values = np.asarray(cam_inst.get("bbox_3d", []), np.float64).reshape(-1)
    if values.size < 3 or not np.all(np.isfinite(values[:3])):
        return None
    label = _label(cam_inst)
    best, best_dist = None, _MATCH_TOLERANCE_M
    for obj in objects:
        if obj.box3d is None or cam in obj.frame_index:
            continue
        if label >= 0 and obj.extra.get("label", label) != label:
            continue
        centre_cam = cam_from_lidar[:3, :3] @ obj.box3d.centre + cam_from_lidar[:3, 3]
        dist = float(np.linalg.norm(centre_cam - values[:3]))
        if dist <= best_dist:
            best, best_dist = obj, dist
    return best


__all__ = [
    "DEFAULT_CLASSES",
    "Mmdet3dInfosSource",
    "normalize_dataset",
    "readable_category",
    "rq_decompose",
]
