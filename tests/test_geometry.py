"""Cameras, frames and boxes against independent references (closed forms, Open3D, sampling)."""

from __future__ import annotations

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from hypothesis import given, settings

from jax_spatial.geometry import boxes, cameras, frames

ANGLE = st.floats(-1.2, 1.2)  # up to ~69 degrees of pitch or roll
SETTINGS = settings(max_examples=60, deadline=None)


def _random_rotation(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


class ProjectionTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_unproject_inverts_project(self):
        rng = np.random.default_rng(0)
        K = cameras.intrinsics_matrix(700.0, 690.0, 320.5, 241.0)
        points = np.stack(
            [rng.uniform(-3, 3, 100), rng.uniform(-2, 2, 100), rng.uniform(0.5, 40, 100)], -1
        )
        uv = self.variant(cameras.px_from_cam)(points, K)
        back = self.variant(cameras.cam_from_px)(uv, points[:, 2], K)
        # float32 round trip at up to 40 m: relative error ~1e-7 * depth, so 1e-4 m is loose.
        np.testing.assert_allclose(back, points, atol=1e-4)

    @chex.variants(with_jit=True, without_jit=True)
    def test_principal_point_projects_forward_axis(self):
        K = cameras.intrinsics_matrix(500.0, 500.0, 320.0, 240.0)
        uv = self.variant(cameras.px_from_cam)(jnp.array([0.0, 0.0, 7.0]), K)
        np.testing.assert_allclose(uv, [320.0, 240.0], atol=1e-5)


class FramesTest(parameterized.TestCase):
    @given(pitch=ANGLE, roll=ANGLE)
    @SETTINGS
    def test_pitch_roll_round_trip(self, pitch, roll):
        rot = frames.view_from_cam_rotation(pitch, roll)
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-5)
        self.assertAlmostEqual(float(jnp.linalg.det(rot)), 1.0, places=5)
        got = frames.pitch_roll_from_view_from_cam(rot)
        np.testing.assert_allclose(got, [pitch, roll], atol=1e-5)

    @given(pitch=ANGLE, roll=ANGLE, yaw=st.floats(-np.pi, np.pi))
    @SETTINGS
    def test_view_frame_ignores_pitch_and_roll(self, pitch, roll, yaw):
        centre = jnp.array([1.0, -2.0, 1.4])
        world_from_level = frames.rotation_z(yaw) @ frames.VIEW_FROM_LEVEL_CAM
        level = frames.make_transform(world_from_level, centre)
        tilted = frames.make_transform(
            frames.rotation_z(yaw) @ frames.view_from_cam_rotation(pitch, roll), centre
        )
        np.testing.assert_allclose(
            frames.view_from_world(tilted), frames.view_from_world(level), atol=1e-5
        )
        # The level camera's view frame is its own axes re-labelled.
        np.testing.assert_allclose(
            frames.view_from_cam(level)[:3, :3], frames.VIEW_FROM_LEVEL_CAM, atol=1e-5
        )
        # And the tilted camera's view_from_cam is exactly its pitch and roll.
        np.testing.assert_allclose(
            frames.pitch_roll_from_view_from_cam(frames.view_from_cam(tilted)[:3, :3]),
            [pitch, roll],
            atol=1e-4,
        )

    def test_view_axes_on_a_hand_checked_pose(self):
        # A camera at (2, 0, 1.5) looking along world -y, pitched 30 degrees down.
        pose = frames.make_transform(
            frames.rotation_z(np.pi) @ frames.view_from_cam_rotation(-np.pi / 6, 0.0),
            jnp.array([2.0, 0.0, 1.5]),
        )
        view = frames.view_from_world(pose)
        # A point 3 m ahead along world -y and 1.5 m down (on the floor) is straight ahead
        # in view space, 1.5 m below the optical centre.
        floor_ahead = frames.apply_transform(view, jnp.array([2.0, -3.0, 0.0]))
        np.testing.assert_allclose(floor_ahead, [0.0, 3.0, -1.5], atol=1e-5)
        # World +x is to the camera's left when it faces -y.
        right_of_camera = frames.apply_transform(view, jnp.array([1.0, 0.0, 1.5]))
        np.testing.assert_allclose(right_of_camera, [1.0, 0.0, 0.0], atol=1e-5)

    def test_camera_looking_straight_down_uses_right_axis(self):
        pose = frames.make_transform(
            frames.rotation_z(0.3) @ frames.view_from_cam_rotation(-np.pi / 2, 0.0),
            jnp.zeros(3),
        )
        view = frames.view_from_world(pose)
        self.assertTrue(np.all(np.isfinite(view)))
        np.testing.assert_allclose(view[:3, :3] @ view[:3, :3].T, np.eye(3), atol=1e-5)
        np.testing.assert_allclose(frames.yaw_of_camera(pose), 0.3 + np.pi / 2, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_invert_transform(self):
        rng = np.random.default_rng(1)
        t = frames.make_transform(_random_rotation(rng), rng.normal(size=3))
        inv = self.variant(frames.invert_transform)(t)
        np.testing.assert_allclose(inv @ t, np.eye(4), atol=1e-5)


def _clipped_faces_box(corners, K, near=cameras.NEAR_PLANE_M):
    """Pixel extent of a box's faces cut at z = near, by polygon clipping. None if all behind."""
    faces = [
        [0, 1, 3, 2],
        [4, 5, 7, 6],
        [0, 1, 5, 4],
        [2, 3, 7, 6],
        [0, 2, 6, 4],
        [1, 3, 7, 5],
    ]  # corner k has signs (k>>2, k>>1, k) & 1 on (x, y, z)
    kept = []
    for face in faces:
        polygon = corners[face]
        for a, b in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
            if a[2] >= near:
                kept.append(a)
            if (a[2] - near) * (b[2] - near) < 0:
                kept.append(a + (near - a[2]) / (b[2] - a[2]) * (b - a))
    if not kept:
        return None
    kept = np.array(kept)
    uv = (kept @ K.T)[:, :2] / np.maximum(kept[:, 2:3], near)
    return np.concatenate([uv.min(0), uv.max(0)])


class BoxesTest(parameterized.TestCase):
    def test_corners_match_open3d(self):
        o3d = pytest.importorskip("open3d")
        rng = np.random.default_rng(2)
        for _ in range(10):
            centre, extent, rot = rng.normal(size=3), rng.uniform(0.1, 3, 3), _random_rotation(rng)
            ours = np.asarray(boxes.box_corners(centre, extent, rot))
            theirs = np.asarray(
                o3d.geometry.OrientedBoundingBox(centre, rot, extent).get_box_points()
            )
            # Open3D orders corners differently: match as sets. float32 vs float64: 1e-5 m.
            distance = np.linalg.norm(ours[:, None] - theirs[None], axis=-1)
            np.testing.assert_allclose(distance.min(axis=1), 0.0, atol=1e-5)
            np.testing.assert_allclose(distance.min(axis=0), 0.0, atol=1e-5)

    def test_points_in_box_match_open3d(self):
        o3d = pytest.importorskip("open3d")
        rng = np.random.default_rng(3)
        centre, extent, rot = np.zeros(3), np.array([2.0, 1.0, 0.5]), _random_rotation(rng)
        points = rng.uniform(-1.5, 1.5, size=(4000, 3))
        ours = np.flatnonzero(np.asarray(boxes.points_in_box(points, centre, extent, rot)))
        obb = o3d.geometry.OrientedBoundingBox(centre, rot, extent)
        theirs = np.sort(
            obb.get_point_indices_within_bounding_box(o3d.utility.Vector3dVector(points))
        )
        np.testing.assert_array_equal(ours, theirs)

    def test_edges_are_the_twelve_box_edges(self):
        corners = np.asarray(boxes.box_corners(np.zeros(3), np.array([1.0, 2.0, 3.0]), np.eye(3)))
        lengths = sorted(np.linalg.norm(corners[a] - corners[b]) for a, b in boxes.EDGES)
        np.testing.assert_allclose(lengths, [1.0] * 4 + [2.0] * 4 + [3.0] * 4, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_projected_box_matches_dense_surface_sampling(self):
        K = cameras.intrinsics_matrix(600.0, 600.0, 320.0, 240.0)
        rng = np.random.default_rng(4)
        project = self.variant(boxes.projected_box2d)
        for trial in range(12):
            # Half the boxes straddle the near plane, which a corner-only projection gets wrong.
            z = rng.uniform(-0.5, 1.0) if trial % 2 else rng.uniform(3.0, 8.0)
            centre = np.array([rng.uniform(-1, 1), rng.uniform(-0.5, 0.5), z])
            extent = rng.uniform(0.5, 2.0, 3)
            rot = _random_rotation(rng)
            corners = boxes.box_corners(centre, extent, rot)
            _, _, unclipped = project(corners, K, 640, 480)
            # Reference: each face polygon clipped to z >= near (Sutherland-Hodgman), projected.
            expected = _clipped_faces_box(np.asarray(corners, np.float64), np.asarray(K))
            if expected is None:
                continue
            # Same math in float32 vs float64; boxes cut right at the near plane reach ~1e4 px,
            # where float32 keeps about 1e-3 px per pixel of size.
            size = max(expected[2] - expected[0], expected[3] - expected[1])
            np.testing.assert_allclose(unclipped, expected, atol=1e-4 * size + 0.01)

    def test_box_behind_camera_is_not_visible(self):
        K = cameras.intrinsics_matrix(600.0, 600.0, 320.0, 240.0)
        corners = boxes.box_corners(jnp.array([0.0, 0.0, -3.0]), jnp.ones(3), jnp.eye(3))
        _, visible, _ = boxes.projected_box2d(corners, K, 640, 480)
        self.assertFalse(bool(visible))

    def test_axis_half_extent_of_rotated_box(self):
        half = boxes.axis_half_extent(jnp.array([2.0, 1.0, 1.0]), frames.rotation_z(np.pi / 2))
        np.testing.assert_allclose(half, [0.5, 1.0, 0.5], atol=1e-6)

    def test_vmapped_corners_equal_broadcast(self):
        rng = np.random.default_rng(5)
        centre, extent = rng.normal(size=(4, 3)), rng.uniform(0.2, 2, (4, 3))
        rot = np.stack([_random_rotation(rng) for _ in range(4)])
        np.testing.assert_allclose(
            jax.vmap(boxes.box_corners)(centre, extent, rot),
            boxes.box_corners(centre, extent, rot),
            atol=1e-6,
        )
