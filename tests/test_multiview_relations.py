"""Multi-view relations: hand-checked cases, jit vs eager, and the per-object reference."""

from __future__ import annotations

import functools
import math

import chex
import hypothesis
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from jax_spatial.errors import UserError
from jax_spatial.geometry import frames
from jax_spatial.multiview import (
    MultiViewConfig,
    compute_multiview_relations,
    make_clip_batch,
    multiview_relations,
)
from jax_spatial.multiview import relations as rel
from jax_spatial.multiview.reference import (
    closest_of,
    reference_box_distance,
    reference_clip_facts,
)

DEFAULT = MultiViewConfig()
CATEGORIES = ("chair", "table", "sofa", "lamp", "tv", "bed")
# Seeds drive numpy, so hypothesis searches over generic clips instead of shrinking values
# onto exact margins, where float32 and float64 may round a tie differently.
_SETTINGS = hypothesis.settings(max_examples=12, deadline=None, derandomize=True)

# Tolerances. Box distances: float32 against a float64 least-squares solve; coordinates are
# room-sized (< 10 m, float32 spacing ~1e-6 m) and nearly parallel edges lose up to
# up to edge length x 3e-4 (under 1 mm) where vertices stand in (relations._edge_distance).
DIST_ATOL = 1e-3
# Generic (non-adversarial) boxes agree far closer; this catches a wrong feature or clamp.
DIST_ATOL_GENERIC = 1e-5
# Angles: float32 bearings differenced vs float64 atan2(cross, dot): ~1e-4 degrees.
ANGLE_ATOL = 1e-3


def yaw(angle):
    return np.asarray(frames.rotation_z(angle), np.float64)


def random_clip(rng: np.random.Generator, n: int, t: int, tilt: bool = False) -> dict:
    """A room-sized clip: boxes on or above a 6 m x 5 m floor, yawed (some tilted), frames at
    quarter-second times (exact in float32, so appearance margins tie exactly in both)."""
    extent = np.exp(rng.uniform(np.log(0.1), np.log(2.0), (n, 3)))
    centre = np.stack(
        [rng.uniform(0, 6, n), rng.uniform(0, 5, n), extent[:, 2] / 2 + rng.uniform(0, 1, n)], -1
    )
    rotation = yaw(rng.uniform(-np.pi, np.pi, n))
    if tilt:
        rotation = Rotation.random(n, random_state=int(rng.integers(2**31))).as_matrix()
    visible = rng.random((t, n)) < 0.3
    visible[:, rng.random(n) < 0.15] = False  # some objects are never seen
    steps = rng.integers(1, 9, t)  # 0.25 .. 2 s apart
    return {
        "centre": centre,
        "extent": extent,
        "rotation": rotation,
        "category": [str(c) for c in rng.choice(CATEGORIES, n)],
        "visible": visible,
        "frame_time": 0.25 * np.cumsum(steps) - 0.25 * steps[0],
    }


def relations_of(clips, n_bucket=16, t_bucket=16, config=DEFAULT, batch_size=None):
    batch = make_clip_batch(clips, n_bucket, t_bucket, batch_size)
    return jax.device_get(multiview_relations(batch, config)), batch


def box(centre, extent=(1, 1, 1), rotation=None):
    return (
        jnp.asarray(centre, jnp.float32),
        jnp.asarray(extent, jnp.float32),
        jnp.asarray(np.eye(3) if rotation is None else rotation, jnp.float32),
    )


# --- ClipBatch -----------------------------------------------------------------------------


