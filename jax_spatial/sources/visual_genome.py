"""Visual Genome v1.2: photos with named, attributed 2D boxes, lifted from estimated depth.

Annotation files (v1.2 JSON layouts), each read from `root/<name>` or, as distributed, from
inside any `*.zip` in root whose members include it (read in place with `zipfile`, never
extracted)::

    objects.json               [{"image_id", "objects": [{"object_id", "x", "y", "w", "h",
                                 "names": [...], "synsets": [...]}, ...]}, ...]
    attributes.json            same layout, objects carry "attributes": ["red", ...]
    region_descriptions.json   optional: [{"id", "regions": [{"phrase", "x", "y", "width",
                                 "height", ...}]}, ...]
    image_data.json            optional: [{"image_id", "width", "height", "url", ...}]
    VG_100K/<id>.jpg, VG_100K_2/<id>.jpg   the images (or the folder given as `images=`)

One scene per image id (ids in numeric order), one frame (`frame_id` "image"). Objects come
from `attributes.json` when present (it is `objects.json` plus attributes), else
`objects.json`, in file order (`SceneObject.index`), with:

* `category`: the first of `names`, lower case, spaces collapsed ("street sign");
* `attributes`: the object's attributes, lower case, stripped, deduplicated, order kept;
* `caption`: a referring phrase *without an article*: up to `caption_attributes` (default 1)
  single-word attributes before the name ("green clock", "white plate"), skipping
  multi-word ones and particles ("on", "off", "up") that do not read as modifiers; the bare
  name when none is left. One attribute keeps captions
  natural: VG attributes are free text and often not adjectives ("sidewalk" on a street,
  "tall" and "green" on a clock), so stacking them yields phrases nobody says; the first one
  is the one the annotator typed first;
* `boxes2d["image"]`: `(x, y, x + w, y + h)`; VG has no masks, so lifting fits boxes to the
  depth inside the 2D box (`lift_scene` documents how well that works: objects that fill
  their box lift well; "sky", "street" or a "fence" seen through do not);
* `extra`: `object_id`, `synsets`, all `names`.

Visual Genome annotates only some of what each image shows, so frames are never exhaustive
(no counting questions). Region descriptions, when the file is there, are kept as
`scene.meta["regions"]` (`{"phrase", "box"}`) for provenance.

Depth, intrinsics and gravity options are COCO's (`depth_dir`, `depth_estimator`,
`intrinsics`, `gravity`, ...; see `coco.py`). An image with no depth, or a missing or corrupt
image, raises `SceneSkip`. `read_objects(image_id)` parses an image's objects without touching
images or depth (what the tests check against the JSON).
"""

from __future__ import annotations

import json
import pathlib
import zipfile

import numpy as np

from jax_spatial.lift.scene_lift import build_estimators, estimate_frame
from jax_spatial.scene import Scene, SceneObject, SceneSkip
from jax_spatial.sources import Source, register
from jax_spatial.sources.coco import read_json

FRAME_ID = "image"
_IMAGE_DIRS = ("VG_100K", "VG_100K_2", "images", ".")


def _clean(text) -> str:
    return " ".join(str(text).lower().split())


def find_json(root: pathlib.Path, name: str):
    """Loads `name` from `root/name`, else from the first zip in root that holds it, else None."""
    direct = root / name
    if direct.is_file():
        return read_json(direct)
    for zpath in sorted(root.glob("*.zip")):
        try:
            with zipfile.ZipFile(zpath) as zf:
                for member in zf.namelist():
                    if member == name or member.endswith("/" + name):
                        with zf.open(member) as f:
                            try:
                                return json.load(f)
                            except json.JSONDecodeError as err:
                                raise ValueError(
                                    f"{zpath}:{member}:{err.lineno}: not valid JSON ({err.msg})"
                                ) from None
        except (zipfile.BadZipFile, EOFError):
            continue  # a truncated or foreign zip: the JSON may be in another one
    return None


