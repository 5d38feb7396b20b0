"""Rasterizer against analytic geometry: planes, boxes, shared edges, z-order, batching."""

from __future__ import annotations

import functools

import chex
import jax
import numpy as np
import pytest
from scipy import ndimage, spatial

from jax_spatial.geometry import frames
from jax_spatial.render import meshes, rasterizer

H, W = 48, 64
K = np.array([[60.0, 0.0, 32.0], [0.0, 60.0, 24.0], [0.0, 0.0, 1.0]])


def _pose(eye=(0.0, 0.0, 1.0), yaw_deg=90.0, pitch_deg=0.0, roll_deg=0.0):
    """world_from_cam of a camera at `eye` heading `yaw` (from +x), tilted by pitch and roll."""
    pose = np.eye(4)
    pose[:3, :3] = np.asarray(
        frames.rotation_z(np.radians(yaw_deg) - np.pi / 2)
        @ frames.view_from_cam_rotation(np.radians(pitch_deg), np.radians(roll_deg)),
        np.float64,
    )
    pose[:3, 3] = eye
    return pose


def _render(items, pose, k=K):
    tris, textures = meshes.pack(items)
    out = rasterizer.render(tris, textures, k, pose, height=H, width=W)
    return jax.tree.map(np.asarray, out)


def _rays_world(pose, k=K):
    """`[H, W, 3]` world directions of pixel-centre rays with camera z = 1."""
    v, u = np.mgrid[:H, :W] + 0.5
    cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
    return cam @ pose[:3, :3].T


def _quad(corners, colour=(0.5, 0.5, 0.5)):
    return meshes.Mesh(vertices=corners, faces=[(0, 1, 2), (0, 2, 3)]).with_color(colour)


@pytest.mark.parametrize("y_near", [0.5, -10.0], ids=["in_front", "straddles_camera"])
def test_floor_plane_depth_matches_analytic(y_near):
    # A floor seen from 1 m up, pitched down. With y_near < 0 the quad reaches behind the
    # camera, so it is clipped at the near plane, as walls and floors in a room are.
    pose = _pose(pitch_deg=-20.0)
    floor = _quad([(-20, y_near, 0), (20, y_near, 0), (20, 30, 0), (-20, 30, 0)])
    out = _render([(floor, np.eye(4), 7)], pose)
    rays = _rays_world(pose)
    t = -pose[2, 3] / np.where(rays[..., 2] < 0, rays[..., 2], -1e-9)
    hit_point = pose[:3, 3] + t[..., None] * rays
    expected = (rays[..., 2] < 0) & (hit_point[..., 1] > y_near) & (hit_point[..., 1] < 30)
    expected &= np.abs(hit_point[..., 0]) < 20
    interior = ndimage.binary_erosion(expected)
    assert interior.sum() > 0.3 * H * W
    assert np.all(out.instance[interior] == 7)
    assert np.all(out.instance[~ndimage.binary_dilation(expected)] == -1)
    # 1e-3 relative: float32 plane equations over a few hundred pixels.
    np.testing.assert_allclose(out.depth[interior], t[interior], rtol=1e-3)
    assert np.all(out.depth[out.instance == -1] == 0)


def _slab_entry(origin, rays, centre, extent, rotation):
    """Ray parameter where each ray enters an oriented box (inf when it misses)."""
    o = (origin - centre) @ rotation
    d = rays @ rotation
    half = extent / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-half - o) / d, (half - o) / d
    near = np.nanmax(np.minimum(t1, t2), -1)
    far = np.nanmin(np.maximum(t1, t2), -1)
    return np.where((near <= far) & (far > 0), near, np.inf)


def test_box_depth_and_silhouette_match_projection():
    pose = _pose(pitch_deg=-10.0, roll_deg=5.0)
    extent = np.array([0.8, 0.5, 0.6])
    yaw = np.radians(30.0)
    rotation = np.asarray(frames.rotation_z(yaw), np.float64)
    centre = np.array([0.2, 3.0, 0.6])
    mesh = meshes.box(extent)
    world_from_mesh = np.eye(4)
    world_from_mesh[:3, :3], world_from_mesh[:3, 3] = rotation, centre
    out = _render([(mesh, world_from_mesh, 3)], pose)

    corners = centre + (np.array(np.meshgrid(*[[-0.5, 0.5]] * 3)).reshape(3, -1).T * extent) @ (
        rotation.T
    )
    cam = (corners - pose[:3, 3]) @ pose[:3, :3]
    uv = cam[:, :2] / cam[:, 2:] * np.diag(K)[:2] + K[:2, 2]
    hull = spatial.Delaunay(uv[spatial.ConvexHull(uv).vertices])
    v, u = np.mgrid[:H, :W] + 0.5
    silhouette = hull.find_simplex(np.stack([u, v], -1)) >= 0
    inner = ndimage.binary_erosion(silhouette)
    outer = ndimage.binary_dilation(silhouette)
    assert inner.sum() > 100
    assert np.all(out.instance[inner] == 3)
    assert np.all(out.instance[~outer] == -1)
    entry = _slab_entry(pose[:3, 3], _rays_world(pose), centre, extent, rotation)
    np.testing.assert_allclose(out.depth[inner], entry[inner], rtol=1e-3)