def test_make_clip_batch_pads_to_buckets():
    rng = np.random.default_rng(0)
    clips = [random_clip(rng, 5, 7), random_clip(rng, 11, 20)]
    batch = make_clip_batch(clips)
    assert batch.shape == (2, 32, 16)  # 20 frames -> 32, 11 objects -> 16
    assert batch.centre.shape == (2, 16, 3) and batch.rotation.shape == (2, 16, 3, 3)
    assert batch.visible.shape == (2, 32, 16) and batch.visible.dtype == bool
    assert batch.category.dtype == np.int32 and batch.cam_from_world is None
    np.testing.assert_array_equal(batch.valid.sum(1), [5, 11])
    np.testing.assert_array_equal(batch.frame_valid.sum(1), [7, 20])
    assert int(batch.category[0, 5]) == -1 and not batch.visible[0, :, 5:].any()
    np.testing.assert_array_equal(batch.visible[1, :20, :11], clips[1]["visible"])
    # Names become clip-local ids in order of first appearance.
    names = clips[0]["category"]
    assert int(batch.category[0, 0]) == 0
    for i in range(5):
        for j in range(5):
            assert (names[i] == names[j]) == (
                int(batch.category[0, i]) == int(batch.category[0, j])
            )
    # A pytree: it crosses jit.
    assert jax.jit(lambda b: b.seen())(batch).shape == (2, 16)


def test_make_clip_batch_defaults_and_cameras():
    clip = {
        "centre": np.zeros((2, 3)),
        "extent": np.ones((2, 3)),
        "yaw": np.array([0.0, np.pi / 2]),
        "category": [3, 1],
        "visible": np.ones((3, 2), bool),
        "cam_from_world": np.broadcast_to(np.eye(4), (3, 4, 4)),
    }
    batch = make_clip_batch([clip], n_bucket=8, t_bucket=16, batch_size=3)
    assert batch.shape == (3, 16, 8) and batch.cam_from_world.shape == (3, 16, 4, 4)
    np.testing.assert_allclose(batch.rotation[0, 1], yaw(np.pi / 2), atol=1e-6)
    np.testing.assert_array_equal(batch.frame_time[0, :3], [0, 1, 2])  # default 1 s apart
    np.testing.assert_array_equal(batch.category[0, :2], [3, 1])  # ids pass through
    assert not batch.valid[1:].any() and not batch.frame_valid[1:].any()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.pop("extent"), "clip 1: missing field 'extent'"),
        (lambda c: c.update(visible=np.ones((3, 5), bool)), "clip 1: field 'visible'"),
        (lambda c: c.update(centre=np.full((4, 3), np.nan)), "non-finite"),
        (lambda c: c.update(category=["a", 2, "b", "c"]), "mixes names and ids"),
        (lambda c: c.update(extent=-np.ones((4, 3))), "negative side"),
    ],
)
def test_make_clip_batch_names_the_bad_field(change, message):
    rng = np.random.default_rng(1)
    clips = [random_clip(rng, 4, 3), random_clip(rng, 4, 3)]
    change(clips[1])
    with pytest.raises(UserError, match=message):
        make_clip_batch(clips)


def test_make_clip_batch_rejects_oversized_clips():
    rng = np.random.default_rng(2)
    with pytest.raises(UserError, match="more than the largest bucket 32"):
        make_clip_batch([random_clip(rng, 3, 40)])
    with pytest.raises(UserError, match="more than the requested 8"):
        make_clip_batch([random_clip(rng, 9, 3)], n_bucket=8)
    with_cam = random_clip(rng, 2, 3)
    with_cam["cam_from_world"] = np.broadcast_to(np.eye(4), (3, 4, 4))
    with pytest.raises(UserError, match="clip 1: field 'cam_from_world' missing"):
        make_clip_batch([with_cam, random_clip(rng, 2, 3)])
    with pytest.raises(UserError, match="no clips"):
        make_clip_batch([])


# --- box distance, hand-checked ------------------------------------------------------------


