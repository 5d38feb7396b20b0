"""Single-view relations: jit vs eager, the per-pair reference, view-space invariance, scenes."""

from __future__ import annotations

import functools

import chex
import hypothesis
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

from jax_spatial.batching import ObjectBatch, pad_observations
from jax_spatial.geometry import boxes, frames
from jax_spatial.observe import FrameObservation
from jax_spatial.relations import (
    FAMILIES,
    RELATIONS,
    RelationConfig,
    compute_single_view_relations,
    single_view_relations,
)
from jax_spatial.relations.reference import reference_relations_for

DEFAULT = RelationConfig()
F = {name: k for k, name in enumerate(FAMILIES)}
CATEGORIES = ("chair", "table", "cup", "lamp", "sofa")

# Generated floats, not hypothesis-shrunk ones: shrinking drives values onto exact margins
# (0.15, 0.0, ...), where float32 and float64 legitimately round a tie differently. Seeds keep
# hypothesis in charge of the search while every box stays generic.
_SETTINGS = hypothesis.settings(max_examples=15, deadline=None, derandomize=True)


def make_obs(centre, extent, yaw=None, categories=None, captions=None, exhaustive=True):
    """A FrameObservation of n view-frame boxes rotated by `yaw` about the vertical."""
    centre = np.asarray(centre, np.float64).reshape(-1, 3)
    n = len(centre)
    extent = np.asarray(extent, np.float64).reshape(n, 3)
    yaw = np.zeros(n) if yaw is None else np.asarray(yaw, np.float64)
    rotation = np.asarray(frames.rotation_z(yaw), np.float64).reshape(n, 3, 3)
    categories = list(categories or [f"object{i}" for i in range(n)])
    return FrameObservation.from_view_boxes(
        categories, centre, extent, rotation, captions, exhaustive=exhaustive, source="test"
    )


def random_obs(rng: np.random.Generator, n: int, tilt: bool = True) -> FrameObservation:
    """Room-sized view-space scene: boxes 5 cm..2 m, yaw in any direction, some tilted."""
    centre = np.stack(
        [rng.uniform(-3, 3, n), rng.uniform(0.3, 8, n), rng.uniform(-1.5, 1.2, n)], -1
    )
    extent = np.exp(rng.uniform(np.log(0.05), np.log(2.0), (n, 3)))
    rotation = np.asarray(frames.rotation_z(rng.uniform(-np.pi, np.pi, n)), np.float64)
    if tilt:
        rotation = rotation @ np.asarray(frames.rotation_x(rng.normal(0, 0.3, n)), np.float64)
    obs = make_obs(centre, extent, categories=[str(c) for c in rng.choice(CATEGORIES, n)])
    obs.rotation = rotation
    # Some objects carry a caption, which makes them unique references among their category.
    obs.captions = [
        f"the {c} {i}" if rng.random() < 0.3 else None for i, c in enumerate(obs.categories)
    ]
    obs.exhaustive = bool(rng.random() < 0.7)
    return obs


def relations_of(observations, num_objects=16, config=DEFAULT):
    batch = pad_observations(observations, num_objects, len(observations))
    return jax.device_get(single_view_relations(batch, config))


def assert_matches_reference(out, b, obs, config=DEFAULT):
    ref = reference_relations_for(obs, config)
    n, K = obs.num_objects, len(ref.categories)
    np.testing.assert_array_equal(out.pair[b, :n, :n], ref.pair)
    np.testing.assert_allclose(out.pair_value[b, :n, :n], ref.pair_value, atol=2e-5)
    np.testing.assert_array_equal(out.unique_ref[b, :n], ref.unique_ref)
    np.testing.assert_array_equal(out.exists[b, :n, :K], ref.exists)
    np.testing.assert_array_equal(out.counts[b, :K], ref.counts)
    np.testing.assert_array_equal(out.count_ok[b, :K], ref.count_ok)
    np.testing.assert_array_equal(out.relative[b, :n], ref.relative)
    # Nothing beyond the real objects and categories.
    assert not out.pair[b, n:].any() and not out.pair[b, :, n:].any()
    assert not out.exists[b, n:].any() and not out.exists[b, :, K:].any()
    assert not out.counts[b, K:].any()


