"""COCO instances (and captions) JSON: plain photos with instance masks, lifted with estimates.

Layout (COCO 2017 as distributed; `split` defaults to `val2017`)::

    annotations/instances_<split>.json   images, annotations (segmentation, bbox, iscrowd),
                                         categories
    annotations/captions_<split>.json    optional: five captions per image
    <split>/<file_name>                  the images

`instances=` and `images=` point at another JSON / image folder (relative paths are taken
under root), `captions=` at another captions file (`captions=False` ignores them).

One scene per image (`scene_id` = the COCO image id as a string, ids in numeric order), one
frame (`frame_id` = the file stem). Objects: every annotation with `iscrowd == 0`, in the
JSON's order (`SceneObject.index` = position among the image's annotations, `extra["ann_id"]`
the COCO id), category from the JSON's `categories` (lower case, `_` -> space; an id the list lacks
skips the image, naming the file and the annotation's `category_id`), the
segmentation as the frame's mask (polygons or RLE, decoded by `jax_spatial.masks`) and the
`[x, y, w, h]` bbox as `boxes2d` (`(x1, y1, x2, y2)`). Crowd annotations (`iscrowd == 1`)
mark a pile of unlabelled instances: their boxes become `Frame.ignore_boxes` and the frame is
not exhaustive, so no counting question is asked on it. The image's captions go to
`scene.meta["captions"]` (they describe the whole picture; they are not object references).

COCO has no depth, intrinsics or gravity. Depth comes from `depth_dir` (precomputed maps named
after the images, 16-bit PNG millimetres by default: see `estimators.PrecomputedDepth`) or a
`depth_estimator` (an estimator object or a Hugging Face model id); an image with neither
raises `SceneSkip` saying so. Intrinsics from EXIF (`intrinsics="exif"`, falling back to the
60 degree FOV prior; COCO keeps EXIF in many of its Flickr JPEGs) or the prior alone
(`"fov"`); gravity from the level prior, or a JSON of known tilts (`gravity=path`).
`scene.meta["estimators"]` records which ones made each input.

The scenes come out un-lifted (objects with masks and no `box3d`): run `lift_scene` on them or
wrap the source with `scene_lift.lifted(...)`.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from jax_spatial.lift.scene_lift import build_estimators, estimate_frame
from jax_spatial.scene import Scene, SceneObject, SceneSkip
from jax_spatial.sources import Source, register


def readable_name(name: str) -> str:
    """`"Traffic_Light"` -> `"traffic light"`."""
    return " ".join(str(name).replace("_", " ").lower().split())


def xywh_to_xyxy(box) -> np.ndarray | None:
    """COCO `[x, y, w, h]` -> `[4]` `(x1, y1, x2, y2)`, None when malformed."""
    if box is None:
        return None
    arr = np.asarray(box, np.float64).reshape(-1)
    if arr.size < 4 or not np.all(np.isfinite(arr[:4])) or arr[2] < 0 or arr[3] < 0:
        return None
    x, y, w, h = arr[:4]
    return np.array([x, y, x + w, y + h])


def read_json(path) -> object:
    """A JSON file's value; a file that does not parse names itself and the line.

    Raises:
      ValueError: not JSON (truncated, not UTF-8); the message names the file and line.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a UTF-8 JSON file ({err.reason})") from None


def _entries(data, key: str, path) -> list:
    """`data[key]` as a list (absent: empty); a value of another kind is an error."""
    value = data.get(key, []) if isinstance(data, dict) else []
    if not isinstance(value, list):
        raise ValueError(f"{path}: {key} is a {type(value).__name__}, not a list")
    return value


def _resolve(root: pathlib.Path, path) -> pathlib.Path:
    path = pathlib.Path(path)
    return path if path.is_absolute() or path.exists() else root / path