def test_box_distance_hand_checked():
    r45 = yaw(np.pi / 4)
    tilt45 = np.asarray(frames.rotation_y(np.pi / 4), np.float64)
    cases = [
        # Two unit cubes with a 1 m gap between faces.
        (box([0, 0, 0]), box([2, 0, 0]), 1.0),
        # Gap along a diagonal: corner (0.5, 0.5, 0.5) to corner (1.5, 1.5, 1.5).
        (box([0, 0, 0]), box([2, 2, 2]), math.sqrt(3.0)),
        # Cube turned 45 degrees about z: its edge reaches x = 2 - sqrt(2)/2 (vertex-face).
        (box([0, 0, 0]), box([2, 0, 0], rotation=r45), 1.5 - math.sqrt(0.5)),
        # Edge against edge: a vertical edge at x = sqrt(2)/2 and a horizontal one (along y)
        # at x = 2 - sqrt(2)/2, crossing at the same height; no vertex is involved.
        (box([0, 0, 0], rotation=r45), box([2, 0, 0], rotation=tilt45), 2 - math.sqrt(2.0)),
        # Touching faces, touching at one edge, and one box inside the other.
        (box([0, 0, 0]), box([1, 0, 0]), 0.0),
        (box([0, 0, 0]), box([1, 1, 0]), 0.0),
        (box([0, 0, 0], [3, 3, 3]), box([0.2, 0, 0]), 0.0),
        # A beam through a post: overlapping, yet no vertex of either lies in the other and
        # no edges meet; only the separating-axis test sees the overlap.
        (box([0, 0, 0], [4, 0.2, 0.2]), box([0, 0, 0], [0.4, 4, 1.0]), 0.0),
        # A flat poster 0.3 m in front of a wall-like box.
        (box([0, 0, 1], [1, 0, 1]), box([0, 0.8, 1], [2, 1, 2]), 0.3),
    ]
    # One compiled call for every case, both orders.
    a = [jnp.stack([case[0][k] for case in cases]) for k in range(3)]
    b = [jnp.stack([case[1][k] for case in cases]) for k in range(3)]
    fn = jax.jit(rel.box_distance)
    want = np.array([case[2] for case in cases])
    np.testing.assert_allclose(fn(*a, *b), want, atol=1e-5)
    np.testing.assert_allclose(fn(*b, *a), want, atol=1e-5)
    for (a, b, _), expected in zip(cases, want, strict=True):
        ref = reference_box_distance(*(np.asarray(x, np.float64) for x in (*a, *b)))
        assert ref == pytest.approx(expected, abs=1e-6)


def test_box_distance_agrees_with_least_squares_on_general_rotations():
    rng = np.random.default_rng(3)
    n = 400
    ca, cb = rng.uniform(-2, 2, (n, 3)), rng.uniform(-2, 2, (n, 3))
    ea = np.exp(rng.uniform(np.log(0.05), np.log(2), (n, 3)))
    eb = np.exp(rng.uniform(np.log(0.05), np.log(2), (n, 3)))
    ra = Rotation.random(n, random_state=4).as_matrix()
    rb = Rotation.random(n, random_state=5).as_matrix()
    got = np.asarray(
        jax.jit(rel.box_distance)(*(jnp.asarray(x, jnp.float32) for x in (ca, ea, ra, cb, eb, rb)))
    )
    want = np.array(
        [reference_box_distance(ca[k], ea[k], ra[k], cb[k], eb[k], rb[k]) for k in range(n)]
    )
    np.testing.assert_allclose(got, want, atol=DIST_ATOL_GENERIC)
    assert 0 < np.sum(want < 1e-6) < n  # both overlapping and separated pairs were drawn


