"""What one frame sees: the scene's objects moved into that frame's view space.

Visibility rule (also in docs/visibility.md):

1. **In front and in the image.** The object's 3D box, cut at the camera's near plane
   (`cameras.NEAR_PLANE_M`), projects to a pixel box that overlaps the image with at least
   `min_box_px` pixels on each side after clipping.
2. **Not hidden.** Where the frame has a depth map, or the scene a point cloud, the object must
   show some of its own surface: `visibility.visible_fraction` measures the fraction of the
   object's surface samples that the depth (or the z-buffered point cloud) does not hide, and an
   object below `min_visible_fraction` or with fewer than `min_visible_samples` samples seen is
   dropped as fully occluded. Without depth or points, objects are kept (visibility 1.0).

Objects that may be seen but are not asked about (`FrameObservation.glimpses`): a box in
the image but below `min_box_px`, or visible below the thresholds of step 2. Unless the
occlusion test proves them fully hidden (scan points of the object in the image, none
visible; with a depth map, no pixel seen), a person may see them, so they still count: a
caption shared with one of them does not name an object alone, "the leftmost car" must be
leftmost of them too, and a frame with any of them is not exhaustive (no counting, no "there
is no ..."), since a count or a "no" would be wrong.
An annotated object without a usable 3D box (`unboxed_objects`: a broken box its source
dropped, or one that could not be lifted) makes the frames that may show it non-exhaustive
for the same reason.

The pixel box is the dataset's annotated 2D box where there is one, else the box of the
object's visible surface samples where there are enough of them, else the projected 3D box.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

import jax
import numpy as np

from jax_spatial.geometry import boxes, frames
from jax_spatial.scene import Frame, Scene


@dataclasses.dataclass(frozen=True)
class ObserveConfig:
    """Visibility thresholds. Each default says why it is what it is."""

    # A box thinner than 4 px on the image cannot be pointed at, drawn or asked about.
    min_box_px: float = 4.0
    # Below a fifth of its surface seen, a person can rarely tell what an object is (a ball's
    # sliver behind a table leg), and a few scan points leak through gaps of a sparse z-buffer
    # even for objects behind a wall; such objects are dropped rather than asked about.
    min_visible_fraction: float = 0.2
    # At the ScanNet scan's ~5 cm point spacing, 10 samples are about 0.03 m^2 of surface, the
    # least that shows what an object is; 5 keeps a 40 x 80 px corner wedge of a window frame.
    min_visible_samples: int = 10
    # A pixel box from visible samples needs this many samples to be trusted over the 3D box.
    min_samples_for_box: int = 20


@dataclasses.dataclass
class Glimpses:
    """Objects of a frame that may be seen but are not asked about (host, numpy, ragged).

    Too small or too hidden to ask about or point at, they still take part wherever other
    objects are compared with them: caption uniqueness, relative referring expressions ("the
    leftmost car" must be leftmost of these too), and counting (a frame with glimpses is not
    exhaustive).

    Attributes:
      object_index: `[g]` annotation index of each object for this frame.
      categories, captions: per object.
      centre, extent, rotation: `[g, 3]`, `[g, 3]`, `[g, 3, 3]` view-frame boxes.
      box2d: `[g, 4]` projected pixel boxes (clipped to the image).
      dropped_phrases, dropped_categories: reference phrases and categories of objects that
        may be seen but have no geometry in the batch (no usable 3D box, or they did not fit
        the largest bucket, `batching.trim_to_bucket`): objects sharing them cannot be named
        by caption or by a relative expression.
      unlabelled_boxes: `[m, 4]` pixel regions where unlabelled objects may be (KITTI
        DontCare, `Frame.ignore_boxes`); None: none. Relative expressions respect them
        (`batching.relative_allowed_for`).
      box_complete, hidden_depth: `[g]` as `FrameObservation`'s (lifted boxes); None: complete
        annotated boxes.
    """

    object_index: np.ndarray
    categories: list[str]
    captions: list[str | None]
    centre: np.ndarray
    extent: np.ndarray
    rotation: np.ndarray
    box2d: np.ndarray
    dropped_phrases: tuple[str, ...] = ()
    dropped_categories: tuple[str, ...] = ()
    unlabelled_boxes: np.ndarray | None = None
    box_complete: np.ndarray | None = None
    hidden_depth: np.ndarray | None = None

    def __post_init__(self):
        if self.box_complete is None:
            self.box_complete = np.ones(len(self.categories), bool)
        if self.hidden_depth is None:
            self.hidden_depth = np.zeros(len(self.categories))

    @property
    def regions(self) -> np.ndarray:
        """`unlabelled_boxes` as a `[m, 4]` array (empty when None)."""
        if self.unlabelled_boxes is None:
            return np.zeros((0, 4))
        return np.asarray(self.unlabelled_boxes, np.float64).reshape(-1, 4)

    @classmethod
    def empty(cls) -> Glimpses:
        return cls(
            np.zeros(0, np.int64),
            [],
            [],
            np.zeros((0, 3)),
            np.zeros((0, 3)),
            np.zeros((0, 3, 3)),
            np.zeros((0, 4)),
        )

    def __len__(self) -> int:
        return len(self.categories)

    @property
    def reference_phrases(self) -> list[str]:
        return [c if c else cat for c, cat in zip(self.captions, self.categories, strict=True)]

    def select(self, keep) -> Glimpses:
        """A copy with only the glimpses at positions `keep`; the others become dropped."""
        keep = np.asarray(keep, dtype=int)
        gone = sorted(set(range(len(self))) - set(keep.tolist()))
        phrases = self.reference_phrases
        return Glimpses(
            object_index=self.object_index[keep],
            categories=[self.categories[i] for i in keep],
            captions=[self.captions[i] for i in keep],
            centre=self.centre[keep].reshape(-1, 3),
            extent=self.extent[keep].reshape(-1, 3),
            rotation=self.rotation[keep].reshape(-1, 3, 3),
            box2d=self.box2d[keep].reshape(-1, 4),
            dropped_phrases=self.dropped_phrases + tuple(phrases[i] for i in gone),
            dropped_categories=self.dropped_categories + tuple(self.categories[i] for i in gone),
            unlabelled_boxes=self.unlabelled_boxes,
            box_complete=np.asarray(self.box_complete)[keep],
            hidden_depth=np.asarray(self.hidden_depth)[keep],
        )


@dataclasses.dataclass
class FrameObservation:
    """The visible objects of one frame in its view space (host, numpy, ragged).

    Attributes:
      scene_id, frame_id, source: provenance.
      width, height: image size.
      K: `[3, 3]` intrinsics; view_from_cam: `[4, 4]`.
      image_path / image_bytes: the encoded image.
      object_index: `[n]` each object's index in the source's annotation order for this frame.
      categories, captions: per object; captions may be None.
      centre, extent, rotation: `[n, 3]`, `[n, 3]`, `[n, 3, 3]` view-frame boxes.
      box2d: `[n, 4]` pixel boxes; box2d_source: per object "annotated" | "points" | "projected"
        | "mask" (image-only lifting).
      visibility: `[n]` visible fraction (1.0 when not measurable).
      exhaustive: counting questions allowed on this frame.
      masks: per object, its instance mask in this frame as the source gave it (COCO RLE dict
        or polygon list, see `jax_spatial.masks`), or None.
      box_complete: `[n]` bool the 3D box covers the whole object. True for annotated boxes;
        False for a box lifted from a cut-off or partly hidden view (`lift.scene_lift`), whose
        size must not be compared.
      geometry: where the 3D boxes came from, for the QA's `meta`: `{"boxes": "annotated"}`,
        or `{"boxes": "lifted", "depth": ..., "intrinsics": ..., "gravity": ...}` naming the
        estimators (`Scene.meta["estimators"]`).
      hidden_depth: `[n]` metres a lifted box may reach behind what the camera saw (its
        visible footprint's longer side minus its depth along the line of sight; 0 for
        annotated boxes). Relations widen their margins by it.
      glimpses: objects that may be seen but are not asked about (`Glimpses`); None: none.
      referring: per object, the words that single it out in this frame (its unique caption
        "the red chair", or a relative expression "the leftmost car"), None where only
        pointing (a box, mask or mark) can; set after selection (`with_referring`). None for
        the whole list: not decided, caption uniqueness is checked from the objects alone.
    """

    scene_id: str
    frame_id: str
    source: str
    width: int
    height: int
    K: np.ndarray
    view_from_cam: np.ndarray
    image_path: str | None
    image_bytes: bytes | None
    object_index: np.ndarray
    categories: list[str]
    captions: list[str | None]
    centre: np.ndarray
    extent: np.ndarray
    rotation: np.ndarray
    box2d: np.ndarray
    box2d_source: list[str]
    visibility: np.ndarray
    exhaustive: bool
    masks: list | None = None
    box_complete: np.ndarray | None = None
    hidden_depth: np.ndarray | None = None
    geometry: dict | None = None
    glimpses: Glimpses | None = None
    referring: list[str | None] | None = None

    def __post_init__(self):
        if self.box_complete is None:
            self.box_complete = np.ones(len(self.categories), bool)
        if self.hidden_depth is None:
            self.hidden_depth = np.zeros(len(self.categories))

    @classmethod
    def from_view_boxes(
        cls,
        categories: Sequence[str],
        centre,
        extent,
        rotation=None,
        captions: Sequence[str | None] | None = None,
        *,
        box2d=None,
        exhaustive: bool = True,
        scene_id: str = "scene",
        frame_id: str = "frame",
        source: str = "user",
        width: int = 640,
        height: int = 480,
    ) -> FrameObservation:
        """An observation of boxes already in the view frame, without a camera or image.

        For asking about boxes one has (a detector's 3D boxes moved into the view frame, a
        hand-checked scene): the relation, selection and phrasing stages need only these.

        Args:
          categories: `n` category names.
          centre, extent: `[n, 3]` view-frame centres and full side lengths (metres).
          rotation: `[n, 3, 3]` view_from_box rotations (default: axis-aligned).
          captions: `n` captions or None (default: none).
          box2d: `[n, 4]` pixel boxes (default: zeros, for formats that draw nothing).
          exhaustive: every object of the category in view is listed (allows counting).
          scene_id, frame_id, source: provenance (they seed the phrasing and QA ids).
          width, height: the nominal image size.
        """
        n = len(categories)
        centre = np.asarray(centre, np.float64).reshape(n, 3)
        extent = np.asarray(extent, np.float64).reshape(n, 3)
        if rotation is None:
            rotation = np.broadcast_to(np.eye(3), (n, 3, 3))
        return cls(
            scene_id=scene_id,
            frame_id=frame_id,
            source=source,
            width=int(width),
            height=int(height),
            K=np.eye(3),
            view_from_cam=np.eye(4),
            image_path=None,
            image_bytes=None,
            object_index=np.arange(n),
            categories=[str(c) for c in categories],
            captions=list(captions) if captions is not None else [None] * n,
            centre=centre,
            extent=extent,
            rotation=np.array(rotation, np.float64).reshape(n, 3, 3),
            box2d=np.zeros((n, 4)) if box2d is None else np.array(box2d, np.float64),
            box2d_source=["projected"] * n,
            visibility=np.ones(n),
            exhaustive=bool(exhaustive),
        )

    @property
    def num_objects(self) -> int:
        return len(self.categories)

    @property
    def reference_phrases(self) -> list[str]:
        """The phrase that names each object: its caption, else its category."""
        return [c if c else cat for c, cat in zip(self.captions, self.categories, strict=True)]

    @property
    def ambiguous_reference(self) -> list[bool]:
        """Objects named only by a category that other objects of the frame share.

        A bare "chair" beside a captioned "red chair" has a phrase of its own, yet "the chair"
        does not say which of the two is meant; such an object is never a unique reference.
        Glimpses (objects that may be seen, not asked about) count as sharing, and so do
        unlabelled regions (KITTI DontCare), which may hold an object of any category.
        """
        counts = collections.Counter(self.categories)
        unlabelled = False
        if self.glimpses is not None:
            counts.update(self.glimpses.categories)
            counts.update(self.glimpses.dropped_categories)
            unlabelled = len(self.glimpses.regions) > 0
        return [
            not caption and (counts[category] > 1 or unlabelled)
            for caption, category in zip(self.captions, self.categories, strict=True)
        ]

    @property
    def caption_unique(self) -> list[bool]:
        """Objects whose reference phrase names them alone among every object that may be
        seen in the frame (the asked-about ones and the glimpses), so "the <phrase>" works."""
        phrases = collections.Counter(self.reference_phrases)
        if self.glimpses is not None:
            phrases.update(self.glimpses.reference_phrases)
            phrases.update(self.glimpses.dropped_phrases)
        return [
            phrases[p] == 1 and not a
            for p, a in zip(self.reference_phrases, self.ambiguous_reference, strict=True)
        ]

    @property
    def num_glimpses(self) -> int:
        return 0 if self.glimpses is None else len(self.glimpses)

    def with_referring(self, referring: Sequence[str | None]) -> FrameObservation:
        """A copy whose objects are named by `referring` (see the attribute)."""
        if len(referring) != self.num_objects:
            raise ValueError(f"{len(referring)} referring phrases for {self.num_objects} objects")
        return dataclasses.replace(self, referring=list(referring))

    def select(self, keep: np.ndarray) -> FrameObservation:
        """A copy with only the objects at positions `keep`."""
        keep = np.asarray(keep, dtype=int)
        return dataclasses.replace(
            self,
            object_index=self.object_index[keep],
            categories=[self.categories[i] for i in keep],
            captions=[self.captions[i] for i in keep],
            centre=self.centre[keep],
            extent=self.extent[keep],
            rotation=self.rotation[keep],
            box2d=self.box2d[keep],
            box2d_source=[self.box2d_source[i] for i in keep],
            visibility=self.visibility[keep],
            masks=None if self.masks is None else [self.masks[i] for i in keep],
            box_complete=self.box_complete[keep],
            hidden_depth=self.hidden_depth[keep],
            referring=None if self.referring is None else [self.referring[i] for i in keep],
        )


def observe_frame(
    scene: Scene, frame: Frame, config: ObserveConfig = ObserveConfig()
) -> FrameObservation:
    """Moves the scene's 3D-boxed objects into `frame`'s view space; keeps the visible ones."""
    # Imported here: visibility pulls in the z-buffer code, which observe's users may not need.
    from jax_spatial import visibility

    objects = [o for o in scene.objects if o.box3d is not None]
    n = len(objects)
    cam_from_world = np.linalg.inv(frame.world_from_cam)
    if n:
        centre_w = np.stack([o.box3d.centre for o in objects])
        extent = np.stack([o.box3d.extent for o in objects])
        rot_w = np.stack([o.box3d.rotation for o in objects])
        corners_cam = _corners_in(cam_from_world, centre_w, extent, rot_w)
    else:
        corners_cam = np.zeros((0, 8, 3))
    view_from_world, box_proj, in_view = _frame_geometry(frame, corners_cam)
    if n:
        size_ok = ((box_proj[:, 2] - box_proj[:, 0]) >= config.min_box_px) & (
            (box_proj[:, 3] - box_proj[:, 1]) >= config.min_box_px
        )
        keep = in_view & size_ok
    else:
        centre_w = extent = np.zeros((0, 3))
        rot_w = np.zeros((0, 3, 3))
        keep = np.zeros((0,), bool)

    fraction = np.ones(n)
    sample_box = np.full((n, 4), np.nan)
    sample_count = np.zeros(n, int)
    has_points = scene.points is not None and len(scene.points) > 0
    if n and (frame.depth is not None or has_points):
        # Boxes too small to ask about are measured too: whether they may be seen decides
        # whether they count for uniqueness and counting.
        fraction, sample_count, sample_box = visibility.visible_fraction(
            scene, frame, centre_w, extent, rot_w, candidates=in_view
        )
        seen = (fraction >= config.min_visible_fraction) & (
            sample_count >= config.min_visible_samples
        )
        # In view and not shown fully hidden: the image may show some of it. An object the
        # occlusion test sees nothing of does not count.
        glimpsed = in_view & ~(keep & seen) & (sample_count > 0)
        if frame.depth is None:
            # No visible scan point: hidden when it has points and all are hidden (behind a
            # wall); with no points in the image at all (a scan hole), nothing proves it
            # hidden, so it may be seen.
            unknown = in_view & (sample_count == 0)
            if unknown.any():
                samples = visibility.point_samples(
                    scene, frame, centre_w, extent, rot_w, candidates=unknown
                )
                judged = np.bincount(samples["object"], minlength=n) > 0
                glimpsed = glimpsed | (unknown & ~judged)
        keep = keep & seen
    else:
        # Nothing to measure occlusion with: every box in the image may be seen.
        glimpsed = in_view & ~keep

    unboxed = unboxed_objects(scene, frame)
    idx = np.flatnonzero(keep)
    box2d, box_source = [], []
    for i in idx:
        annotated = objects[i].boxes2d.get(frame.frame_id)
        if annotated is not None:
            box2d.append(np.asarray(annotated, np.float64))
            box_source.append("annotated")
        elif sample_count[i] >= config.min_samples_for_box and np.all(np.isfinite(sample_box[i])):
            box2d.append(sample_box[i])
            box_source.append("points")
        else:
            box2d.append(box_proj[i])
            box_source.append("projected")
    centre_v = (centre_w[idx] @ view_from_world[:3, :3].T + view_from_world[:3, 3]).reshape(-1, 3)
    rot_v = np.einsum("ij,njk->nik", view_from_world[:3, :3], rot_w[idx]).reshape(-1, 3, 3)
    return FrameObservation(
        scene_id=scene.scene_id,
        frame_id=frame.frame_id,
        source=scene.source,
        width=int(frame.width),
        height=int(frame.height),
        K=frame.K,
        view_from_cam=view_from_world @ frame.world_from_cam,
        image_path=frame.image_path,
        image_bytes=frame.image_bytes,
        object_index=np.array(
            [objects[i].frame_index.get(frame.frame_id, objects[i].index) for i in idx],
            dtype=np.int64,
        ),
        categories=[objects[i].category for i in idx],
        captions=[objects[i].caption for i in idx],
        centre=centre_v,
        extent=extent[idx].reshape(-1, 3),
        rotation=rot_v,
        box2d=np.array(box2d, np.float64).reshape(-1, 4),
        box2d_source=box_source,
        visibility=np.asarray(fraction)[idx].astype(np.float64),
        # A glimpse the QA do not know of would make "how many" and "is there no ..." wrong.
        exhaustive=bool(
            frame.exhaustive and len(frame.ignore_boxes) == 0 and not glimpsed.any() and not unboxed
        ),
        masks=[objects[i].masks.get(frame.frame_id) for i in idx],
        geometry=_geometry_provenance(scene, [objects[i] for i in idx]),
        box_complete=np.array(
            [bool(objects[i].extra.get("lift", {}).get("complete", True)) for i in idx], bool
        ),
        hidden_depth=np.array(
            [float(objects[i].extra.get("lift", {}).get("hidden_depth_m", 0.0)) for i in idx]
        ),
        glimpses=_glimpses(
            frame,
            objects,
            np.flatnonzero(glimpsed),
            box_proj,
            view_from_world,
            centre_w,
            extent,
            rot_w,
            [o for o in scene.objects if o.box3d is None and int(o.index) in set(unboxed)],
        ),
    )


def _glimpses(frame, objects, idx, box_proj, view_from_world, centre_w, extent, rot_w, unboxed):
    """The `Glimpses` of objects at positions `idx` (world boxes moved to the view frame).

    `unboxed`: objects the frame may show that have no 3D box to compare: their phrases and
    categories are recorded as dropped, so nothing sharing them is named by words.
    """
    centre_v = (centre_w[idx] @ view_from_world[:3, :3].T + view_from_world[:3, 3]).reshape(-1, 3)
    rot_v = np.einsum("ij,njk->nik", view_from_world[:3, :3], rot_w[idx]).reshape(-1, 3, 3)
    return Glimpses(
        object_index=np.array(
            [objects[i].frame_index.get(frame.frame_id, objects[i].index) for i in idx],
            dtype=np.int64,
        ),
        categories=[objects[i].category for i in idx],
        captions=[objects[i].caption for i in idx],
        centre=centre_v,
        extent=extent[idx].reshape(-1, 3),
        rotation=rot_v,
        box2d=np.asarray(box_proj, np.float64).reshape(-1, 4)[idx],
        dropped_phrases=tuple(o.caption or o.category for o in unboxed),
        dropped_categories=tuple(o.category for o in unboxed),
        unlabelled_boxes=(
            np.asarray(frame.ignore_boxes, np.float64).reshape(-1, 4)
            if len(frame.ignore_boxes)
            else None
        ),
        box_complete=np.array(
            [bool(objects[i].extra.get("lift", {}).get("complete", True)) for i in idx], bool
        ),
        hidden_depth=np.array(
            [float(objects[i].extra.get("lift", {}).get("hidden_depth_m", 0.0)) for i in idx]
        ),
    )


def unboxed_objects(scene: Scene, frame: Frame) -> list[int]:
    """Annotation indices of the objects without a usable 3D box that `frame` may show.

    Such an object (a broken box annotation dropped by its source, or one not lifted) is never
    asked about, yet the image may show it, so counting and "there is no ..." answers would be
    wrong on the frame: observe makes it non-exhaustive. An object with per-frame annotations
    (2D boxes, masks) may show in those frames; one without any may show in every frame.
    """
    out = []
    for o in scene.objects:
        if o.box3d is not None:
            continue
        if not (o.boxes2d or o.masks) or frame.frame_id in o.boxes2d or frame.frame_id in o.masks:
            out.append(int(o.index))
    return out


def _geometry_provenance(scene: Scene, visible) -> dict:
    """Which boxes and estimators produced this frame's geometry."""
    lifted = sum("lift" in o.extra for o in visible)
    if not lifted:
        return {"boxes": "annotated"}
    out = {"boxes": "lifted" if lifted == len(visible) else "mixed"}
    out.update({k: str(v) for k, v in (scene.meta.get("estimators") or {}).items()})
    return out