# --- jit and eager agree -------------------------------------------------------------------


class VariantsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_variants_match_the_jitted_pass(self):
        rng = np.random.default_rng(7)
        observations = [random_obs(rng, int(n)) for n in rng.integers(1, 17, 4)]
        batch = pad_observations(observations, 16, 4)
        config = RelationConfig()
        fn = self.variant(functools.partial(compute_single_view_relations, config=config))
        got = jax.device_get(fn(batch))
        want = jax.device_get(single_view_relations(batch, config))
        for name in ("pair", "unique_ref", "exists", "counts", "count_ok"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
        np.testing.assert_allclose(got.pair_value, want.pair_value, atol=1e-5)
        self.assertEqual(got.pair.dtype, np.int8)
        self.assertEqual(got.exists.dtype, np.int8)


def test_output_shapes_and_dtypes():
    out = relations_of([make_obs([[0, 2, 0]], [[1, 1, 1]])], num_objects=8)
    assert out.pair.shape == (1, 8, 8, 6) and out.pair.dtype == np.int8
    assert out.pair_value.shape == (1, 8, 8, 6) and out.pair_value.dtype == np.float32
    assert out.unique_ref.shape == (1, 8) and out.unique_ref.dtype == bool
    assert out.exists.shape == (1, 8, 8, 6, 2) and out.exists.dtype == np.int8
    assert out.counts.shape == (1, 8) and out.counts.dtype == np.int32
    assert out.count_ok.shape == (1, 8) and out.count_ok.dtype == bool


def test_config_is_hashable_static_arg():
    config = RelationConfig(abs_margin_m=0.3)
    assert hash(config) == hash(RelationConfig(abs_margin_m=0.3))
    # A wider margin makes a 0.25 m separation unclear.
    obs = make_obs([[-0.125, 3, 0], [0.125, 3, 0]], [[0.1, 0.1, 0.1]] * 2)
    assert relations_of([obs]).pair[0, 0, 1, F["left_right"]] == 1
    assert relations_of([obs], config=config).pair[0, 0, 1, F["left_right"]] == 0


# --- agreement with the per-pair reference -------------------------------------------------


@_SETTINGS
@hypothesis.given(
    seed=st.integers(0, 2**32 - 1), sizes=st.lists(st.integers(1, 16), min_size=1, max_size=6)
)
def test_agrees_with_reference(seed, sizes):
    rng = np.random.default_rng(seed)
    observations = [random_obs(rng, n) for n in sizes]
    out = relations_of(observations + [observations[0]] * (6 - len(observations)), 16)
    for b, obs in enumerate(observations):
        assert_matches_reference(out, b, obs)


@_SETTINGS
@hypothesis.given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 16))
def test_agrees_with_reference_on_crowded_categories(seed, n):
    # Few categories, no captions: many non-unique references and multi-member categories,
    # the cases where existence answers are decided by "any" and "all".
    rng = np.random.default_rng(seed)
    obs = random_obs(rng, n)
    obs.categories = [str(c) for c in rng.choice(CATEGORIES[:2], n)]
    obs.captions = [f"c{i}" if rng.random() < 0.5 else None for i in range(n)]
    config = RelationConfig(abs_margin_m=0.05, frac_margin=0.2)
    out = relations_of([obs], 16, config)
    assert_matches_reference(out, 0, obs, config)


# --- properties ----------------------------------------------------------------------------


@_SETTINGS
@hypothesis.given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 16))
def test_pair_is_antisymmetric_and_zero_off_valid(seed, n):
    rng = np.random.default_rng(seed)
    out = relations_of([random_obs(rng, n)], 16)
    pair, value = out.pair[0], out.pair_value[0]
    np.testing.assert_array_equal(pair, -np.swapaxes(pair, 0, 1))
    np.testing.assert_array_equal(value, -np.swapaxes(value, 0, 1))
    assert not pair[np.arange(16), np.arange(16)].any()
    assert not pair[n:].any() and not value[n:].any()
    # A clear sign always agrees with the sign of its measured value.
    assert np.all((pair == 0) | (np.sign(value) == pair))