def test_box_distance_nearly_parallel_edges():
    # Yaw differences of 0, 1e-5 .. 1e-2 radians and multiples of 90 degrees: edges parallel
    # or nearly so, where the segment solve is ill-conditioned.
    rng = np.random.default_rng(6)
    deltas = np.concatenate([[0.0], 10.0 ** rng.uniform(-5, -2, 60)]) * rng.choice([-1, 1], 61)
    deltas = deltas + rng.integers(0, 4, 61) * (np.pi / 2)
    base = rng.uniform(-np.pi, np.pi, 61)
    ca = rng.uniform(-1, 1, (61, 3))
    cb = ca + rng.uniform(-3, 3, (61, 3))
    ea = rng.uniform(0.2, 2, (61, 3))
    eb = rng.uniform(0.2, 2, (61, 3))
    ra, rb = yaw(base), yaw(base + deltas)
    got = np.asarray(
        jax.jit(rel.box_distance)(*(jnp.asarray(x, jnp.float32) for x in (ca, ea, ra, cb, eb, rb)))
    )
    want = np.array(
        [reference_box_distance(ca[k], ea[k], ra[k], cb[k], eb[k], rb[k]) for k in range(61)]
    )
    np.testing.assert_allclose(got, want, atol=DIST_ATOL)


# --- relative direction, hand-checked ------------------------------------------------------


def _direction_clip(query_xy, stand_xy=(0.0, 0.0), face_xy=(0.0, 2.0)):
    """Stand at the origin facing +y (north); small 0.1 m boxes."""
    xy = np.array([stand_xy, face_xy, query_xy], np.float64)
    return {
        "centre": np.concatenate([xy, np.full((3, 1), 0.5)], 1),
        "extent": np.full((3, 3), 0.1),
        "category": ["a", "b", "c"],
        "visible": np.ones((1, 3), bool),
    }


@pytest.mark.parametrize(
    "query, angle, easy, medium, hard",
    [
        # West of a north-facing person is to the left: 90 degrees, on the hard boundary.
        ((-2.0, 0.0), 90.0, "left", "left", None),
        ((2.0, 0.0), -90.0, "right", "right", None),
        ((-1.0, 1.0), 45.0, "left", "left", "front-left"),
        ((1.0, 1.0), -45.0, "right", "right", "front-right"),
        # Straight behind: neither left nor right, but "back" for the medium level.
        ((0.0, -2.0), -180.0, None, "back", None),
        ((-1.0, -1.0), 135.0, "left", None, "back-left"),  # on the 135-degree back boundary
        ((-0.5, -2.0), 166.0, "left", "back", "back-left"),
        ((1.0, -2.0), -153.4, "right", "back", "back-right"),
        # Straight ahead: no side.
        ((0.0, 3.0), 0.0, None, None, None),
    ],
)
def test_relative_direction_hand_checked(query, angle, easy, medium, hard):
    out, _ = relations_of([_direction_clip(query)], n_bucket=8)
    got = float(out.direction_angle[0, 0, 1, 2])
    assert (got - angle + 180) % 360 - 180 == pytest.approx(0, abs=0.1)
    for name, classes, want in (
        ("easy", rel.EASY_CLASSES, easy),
        ("medium", rel.MEDIUM_CLASSES, medium),
        ("hard", rel.HARD_CLASSES, hard),
    ):
        cls = int(getattr(out, f"direction_{name}")[0, 0, 1, 2])
        ok = bool(getattr(out, f"direction_{name}_ok")[0, 0, 1, 2])
        assert ok == (want is not None), name
        assert cls == (classes.index(want) if want else -1), name