def _object_bucket(n: int) -> int:
    """Padded object count for `_frame_geometry_jit`: powers of two from 8, so a run over
    scenes of any size compiles a handful of times, not once per object count."""
    return max(8, 1 << max(n - 1, 0).bit_length())


@jax.jit
def _frame_geometry_jit(world_from_cam, corners_cam, K, size):
    view_from_world = frames.view_from_world(world_from_cam)
    box, visible, _ = boxes.projected_box2d(corners_cam, K, size[0], size[1])
    return view_from_world, box, visible


def _frame_geometry(frame: Frame, corners_cam: np.ndarray):
    """The frame's view pose and its objects' projected pixel boxes, in one compiled call.

    The geometry helpers are jnp code; run eagerly per frame they cost a dispatch per
    operation (most of a frame's time), so they run here jitted over a padded object axis.
    They compute in float32 (JAX's default); centimetre scenes lose nothing by it.

    Args:
      frame: the camera (`world_from_cam`, `K`, `width`, `height`).
      corners_cam: `[n, 8, 3]` box corners in the camera frame.

    Returns:
      view_from_world `[4, 4]` float64, box `[n, 4]` float64 (clipped pixel box), in_view
      `[n]` bool (see `boxes.projected_box2d`).
    """
    n = len(corners_cam)
    padded = np.zeros((_object_bucket(n), 8, 3), np.float32)
    padded[:n] = corners_cam
    view_from_world, box, visible = _frame_geometry_jit(
        np.asarray(frame.world_from_cam, np.float32),
        padded,
        np.asarray(frame.K, np.float32),
        np.array([frame.width, frame.height], np.float32),
    )
    return (
        np.asarray(view_from_world, np.float64),
        np.asarray(box, np.float64)[:n],
        np.asarray(visible)[:n],
    )


def _corners_in(a_from_world, centre, extent, rotation):
    """`[n, 8, 3]` corners of world boxes in frame a (float64 on the host)."""
    local = boxes.CORNER_SIGNS[None] * (0.5 * extent[:, None, :])
    world = np.einsum("nij,nkj->nki", rotation, local) + centre[:, None, :]
    return world @ a_from_world[:3, :3].T + a_from_world[:3, 3]


def observe_scene(scene: Scene, config: ObserveConfig = ObserveConfig()) -> list[FrameObservation]:
    """One observation per frame, in frame order."""
    return [observe_frame(scene, frame, config) for frame in scene.frames]