def _world_from_cam(yaw, pitch, roll, position):
    """Camera pose in a z-up world: heading `yaw` (anticlockwise from +x), then pitch and roll."""
    # The view frame's y axis points along the heading, so world_from_view is a turn about z
    # that brings +y onto (cos yaw, sin yaw).
    world_from_view = frames.rotation_z(yaw - jnp.pi / 2)
    rot = world_from_view @ frames.view_from_cam_rotation(pitch, roll)
    return frames.make_transform(rot, jnp.asarray(position, jnp.float32))


def _view_boxes(world_from_cam, centre_w, rotation_w):
    """World boxes -> the camera frame -> its view frame, as a pipeline would move them."""
    cam_from_world = frames.invert_transform(world_from_cam)
    centre_c, rotation_c = boxes.transform_box(cam_from_world, centre_w, rotation_w)
    return boxes.transform_box(frames.view_from_cam(world_from_cam), centre_c, rotation_c)


@_SETTINGS
@hypothesis.given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 16),
    yaw=st.floats(-np.pi, np.pi),
    pitch=st.floats(-1.2, 1.2),
    roll=st.floats(-0.8, 0.8),
)
def test_relations_do_not_change_when_the_camera_tilts(seed, n, yaw, pitch, roll):
    rng = np.random.default_rng(seed)
    position = np.array([rng.uniform(-5, 5), rng.uniform(-5, 5), rng.uniform(0.5, 2.0)])
    # Boxes in a room around the camera's heading, in world coordinates.
    heading = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    side = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    local = random_obs(rng, n)
    centre_w = (
        position
        + local.centre[:, 1:2] * heading
        + local.centre[:, 0:1] * side
        + local.centre[:, 2:3] * np.array([0.0, 0.0, 1.0])
    )
    # Boxes keep their local orientation relative to the heading.
    rotation_w = frames.rotation_z(yaw - np.pi / 2) @ jnp.asarray(local.rotation, jnp.float32)
    centre_w = jnp.asarray(centre_w, jnp.float32)

    facts = []
    for p, r in ((pitch, roll), (0.0, 0.0)):
        centre_v, rotation_v = _view_boxes(
            _world_from_cam(yaw, p, r, position), centre_w, rotation_w
        )
        obs = make_obs(np.asarray(centre_v), local.extent, categories=local.categories)
        obs.captions, obs.rotation = local.captions, np.asarray(rotation_v, np.float64)
        facts.append(relations_of([obs], 16))
    tilted, level = facts
    for name in ("pair", "unique_ref", "exists", "counts", "count_ok"):
        np.testing.assert_array_equal(getattr(tilted, name), getattr(level, name), err_msg=name)
    np.testing.assert_allclose(tilted.pair_value, level.pair_value, atol=1e-4)
    # The level view is the local scene itself: the heading maps to +y, the side to +x.
    np.testing.assert_allclose(np.asarray(centre_v), local.centre, atol=1e-4)
    np.testing.assert_allclose(np.asarray(rotation_v), local.rotation, atol=1e-5)


@_SETTINGS
@hypothesis.given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 8))
def test_padding_does_not_change_facts(seed, n):
    rng = np.random.default_rng(seed)
    obs = random_obs(rng, n)
    small = relations_of([obs], 8)
    big = relations_of([obs, random_obs(rng, 20)], 32)
    np.testing.assert_array_equal(small.pair[0, :n, :n], big.pair[0, :n, :n])
    np.testing.assert_allclose(small.pair_value[0, :n, :n], big.pair_value[0, :n, :n], atol=1e-6)
    np.testing.assert_array_equal(small.unique_ref[0, :n], big.unique_ref[0, :n])
    np.testing.assert_array_equal(small.exists[0, :n, :8], big.exists[0, :n, :8])
    assert not big.exists[0, :, 8:].any()
    np.testing.assert_array_equal(small.counts[0], big.counts[0, :8])