@register("coco")
class CocoSource(Source):
    """COCO-style instance annotations over plain images (see the module docstring).

    Options:
      split: "val2017" by default.
      instances, captions, images: override the JSON paths / image folder.
      depth_dir, depth_suffix, depth_scale, depth_estimator, intrinsics, hfov_deg, gravity:
        see `scene_lift.build_estimators`.
    """

    def __init__(
        self,
        root: str,
        split: str = "val2017",
        instances: str | None = None,
        captions: str | bool | None = None,
        images: str | None = None,
        depth_dir: str | None = None,
        depth_suffix: str = ".png",
        depth_scale: float | None = None,
        depth_estimator=None,
        intrinsics="exif",
        hfov_deg: float = 60.0,
        gravity=None,
        **options,
    ):
        super().__init__(
            root, split=split, instances=instances, captions=captions, images=images,
            depth_dir=depth_dir, depth_suffix=depth_suffix, depth_scale=depth_scale,
            depth_estimator=depth_estimator, intrinsics=intrinsics, hfov_deg=hfov_deg,
            gravity=gravity, **options,
        )  # fmt: skip
        self.root_path = pathlib.Path(root)
        self.instances_path = _resolve(
            self.root_path, instances or f"annotations/instances_{split}.json"
        )
        if not self.instances_path.is_file():
            raise FileNotFoundError(f"COCO instances JSON not found: {self.instances_path}")
        self.images_dir = _resolve(self.root_path, images or split)
        data = read_json(self.instances_path)
        if not isinstance(data, dict):
            raise ValueError(f"{self.instances_path}: not a COCO instances file (not an object)")
        # A bad entry costs only itself (and the image it belongs to): it is listed in
        # `skipped_entries`, the rest of the file is read.
        self.categories = {}
        for k, c in enumerate(_entries(data, "categories", self.instances_path)):
            try:
                self.categories[int(c["id"])] = readable_name(c.get("name", c["id"]))
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                self._skip_entry(f"categories[{k}]", err)
        self.images = {}
        for k, im in enumerate(_entries(data, "images", self.instances_path)):
            try:
                self.images[int(im["id"])] = im
            except (KeyError, TypeError, ValueError) as err:
                self._skip_entry(f"images[{k}]", err)
        self.annotations: dict[int, list[dict]] = {i: [] for i in self.images}
        for k, ann in enumerate(_entries(data, "annotations", self.instances_path)):
            try:
                self.annotations.setdefault(int(ann["image_id"]), []).append(ann)
            except (KeyError, TypeError, ValueError) as err:
                self._skip_entry(f"annotations[{k}]", err)
        self.captions: dict[int, list[str]] = {}
        if captions is not False:
            cap_path = _resolve(self.root_path, captions or f"annotations/captions_{split}.json")
            if cap_path.is_file():
                cap_data = read_json(cap_path)
                for k, ann in enumerate(_entries(cap_data, "annotations", cap_path)):
                    try:
                        text = str(ann.get("caption", "")).strip()
                        if text:
                            self.captions.setdefault(int(ann["image_id"]), []).append(text)
                    except (KeyError, TypeError, ValueError, AttributeError) as err:
                        self._skip_entry(f"annotations[{k}]", err, cap_path)
            elif captions:
                raise FileNotFoundError(f"COCO captions JSON not found: {cap_path}")
        self.estimators = build_estimators(
            depth_dir=None if depth_dir is None else str(_resolve(self.root_path, depth_dir)),
            depth_suffix=depth_suffix,
            depth_scale=depth_scale,
            depth_estimator=depth_estimator,
            intrinsics=intrinsics,
            hfov_deg=hfov_deg,
            gravity=gravity,
        )

    def _skip_entry(self, field: str, err: Exception, path=None) -> None:
        path = path or self.instances_path
        what = f"missing key {err.args[0]!r}" if isinstance(err, KeyError) else str(err)
        reason = f"{path}: {field}: {what}"
        self.skipped_entries.append(
            {"scene_id": None, "file": str(path), "field": field, "reason": reason}
        )

    def scene_ids(self) -> list[str]:
        return [str(i) for i in sorted(self.images)]

    def load(self, scene_id: str) -> Scene:
        try:
            image_id = int(scene_id)
        except ValueError as err:
            raise SceneSkip(f"COCO image ids are integers, got {scene_id!r}") from err
        if image_id not in self.images:
            raise SceneSkip(f"{self.instances_path}: no image {scene_id}")
        info = self.images[image_id]
        file_name = str(info.get("file_name", ""))
        image_path = str(self.images_dir / file_name)
        frame_id = pathlib.Path(file_name).stem or scene_id
        frame, names = estimate_frame(frame_id, image_path, self.estimators)
        declared = (info.get("width"), info.get("height"))
        if None not in declared and (int(declared[0]), int(declared[1])) != (
            frame.width,
            frame.height,
        ):
            raise SceneSkip(
                f"{image_path}: image is {frame.width}x{frame.height}, the JSON says "
                f"{declared[0]}x{declared[1]}"
            )
        objects, ignore = self._objects(image_id, frame_id)
        frame.ignore_boxes = np.asarray(ignore, np.float64).reshape(-1, 4)
        frame.exhaustive = not ignore
        return Scene(
            scene_id=scene_id,
            source=self.name,
            frames=[frame],
            objects=objects,
            root=str(self.root_path.resolve()),
            meta={
                "image_id": image_id,
                "file_name": file_name,
                "captions": list(self.captions.get(image_id, [])),
                "estimators": names,
                "instances": str(self.instances_path),
                "coco_url": info.get("coco_url"),
            },
        )

    def _objects(self, image_id: int, frame_id: str):
        """The image's objects and crowd boxes; a malformed annotation skips the image."""
        objects, ignore = [], []
        for k, ann in enumerate(self.annotations.get(image_id, [])):
            try:
                self._add_object(k, ann, frame_id, objects, ignore)
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                detail = f"missing key {err.args[0]!r}" if isinstance(err, KeyError) else err
                ann_id = ann.get("id") if isinstance(ann, dict) else None
                field = f"annotations[id={ann_id}]"
                raise SceneSkip(
                    f"{self.instances_path}: {field} (annotation {k} of image {image_id}): "
                    f"{detail}",
                    file=str(self.instances_path),
                    field=field,
                ) from None
        return objects, ignore

    def _add_object(self, k: int, ann: dict, frame_id: str, objects: list, ignore: list) -> None:
        box = xywh_to_xyxy(ann.get("bbox"))
        if ann.get("iscrowd", 0):
            if box is not None:
                ignore.append(box)
            return
        cat_id = int(ann.get("category_id", -1))
        category = self.categories.get(cat_id)
        if category is None:
            # A made-up name ("category 99") would be asked about as if it were a class.
            field = f"annotations[id={ann.get('id')}].category_id"
            raise SceneSkip(
                f"{self.instances_path}: {field} {cat_id} is not in its categories list",
                file=str(self.instances_path),
                field=field,
            )
        seg = ann.get("segmentation")
        obj = SceneObject(
            index=k,
            category=category,
            boxes2d={frame_id: box} if box is not None else {},
            masks={frame_id: seg} if seg else {},
            extra={"ann_id": ann.get("id"), "category_id": cat_id, "area": ann.get("area")},
        )
        if not seg:
            # Left without a mask the object would be lifted from its box; COCO's promise
            # is a mask, so an empty one is a broken annotation, dropped at lifting.
            obj.masks[frame_id] = []
        objects.append(obj)


__all__ = ["CocoSource", "read_json", "readable_name", "xywh_to_xyxy"]