def test_no_holes_along_shared_edges():
    pose = _pose()
    # A screen-covering quad split along a diagonal, and a 17-triangle fan whose spokes run
    # in many directions: every pixel inside must be covered.
    quad = _quad([(-3, 2, -2), (3, 2, -2), (3, 2, 4), (-3, 2, 4)])
    out = _render([(quad, np.eye(4), 0)], pose)
    assert np.all(out.instance == 0)
    angles = 2 * np.pi * np.arange(17) / 17 + 0.1
    rim = np.stack([0.6 * np.cos(angles), np.full(17, 2.0), 1.0 + 0.6 * np.sin(angles)], -1)
    fan = meshes.Mesh(
        vertices=np.concatenate([[[0.013, 2.0, 1.007]], rim]),
        faces=[(0, 1 + i, 1 + (i + 1) % 17) for i in range(17)],
    ).with_color((1, 0, 0))
    out = _render([(fan, np.eye(4), 1)], pose)
    v, u = np.mgrid[:H, :W] + 0.5
    radius = np.hypot(u - K[0, 2], v - K[1, 2]) / K[0, 0] * 2.0
    inside = radius < 0.6 * np.cos(np.pi / 17) - 0.02
    assert inside.sum() > 400
    assert np.all(out.instance[inside] == 1)


@pytest.mark.parametrize("near_first", [True, False])
def test_z_order_of_overlapping_triangles(near_first):
    pose = _pose()
    near = _quad([(-0.5, 2, 0.5), (0.5, 2, 0.5), (0.5, 2, 1.5), (-0.5, 2, 1.5)])
    far = _quad([(-0.2, 3, 0.2), (1.5, 3, 0.2), (1.5, 3, 1.5), (-0.2, 3, 1.5)])
    items = [(near, np.eye(4), 0), (far, np.eye(4), 1)]
    out = _render(items if near_first else items[::-1], pose)
    v, u = np.mgrid[:H, :W] + 0.5
    x = (u - K[0, 2]) / K[0, 0]
    z = -(v - K[1, 2]) / K[1, 1]  # world z - 1 at unit depth
    both = (np.abs(x * 2) < 0.45) & (x * 3 > -0.15) & (np.abs(z * 2) < 0.45)
    assert both.sum() > 50
    assert np.all(out.instance[both] == 0)
    np.testing.assert_allclose(out.depth[both], 2.0, rtol=1e-5)
    only_far = (x * 2 > 0.55) & (x * 3 < 1.45) & (z * 3 > -0.7) & (z * 3 < 0.4)
    assert only_far.sum() > 20
    assert np.all(out.instance[only_far] == 1)


def test_texture_orientation():
    # A 2x2 texture whose top-left texel is red: uv (0, 1) (OpenGL top-left) must show red.
    texture = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)
    quad = meshes.Mesh(
        vertices=[(-1, 2, 0), (1, 2, 0), (1, 2, 2), (-1, 2, 2)],
        faces=[(0, 1, 2), (0, 2, 3)],
        uv=np.array([(0, 0), (1, 0), (1, 1), (0, 1)], float),
        texture=texture,
    )
    out = _render([(quad, np.eye(4), 0)], _pose())
    top_left = out.rgb[H // 2 - 12, W // 2 - 12]
    bottom_right = out.rgb[H // 2 + 12, W // 2 + 12]
    assert top_left[0] > 0.5 and top_left[1] < 0.1 and top_left[2] < 0.1
    assert np.all(bottom_right > 0.5)


def _scene():
    """A table and a coarse ball: under 256 triangles, so every test shares one compile."""
    table = meshes.table_shape(1.0, 0.7, 0.75).mesh.with_color((0.6, 0.4, 0.2))
    ball = meshes.sphere(0.2, rings=6, segments=8).with_color((0.1, 0.2, 0.9))
    at_table, at_ball = np.eye(4), np.eye(4)
    at_table[:3, 3] = (-0.4, 2.5, 0.0)
    at_ball[:3, 3] = (0.6, 3.0, 0.0)
    return [(table, at_table, 0), (ball, at_ball, 1)]


class JitTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_jit_and_eager_agree(self):
        tris, textures = meshes.pack(_scene())
        pose = _pose(pitch_deg=-25)
        raw = functools.partial(rasterizer.render.__wrapped__, height=H, width=W)
        got = self.variant(raw)(tris, textures, K, pose)
        ref = rasterizer.render(tris, textures, K, pose, height=H, width=W)
        np.testing.assert_array_equal(np.asarray(got.instance), np.asarray(ref.instance))
        np.testing.assert_allclose(np.asarray(got.depth), np.asarray(ref.depth), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(got.rgb), np.asarray(ref.rgb), atol=1e-4)


def test_batched_views_equal_single_views_and_chunking_does_not_matter():
    tris, textures = meshes.pack(_scene())
    poses = np.stack([_pose(pitch_deg=-25), _pose(eye=(0.5, 0.5, 1.4), yaw_deg=100)])
    k2 = np.stack([K, K * np.array([[1.2], [1.2], [1.0]])])
    batched = rasterizer.render(tris, textures, k2, poses, height=H, width=W)
    assert batched.depth.shape == (2, H, W)
    for i in range(2):
        single = rasterizer.render(tris, textures, k2[i], poses[i], height=H, width=W)
        for a, b in zip(jax.tree.leaves(single), jax.tree.leaves(batched), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b)[i])
    small = rasterizer.render(tris, textures, K, poses[0], height=H, width=W, tile=8, chunk=8)
    single = rasterizer.render(tris, textures, K, poses[0], height=H, width=W)
    np.testing.assert_array_equal(np.asarray(small.instance), np.asarray(single.instance))
    np.testing.assert_allclose(np.asarray(small.depth), np.asarray(single.depth), rtol=1e-6)