def test_padded_objects_with_garbage_stay_silent():
    # Padding slots filled with real-looking boxes but valid=False must not leak into facts.
    obs = make_obs([[-1, 3, 0], [1, 3, 0]], [[0.5, 0.5, 0.5]] * 2, categories=["chair", "chair"])
    batch = pad_observations([obs], 8, 1)
    noisy = batch.replace(
        centre=batch.centre.at[0, 2:].set(jnp.array([0.0, 2.0, 3.0])),
        extent=batch.extent.at[0, 2:].set(0.0),
        category=batch.category.at[0, 2:].set(0),
        reference=batch.reference.at[0, 2:].set(0),
    )
    clean, dirty = (
        jax.device_get(single_view_relations(batch)),
        jax.device_get(single_view_relations(noisy)),
    )
    for name in ("pair", "pair_value", "unique_ref", "exists", "counts", "count_ok"):
        np.testing.assert_array_equal(getattr(clean, name), getattr(dirty, name), err_msg=name)


# --- hand-checked scenes -------------------------------------------------------------------


def rel(out, i, j, family):
    return int(out.pair[0, i, j, F[family]])


def test_chair_one_metre_left_of_table():
    obs = make_obs(
        [[-0.5, 3.0, -1.075], [0.5, 3.0, -1.125]],  # camera 1.5 m up: floor at z = -1.5
        [[0.5, 0.5, 0.85], [1.2, 0.8, 0.75]],
        categories=["chair", "table"],
    )
    out = relations_of([obs], 8)
    assert rel(out, 0, 1, "left_right") == 1 and rel(out, 1, 0, "left_right") == -1
    assert out.pair_value[0, 0, 1, F["left_right"]] == np.float32(1.0)
    assert rel(out, 0, 1, "front_behind") == 0  # same depth
    assert rel(out, 0, 1, "above_below") == 0  # both stand on the floor
    assert rel(out, 1, 0, "bigger_smaller") == 1  # 0.72 vs 0.21 m^3
    assert rel(out, 0, 1, "taller_shorter") == 0  # 0.85 vs 0.75 m: 10 cm but only 13% taller
    assert rel(out, 1, 0, "wider_thinner") == 1  # 1.2 vs 0.5 m across the line of sight
    assert out.unique_ref[0, :2].all()
    # "Is there a chair left of the table?" yes; "... right of the table?" no.
    table, chair_cat = 1, 0
    assert out.exists[0, table, chair_cat, F["left_right"], 0] == 1
    assert out.exists[0, table, chair_cat, F["left_right"], 1] == -1
    # Size families carry no existence questions.
    assert not out.exists[0, :, :, 3:].any()


def test_five_centimetres_apart_is_unclear():
    obs = make_obs([[0.0, 3.0, 0.0], [0.05, 3.05, 0.05]], [[0.3, 0.3, 0.3]] * 2)
    out = relations_of([obs], 8)
    assert not out.pair[0, :, :, :3].any()
    assert out.pair_value[0, 0, 1, F["left_right"]] == np.float32(0.05)


def test_perspective_flip_is_unclear():
    # A is 0.5 m left of B in x, but near and to the right of the optical axis, so in the
    # picture it shows to the right of the far object B.
    obs = make_obs([[0.5, 1.0, 0.0], [1.0, 6.0, 0.0]], [[0.2, 0.2, 0.2]] * 2)
    out = relations_of([obs], 8)
    assert out.pair_value[0, 0, 1, F["left_right"]] > 0.45
    assert rel(out, 0, 1, "left_right") == 0
    assert rel(out, 0, 1, "front_behind") == 1


def test_side_object_with_smaller_y_but_larger_range_is_not_in_front():
    obs = make_obs([[4.0, 3.0, 0.0], [0.0, 4.0, 0.0]], [[0.2, 0.2, 0.2]] * 2)
    out = relations_of([obs], 8)
    assert out.pair_value[0, 0, 1, F["front_behind"]] == np.float32(1.0)
    assert rel(out, 0, 1, "front_behind") == 0  # range 5 vs 4: it looks further away