def test_relative_direction_filters():
    clip = _direction_clip((-2.0, 0.2))
    out, _ = relations_of([clip], n_bucket=8)
    assert out.direction_easy_ok[0, 0, 1, 2]
    # Repeated objects and padding never form a triple.
    assert not out.direction_easy_ok[0, 0, 0, 2] and not out.direction_easy_ok[0, 0, 1, 1]
    assert not out.direction_easy_ok[0, 0, 1, 3:].any()
    # Facing an object 0.3 m away: too near to face.
    near = _direction_clip((-2.0, 0.2), face_xy=(0.0, 0.3))
    out, _ = relations_of([near], n_bucket=8)
    assert not out.direction_easy_ok[0, 0, 1, 2]
    # A 3 m wide query at 2 m spans +-49 degrees: it straddles "front" and "back".
    wide = _direction_clip((-2.0, 0.2))
    wide["extent"] = np.array([[0.1] * 3, [0.1] * 3, [3.0, 0.5, 1.0]])
    out, _ = relations_of([wide], n_bucket=8)
    assert out.direction_easy_ok[0, 0, 1, 2] and not out.direction_hard_ok[0, 0, 1, 2]
    # An unseen object takes no part.
    hidden = _direction_clip((-2.0, 0.2))
    hidden["visible"] = np.array([[True, True, False]])
    out, _ = relations_of([hidden], n_bucket=8)
    assert not out.direction_easy_ok[0].any()
    # A wider margin turns a 30-degree query unclear for the hard level.
    tight = _direction_clip((-1.0, 1.8))
    out, _ = relations_of([tight], n_bucket=8)
    assert out.direction_hard_ok[0, 0, 1, 2]
    out, _ = relations_of([tight], n_bucket=8, config=MultiViewConfig(direction_margin_deg=30))
    assert not out.direction_hard_ok[0, 0, 1, 2]


# --- appearance, counting, closest ---------------------------------------------------------


def test_appearance_and_counts_hand_checked():
    # Frames at 0, 1, 2, 3 s. a first at 0 s, b at 2 s, c at 1 s (and again later), d never.
    visible = np.array(
        [
            [1, 0, 0, 0],
            [0, 0, 1, 0],
            [1, 1, 1, 0],
            [0, 1, 1, 0],
        ],
        bool,
    )
    clip = {
        "centre": np.array([[0, 0, 0.5], [3, 0, 0.5], [0, 3, 0.5], [3, 3, 0.5]], float),
        "extent": np.ones((4, 3)),
        "category": ["chair", "chair", "table", "chair"],
        "visible": visible,
        "frame_time": np.array([0.0, 1.0, 2.0, 3.0]),
    }
    out, _ = relations_of([clip], n_bucket=8)
    np.testing.assert_array_equal(out.first_frame[0, :5], [0, 2, 1, -1, -1])
    np.testing.assert_array_equal(out.first_time[0, :4], [0, 2, 1, 0])
    before = out.appears_before[0, :4, :4]
    assert before[0, 1] and not before[1, 0]  # 2 s apart
    assert not before[0, 2] and not before[2, 1]  # exactly 1 s apart: not more than the margin
    assert not before[:, 3].any() and not before[3].any()
    # Chairs: a and b seen (b in two frames: counted once), d never seen.
    np.testing.assert_array_equal(out.counts[0, :3], [2, 1, 0])
    np.testing.assert_array_equal(out.count_complete[0, :3], [False, True, False])
    np.testing.assert_array_equal(out.unique_category[0, :4], [False, False, True, False])
    # A padded frame showing an object does not count (frame_valid).
    batch = make_clip_batch([clip], 8, 16)
    batch = batch.replace(visible=batch.visible.at[0, 10, 3].set(True))
    out = multiview_relations(batch)
    assert int(out.counts[0, 0]) == 2 and int(out.first_frame[0, 3]) == -1


def test_closest_candidate():
    # Unit cubes on a line: target 0 at x=0; 1 at x=2 (gap 1), 2 at x=2.1 (gap 1.1),
    # 3 at x=4 (gap 3), 4 never seen.
    xs = [0.0, 2.0, 2.1, 4.0, 1.5]
    clip = {
        "centre": np.array([[x, 0.0, 0.5] for x in xs]),
        "extent": np.ones((5, 3)),
        "category": list("abcde"),
        "visible": np.array([[1, 1, 1, 1, 0]], bool),
    }
    out, _ = relations_of([clip], n_bucket=8)
    target = jnp.array([[0, 0, 0, 0, 0]], jnp.int32)
    cands = jnp.array([[[1, 3, 0, 0], [1, 2, 3, 0], [3, 1, 0, 0], [1, 4, 0, 0], [1, 1, 3, 0]]])
    mask = jnp.array([[[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]]], bool)
    closest, gap, clear = jax.device_get(
        rel.closest_candidate_jit(out.distance, out.distance_ok, target, cands, mask, DEFAULT)
    )
    np.testing.assert_array_equal(closest[0], [0, 0, 1, 0, 0])
    np.testing.assert_allclose(gap[0, :3], [2.0, 0.1, 2.0], atol=1e-5)
    # 1 vs 3: clear; 1 vs 2: 0.1 m apart, ambiguous; unseen or repeated candidate: ill-posed.
    np.testing.assert_array_equal(clear[0], [True, False, True, False, False])
    assert int(out.nearest[0, 0]) == 1 and not out.nearest_clear[0, 0]
    # 2 touches 1 (distance 0); 3 is 0.9 m away: clear.
    assert int(out.nearest[0, 2]) == 1 and out.nearest_clear[0, 2]