# Attributes that do not read as a modifier before a noun ("on clock", "in man").
_NOT_MODIFIERS = frozenset({"on", "off", "in", "out", "up", "down", "at", "of", "here", "there"})


def caption_for(name: str, attributes, max_attributes: int = 1) -> str:
    """`("clock", ["green", "tall"])` -> `"green clock"`: attributes + name, no article."""
    words = [
        a
        for a in attributes
        if a and " " not in a and a not in _NOT_MODIFIERS and a not in name.split()
    ][:max_attributes]
    return " ".join([*words, name])


@register("visual_genome")
class VisualGenomeSource(Source):
    """Visual Genome v1.2 (see the module docstring).

    Options:
      images: image folder (default: root, searched for VG_100K/ and VG_100K_2/).
      caption_attributes: how many attributes go before the name in the caption.
      depth_dir, depth_suffix, depth_scale, depth_estimator, intrinsics, hfov_deg, gravity:
        see `scene_lift.build_estimators`.
    """

    def __init__(
        self,
        root: str,
        images: str | None = None,
        caption_attributes: int = 1,
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
            root, images=images, caption_attributes=caption_attributes, depth_dir=depth_dir,
            depth_suffix=depth_suffix, depth_scale=depth_scale, depth_estimator=depth_estimator,
            intrinsics=intrinsics, hfov_deg=hfov_deg, gravity=gravity, **options,
        )  # fmt: skip
        self.root_path = pathlib.Path(root)
        self.images_dir = pathlib.Path(images) if images else self.root_path
        if not self.images_dir.is_absolute() and images and not self.images_dir.exists():
            self.images_dir = self.root_path / images
        self.caption_attributes = int(caption_attributes)
        entries = find_json(self.root_path, "attributes.json")
        self.has_attributes = entries is not None
        key = "attributes"
        if entries is None:
            entries, key = find_json(self.root_path, "objects.json"), "objects"
        if entries is None:
            raise FileNotFoundError(
                f"no objects.json or attributes.json in {root} (nor inside its zip files)"
            )
        # A bad entry costs only itself: it is listed in `skipped_entries`, the rest is read.
        self._objects = {}
        for k, e in enumerate(self._list(entries, f"{key}.json")):
            try:
                objects = e.get(key) or []
                if not isinstance(objects, list):
                    raise TypeError(f"{key} is a {type(objects).__name__}, not a list")
                self._objects[int(e["image_id"])] = objects
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                self._skip_entry(f"{key}.json", f"[{k}]", err)
        self.image_data = {}
        for k, e in enumerate(self._list(find_json(self.root_path, "image_data.json") or [],
                                         "image_data.json")):  # fmt: skip
            try:
                self.image_data[int(e.get("image_id", e.get("id")))] = e
            except (TypeError, ValueError, AttributeError) as err:
                self._skip_entry("image_data.json", f"[{k}]", err)
        self._regions = {}
        regions = find_json(self.root_path, "region_descriptions.json") or []
        for k, e in enumerate(self._list(regions, "region_descriptions.json")):
            try:
                self._regions[int(e.get("id", e.get("image_id", -1)))] = e.get("regions", [])
            except (TypeError, ValueError, AttributeError) as err:
                self._skip_entry("region_descriptions.json", f"[{k}]", err)
        depth_dir = None if depth_dir is None else str(self._under_root(depth_dir))
        self.estimators = build_estimators(
            depth_dir=depth_dir, depth_suffix=depth_suffix, depth_scale=depth_scale,
            depth_estimator=depth_estimator, intrinsics=intrinsics, hfov_deg=hfov_deg,
            gravity=gravity,
        )  # fmt: skip

    def _list(self, value, name: str) -> list:
        if not isinstance(value, list):
            raise ValueError(f"{self.root_path / name}: not a list of entries")
        return value

    def _skip_entry(self, name: str, field: str, err: Exception) -> None:
        what = f"missing key {err.args[0]!r}" if isinstance(err, KeyError) else str(err)
        file = str(self.root_path / name)
        self.skipped_entries.append(
            {"scene_id": None, "file": file, "field": field, "reason": f"{file}{field}: {what}"}
        )

    def _under_root(self, path) -> pathlib.Path:
        path = pathlib.Path(path)
        return path if path.is_absolute() or path.exists() else self.root_path / path

    def scene_ids(self) -> list[str]:
        return [str(i) for i in sorted(self._objects)]

    def read_objects(self, image_id: int) -> list[SceneObject]:
        """The objects of one image, parsed from the JSON alone (no image, no depth)."""
        objects = []
        for k, entry in enumerate(self._objects.get(int(image_id), [])):
            names = [_clean(n) for n in entry.get("names") or [] if _clean(n)]
            if not names and entry.get("name"):
                names = [_clean(entry["name"])]  # the v1.0 layout had one "name"
            if not names:
                continue
            attributes = tuple(dict.fromkeys(_clean(a) for a in entry.get("attributes") or []))
            attributes = tuple(a for a in attributes if a)
            x, y = float(entry.get("x", 0)), float(entry.get("y", 0))
            w, h = float(entry.get("w", 0)), float(entry.get("h", 0))
            boxes2d = {FRAME_ID: np.array([x, y, x + w, y + h])} if w > 0 and h > 0 else {}
            objects.append(
                SceneObject(
                    index=k,
                    category=names[0],
                    caption=caption_for(names[0], attributes, self.caption_attributes),
                    boxes2d=boxes2d,
                    attributes=attributes,
                    extra={
                        "object_id": entry.get("object_id"),
                        "synsets": list(entry.get("synsets") or []),
                        "names": names,
                    },
                )
            )
        return objects

    def image_path(self, image_id: int) -> pathlib.Path | None:
        candidates = []
        url = (self.image_data.get(int(image_id)) or {}).get("url")
        if url:
            parts = str(url).rstrip("/").split("/")
            candidates.append(self.images_dir / parts[-2] / parts[-1])
        candidates += [self.images_dir / d / f"{image_id}.jpg" for d in _IMAGE_DIRS]
        for path in candidates:
            if path.is_file():
                return path
        return None

    def load(self, scene_id: str) -> Scene:
        try:
            image_id = int(scene_id)
        except ValueError as err:
            raise SceneSkip(f"Visual Genome image ids are integers, got {scene_id!r}") from err
        if image_id not in self._objects:
            raise SceneSkip(f"Visual Genome: no image {scene_id} in the annotations")
        path = self.image_path(image_id)
        if path is None:
            raise SceneSkip(
                f"Visual Genome image {image_id}.jpg not found under {self.images_dir}",
                file=str(self.images_dir / f"{image_id}.jpg"),
                field="image",
            )
        try:
            objects = self.read_objects(image_id)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            name = "attributes.json" if self.has_attributes else "objects.json"
            raise SceneSkip(
                f"{self.root_path / name}: objects of image {image_id}: "
                f"{type(err).__name__}: {err}",
                file=str(self.root_path / name),
                field=f"image_id {image_id}.objects",
            ) from None
        frame, names = estimate_frame(FRAME_ID, str(path), self.estimators)
        frame.exhaustive = False
        regions = []
        for r in self._regions.get(image_id, []):
            x, y = float(r.get("x", 0)), float(r.get("y", 0))
            w, h = float(r.get("width", 0)), float(r.get("height", 0))
            regions.append(
                {"phrase": str(r.get("phrase", "")).strip(), "box": [x, y, x + w, y + h]}
            )
        return Scene(
            scene_id=scene_id,
            source=self.name,
            frames=[frame],
            objects=objects,
            root=str(self.root_path.resolve()),
            meta={"image_id": image_id, "estimators": names, "regions": regions},
        )


__all__ = ["VisualGenomeSource", "caption_for", "find_json"]