def test_above_needs_stacking_and_the_picture_to_agree():
    floor = -1.5
    obs = make_obs(
        [
            [0.0, 3.0, floor + 0.375],  # 0 table, 0.75 m high
            [0.1, 3.0, floor + 0.8],  # 1 cup standing on the table
            [0.8, 3.0, floor + 0.8],  # 2 lamp, 1.6 m tall, standing beside the table
            [-0.3, 1.2, floor + 0.45],  # 3 near chair, backrest 0.9 m
            [2.0, 6.0, floor + 0.8],  # 4 cup on a far table, its top below the chair's back
        ],
        [[1.2, 0.8, 0.75], [0.08, 0.08, 0.1], [0.3, 0.3, 1.6], [0.5, 0.5, 0.9], [0.08, 0.08, 0.1]],
        categories=["table", "cup", "lamp", "chair", "cup"],
    )
    out = relations_of([obs], 8)
    assert rel(out, 1, 0, "above_below") == 1 and rel(out, 0, 1, "above_below") == -1
    assert rel(out, 2, 0, "above_below") == 0  # higher centre, but stands beside it
    assert rel(out, 4, 3, "above_below") == 0  # the chair's backrest reaches higher
    # A cup on a table near the camera against a far rug: higher in 3D but lower in the image.
    rug_far = make_obs(
        [[0.0, 1.0, floor + 0.8], [0.0, 6.0, floor + 0.005]],
        [[0.08, 0.08, 0.1], [2.0, 1.5, 0.01]],
    )
    out = relations_of([rug_far], 8)
    assert out.pair_value[0, 0, 1, F["above_below"]] > 0.7
    assert rel(out, 0, 1, "above_below") == 0
    # The same rug right under the cup: clearly below it.
    rug_near = make_obs(
        [[0.0, 3.0, floor + 0.8], [0.0, 3.0, floor + 0.005]],
        [[0.08, 0.08, 0.1], [2.0, 1.5, 0.01]],
    )
    assert rel(relations_of([rug_near], 8), 0, 1, "above_below") == 1


def test_width_is_across_the_line_of_sight():
    # A 2 m x 0.3 m bench straight ahead with its long side facing the camera, and the same
    # bench 45 degrees to the right. Turned by -45 degrees, its long axis (1, -1)/sqrt2 is
    # perpendicular to the ray (1, 1)/sqrt2 to it: it looks just as wide.
    obs = make_obs([[0.0, 4.0, 0.0], [4.0, 4.0, 0.0]], [[2.0, 0.3, 0.5]] * 2, yaw=[0.0, -np.pi / 4])
    out = relations_of([obs], 8)
    assert rel(out, 0, 1, "wider_thinner") == 0
    # Turned by +45 degrees it is seen end-on: 0.3 m wide, although its view-x extent
    # (1.63 m) is almost that of the first bench.
    end_on = make_obs(obs.centre, obs.extent, yaw=[0.0, np.pi / 4])
    out = relations_of([end_on], 8)
    assert rel(out, 0, 1, "wider_thinner") == 1
    np.testing.assert_allclose(
        out.pair_value[0, 0, 1, F["wider_thinner"]], np.log(2.0 / 0.3), rtol=1e-5
    )