# --- jit vs eager --------------------------------------------------------------------------


class VariantsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_variants_match_the_compiled_pass(self):
        rng = np.random.default_rng(7)
        clips = [random_clip(rng, int(n), int(t), tilt=True) for n, t in ((5, 9), (8, 16), (2, 3))]
        batch = make_clip_batch(clips, 8, 16)
        fn = self.variant(functools.partial(compute_multiview_relations, config=DEFAULT))
        got = jax.device_get(fn(batch))
        want = jax.device_get(multiview_relations(batch, DEFAULT))
        for name in got.__dataclass_fields__:
            g, w = getattr(got, name), getattr(want, name)
            if g.dtype.kind == "f":
                np.testing.assert_allclose(g, w, atol=1e-5, err_msg=name)
            else:
                np.testing.assert_array_equal(g, w, err_msg=name)
        self.assertEqual(got.direction_easy.dtype, np.int8)
        self.assertEqual(got.distance.shape, (3, 8, 8))
        self.assertEqual(got.direction_angle.shape, (3, 8, 8, 8))
        self.assertEqual(got.counts.shape, (3, 8))


def test_num_categories_is_static():
    rng = np.random.default_rng(8)
    clip = random_clip(rng, 6, 4)
    clip["category"] = [0, 5, 5, 11, 2, 5]
    batch = make_clip_batch([clip], 8, 16)
    out = multiview_relations(batch, num_categories=12)
    assert out.counts.shape == (1, 12)
    seen = np.asarray(clip["visible"]).any(0)
    for c in range(12):
        want = sum(1 for o in range(6) if clip["category"][o] == c and seen[o])
        assert int(out.counts[0, c]) == want


# --- agreement with the per-object reference -----------------------------------------------


def _tie_free_equal(got, want, slack, name):
    """Class arrays agree wherever the reference is not within 1e-3 degrees of its margin."""
    near_tie = np.abs(slack) < 1e-3
    bad = (got != want) & ~near_tie
    assert not bad.any(), f"{name}: {np.argwhere(bad)[:5]}"