def test_existence_yes_no_and_unclear():
    # Reference: a unique table at 3 m. Chairs: one clearly left, one 5 cm off the table's
    # centre (unclear). Cups: both clearly right. A lamp exists only as itself.
    obs = make_obs(
        [[0.0, 3.0, 0.0], [-1.5, 3.0, 0.0], [0.05, 3.0, 0.0], [1.5, 3.0, 0.0], [2.0, 3.0, 0.0]],
        [[0.6, 0.6, 0.6], [0.4, 0.4, 0.4], [0.4, 0.4, 0.4], [0.1, 0.1, 0.1], [0.1, 0.1, 0.1]],
        categories=["table", "chair", "chair", "cup", "cup"],
    )
    out = relations_of([obs], 8)
    table, chair, cup = 0, 1, 2  # frame-local category ids, first appearance order
    lr = F["left_right"]
    assert out.exists[0, table, chair, lr, 0] == 1  # a chair left of the table: yes
    assert out.exists[0, table, chair, lr, 1] == 0  # right of it: the near one is unclear
    assert out.exists[0, table, cup, lr, 0] == -1  # a cup left of the table: no
    assert out.exists[0, table, cup, lr, 1] == 1
    assert out.exists[0, table, table, lr].tolist() == [0, 0]  # no other table
    # Chairs and cups are not unique references, yet existence is decided about them too: a
    # box points at one whatever its category (selection decides how each is named).
    assert out.exists[0, 1, cup, lr].tolist() == [-1, 1]
    assert not out.exists[0, 5:].any()  # padding
    assert out.unique_ref[0].tolist() == [True] + [False] * 7
    assert out.counts[0, :4].tolist() == [1, 2, 2, 0]
    assert out.count_ok[0, :4].tolist() == [True, True, True, False]
    # A caption makes one chair a unique reference.
    obs.captions = [None, "the chair by the wall", None, None, None]
    out = relations_of([obs], 8)
    # ... but the other chair's bare "chair" still fits both chairs: not a unique reference.
    assert out.unique_ref[0, :5].tolist() == [True, True, False, False, False]
    # "Is there a cup left of the chair by the wall?" no; "right of it?" yes.
    assert out.exists[0, 1, cup, lr].tolist() == [-1, 1]
    assert out.exists[0, 1, chair, lr].tolist() == [-1, 1]
    obs.exhaustive = False
    assert not relations_of([obs], 8).count_ok.any()


def test_relation_names_cover_families():
    assert set(RELATIONS) == set(FAMILIES)


def test_batch_built_directly():
    # ObjectBatch needs no FrameObservation: a two-object batch by hand.
    B, N = 1, 8
    centre = jnp.zeros((B, N, 3)).at[0, 0].set(jnp.array([-1.0, 3.0, 0.0]))
    centre = centre.at[0, 1].set(jnp.array([1.0, 3.0, 0.0]))
    batch = ObjectBatch(
        centre=centre,
        extent=jnp.full((B, N, 3), 0.5),
        rotation=jnp.broadcast_to(jnp.eye(3), (B, N, 3, 3)),
        box2d=jnp.zeros((B, N, 4)),
        category=jnp.full((B, N), -1, jnp.int32).at[0, :2].set(jnp.array([0, 1])),
        reference=jnp.full((B, N), -1, jnp.int32).at[0, :2].set(jnp.array([0, 1])),
        visibility=jnp.ones((B, N)),
        valid=jnp.zeros((B, N), bool).at[0, :2].set(True),
        exhaustive=jnp.ones((B,), bool),
        image_size=jnp.ones((B, 2)),
        key=jnp.zeros((B, 2), jnp.uint32),
    )
    out = jax.device_get(single_view_relations(batch))
    assert out.pair[0, 0, 1, F["left_right"]] == 1
    assert out.pair[0, :, 2:].sum() == 0


def test_reference_geometry_modes_agree_and_cover_every_answer():
    # Per-pair and per-object geometry give identical facts; the random scenes the agreement
    # tests draw exercise yes, no and unclear existence answers alike.
    rng = np.random.default_rng(3)
    obs = random_obs(rng, 16)
    obs.categories = [str(c) for c in rng.choice(CATEGORIES[:2], 16)]
    obs.captions = [f"c{i}" for i in range(16)]
    per_pair = reference_relations_for(obs, DEFAULT)
    cached = reference_relations_for(obs, DEFAULT, per_pair_geometry=False)
    np.testing.assert_array_equal(per_pair.pair, cached.pair)
    np.testing.assert_array_equal(per_pair.exists, cached.exists)
    assert set(np.unique(per_pair.exists[:, :, :3])) == {-1, 0, 1}
    assert set(np.unique(per_pair.pair)) == {-1, 0, 1}
    assert_matches_reference(relations_of([obs], 16), 0, obs)