def assert_matches_reference(out, b, clip, config=DEFAULT):
    ref = reference_clip_facts(clip, config)
    n = len(clip["centre"])
    np.testing.assert_array_equal(out.seen[b, :n], ref.seen)
    assert not out.seen[b, n:].any()
    np.testing.assert_array_equal(out.unique_category[b, :n], ref.unique_category)
    np.testing.assert_allclose(out.distance[b, :n, :n], ref.distance, atol=DIST_ATOL)
    np.testing.assert_array_equal(out.distance_ok[b, :n, :n], ref.distance_ok)
    assert not out.distance_ok[b, n:].any() and not out.distance_ok[b, :, n:].any()
    np.testing.assert_allclose(out.size[b, :n], ref.size, rtol=1e-6)
    np.testing.assert_array_equal(out.first_frame[b, :n], ref.first_frame)
    np.testing.assert_allclose(out.first_time[b, :n], ref.first_time, atol=1e-6)
    np.testing.assert_array_equal(out.appears_before[b, :n, :n], ref.appears_before)
    for c, count in ref.counts.items():
        assert int(out.counts[b, c]) == count
        assert bool(out.count_complete[b, c]) == ref.count_complete[c]
    assert int(out.counts[b].sum()) == sum(ref.counts.values())

    defined = np.ones((n, n, n), bool)
    xy = np.asarray(clip["centre"])[:, :2]
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=-1) > 1e-3
    defined &= gaps[:, :, None] & gaps[:, None, :]
    diff = (out.direction_angle[b, :n, :n, :n] - ref.direction_angle + 180) % 360 - 180
    assert np.all(np.abs(diff[defined]) < ANGLE_ATOL)
    for level, name in enumerate(("easy", "medium", "hard")):
        got = getattr(out, f"direction_{name}")[b, :n, :n, :n]
        want = getattr(ref, f"direction_{name}")
        _tie_free_equal(got, want, ref.direction_slack[level], name)
        ok = getattr(out, f"direction_{name}_ok")[b, :n, :n, :n]
        _tie_free_equal(ok, want >= 0, ref.direction_slack[level], f"{name}_ok")
        assert not getattr(out, f"direction_{name}_ok")[b, n:].any()

    for i in range(n):
        others = [j for j in range(n) if ref.distance_ok[i, j]]
        ds = sorted(ref.distance[i, j] for j in others)
        if len(ds) >= 2 and ds[1] - ds[0] < 2 * DIST_ATOL:
            continue  # the nearest is a float tie
        assert int(out.nearest[b, i]) == ref.nearest[i]
        if len(ds) >= 2:
            margin = max(config.closest_margin_m, config.closest_margin_frac * ds[1])
            if abs(ds[1] - ds[0] - margin) > 4 * DIST_ATOL:
                assert bool(out.nearest_clear[b, i]) == ref.nearest_clear[i]


@_SETTINGS
@hypothesis.given(
    seed=st.integers(0, 2**32 - 1),
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    tilt=st.booleans(),
)
def test_agrees_with_reference(seed, sizes, tilt):
    rng = np.random.default_rng(seed)
    clips = [random_clip(rng, n, int(rng.integers(1, 17)), tilt) for n in sizes]
    out, _ = relations_of(clips, n_bucket=16, t_bucket=16, batch_size=4)
    for b, clip in enumerate(clips):
        assert_matches_reference(out, b, clip)


@_SETTINGS
@hypothesis.given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 5))
def test_closest_candidate_agrees_with_reference(seed, k):
    rng = np.random.default_rng(seed)
    clip = random_clip(rng, 12, 8)
    out, _ = relations_of([clip], n_bucket=16, t_bucket=16)
    ref = reference_clip_facts(clip, directions=False)
    Q = 8
    target = rng.integers(0, 12, (1, Q))
    cands = np.stack([rng.choice(12, 5, replace=False) for _ in range(Q)])[None]
    mask = np.arange(5)[None, None, :] < k
    closest, gap, clear = jax.device_get(
        rel.closest_candidate(
            out.distance, out.distance_ok, jnp.asarray(target, jnp.int32),
            jnp.asarray(cands, jnp.int32), jnp.asarray(mask), DEFAULT,
        )
    )  # fmt: skip
    for q in range(Q):
        t, cs = int(target[0, q]), [int(c) for c in cands[0, q, :k]]
        posed = all(c != t and ref.distance_ok[t, c] for c in cs)
        ds = [ref.distance[t, c] for c in cs]
        best, ref_clear = closest_of(ds, DEFAULT)
        if not posed:
            assert not clear[0, q]
            continue
        top = sorted(ds)
        if top[1] - top[0] > 2 * DIST_ATOL:
            assert int(closest[0, q]) == best
        margin = max(DEFAULT.closest_margin_m, DEFAULT.closest_margin_frac * top[1])
        if abs(top[1] - top[0] - margin) > 4 * DIST_ATOL:
            assert bool(clear[0, q]) == ref_clear
