"""Occlusion rule on hand-built scenes whose answers can be worked out on paper.

Camera: identity pose (the world is the OpenCV camera frame; `visible_fraction` only needs the
pose, not gravity), f = 500 px, 640 x 480, principal point at the centre. The target is a 1 m
cube centred 5 m ahead; its surface is sampled every 2 cm on all six faces.
"""

from __future__ import annotations

import numpy as np
import pytest

from jax_spatial import visibility
from jax_spatial.observe import ObserveConfig, observe_frame
from jax_spatial.scene import Box3D, Frame, Scene, SceneObject

W, H, F = 640, 480, 500.0
K = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]])
STEP = 0.02


def _grid(a0, a1, b0, b1, step=STEP):
    a, b = np.meshgrid(np.arange(a0, a1 + 1e-9, step), np.arange(b0, b1 + 1e-9, step))
    return a.ravel(), b.ravel()


def box_surface(centre, size, step=STEP):
    """`[P, 3]` points on the six faces of an axis-aligned box."""
    centre, half = np.asarray(centre, float), 0.5 * np.asarray(size, float)
    faces = []
    for axis in range(3):
        others = [i for i in range(3) if i != axis]
        a, b = _grid(-half[others[0]], half[others[0]], -half[others[1]], half[others[1]], step)
        for sign in (-1, 1):
            p = np.zeros((len(a), 3))
            p[:, axis] = sign * half[axis]
            p[:, others[0]], p[:, others[1]] = a, b
            faces.append(p + centre)
    return np.concatenate(faces)


def make_scene(points, boxes_, depth=None):
    frame = Frame("f", W, H, K, np.eye(4), depth=depth)
    objects = [
        SceneObject(
            index=i, category=f"obj{i}", box3d=Box3D(np.asarray(c), np.asarray(s), np.eye(3))
        )
        for i, (c, s) in enumerate(boxes_)
    ]
    return Scene("s", "synthetic", [frame], objects, points=points), frame


def fractions(scene, frame):
    c = np.stack([o.box3d.centre for o in scene.objects])
    e = np.stack([o.box3d.extent for o in scene.objects])
    r = np.stack([o.box3d.rotation for o in scene.objects])
    return visibility.visible_fraction(scene, frame, c, e, r, np.ones(len(c), bool))


TARGET = ((0.0, 0.0, 5.0), (1.0, 1.0, 1.0))


def test_unoccluded_box_is_fully_visible():
    # Its back and side faces are behind its own front face: self-occlusion must not count.
    scene, frame = make_scene(box_surface(*TARGET), [TARGET])
    fraction, count, sample_box = fractions(scene, frame)
    assert fraction[0] == pytest.approx(1.0)
    assert count[0] == len(scene.points)
    # Projected cube: front face at z = 4.5 spans +-0.5 m -> +-55.6 px around the centre.
    assert np.allclose(sample_box[0], [320 - 55.6, 240 - 55.6, 320 + 55.6, 240 + 55.6], atol=4)


def test_wall_hides_box_and_observe_drops_it():
    # A 4 x 4 m wall at 3 m, sampled as densely as the cube: it covers the cube's whole view.
    a, b = _grid(-2, 2, -2, 2)
    wall = np.stack([a, b, np.full_like(a, 3.0)], -1)
    points = np.concatenate([box_surface(*TARGET), wall])
    scene, frame = make_scene(points, [TARGET])
    fraction, count, sample_box = fractions(scene, frame)
    assert fraction[0] == 0.0 and count[0] == 0
    assert np.all(np.isnan(sample_box[0]))
    assert observe_frame(scene, frame).num_objects == 0


def test_box_half_behind_smaller_box():
    # Occluder: 1 x 2 x 0.2 m (0.4 m^3, smaller than the 1 m^3 target) at 3 m covering x < 0,
    # i.e. every image column left of the principal point over the target's rows. A ray to a
    # target sample at x < 0 stays at x < 0, so exactly the target's left half is hidden. The
    # occluder stops 1 cm short of x = 0 so its edge does not sit on a splat-cell boundary.
    occluder = ((-0.505, 0.0, 3.0), (0.99, 2.0, 0.2))
    points = np.concatenate([box_surface(*TARGET), box_surface(*occluder)])
    scene, frame = make_scene(points, [TARGET, occluder])
    fraction, count, sample_box = fractions(scene, frame)
    # Tolerance 0.08: occluder splats reach up to one cell (8 px, 8 cm at 5 m) past its edge.
    assert fraction[0] == pytest.approx(0.5, abs=0.08)
    assert fraction[1] == pytest.approx(1.0)
    # The visible samples are the right half: their box starts near the image centre.
    assert sample_box[0, 0] == pytest.approx(320, abs=10)
    obs = observe_frame(scene, frame)
    assert list(obs.object_index) == [0, 1]
    assert obs.visibility[0] == pytest.approx(0.5, abs=0.08)


def _depth_map(plane_x_max=None, plane_z=3.0, background_z=8.0):
    """Analytic depth: the cube's front face, a plane at `plane_z` over x < plane_x_max, a wall."""
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    x, y = (u - W / 2) / F, (v - H / 2) / F  # ray direction at camera z = 1
    depth = np.full((H, W), background_z)
    # Front face z = 4.5 is hit where |x z|, |y z| <= 0.5 (the cube is centred on the axis).
    front = (np.abs(x * 4.5) <= 0.5) & (np.abs(y * 4.5) <= 0.5)
    depth[front] = 4.5
    if plane_x_max is not None:
        plane = x * plane_z < plane_x_max
        depth[plane] = plane_z
    depth[:2] = 0.0  # two unknown rows, as a real sensor leaves: they must not count
    return depth.astype(np.float32)


@pytest.mark.parametrize(
    ("plane_x_max", "expected"),
    [(None, 1.0), (0.0, 0.5), (10.0, 0.0)],
    ids=["no-plane", "plane-left-half", "plane-everywhere"],
)
def test_depth_map_rule(plane_x_max, expected):
    scene, frame = make_scene(None, [TARGET], depth=_depth_map(plane_x_max))
    fraction, count, sample_box = fractions(scene, frame)
    # Tolerance 0.03: the per-object pixel grid and pixel-centre rounding at the plane's edge.
    assert fraction[0] == pytest.approx(expected, abs=0.03)
    if expected == 0.0:
        assert count[0] == 0 and np.all(np.isnan(sample_box[0]))
    else:
        # Seen pixels: about the silhouette's area (111 x 111 px) times the unhidden share.
        assert count[0] == pytest.approx(111 * 111 * expected, rel=0.1)


def test_depth_map_sees_through_empty_box_space():
    # A table-like box whose middle is empty: rays that pass under it to the wall behind count
    # neither as seen nor hidden, so a fully seen object still scores 1.
    depth = _depth_map(None)
    depth[depth == 4.5] = 8.0  # the cube is "empty": every ray through it reaches the wall
    depth[240:250, :] = 4.6  # except one band that hits a thin top surface inside the box
    scene, frame = make_scene(None, [TARGET], depth=depth)
    fraction, count, _ = fractions(scene, frame)
    assert fraction[0] == pytest.approx(1.0)
    assert 0 < count[0] < 111 * 12


def test_only_candidates_are_measured():
    scene, frame = make_scene(box_surface(*TARGET), [TARGET, TARGET])
    c = np.stack([o.box3d.centre for o in scene.objects])
    e = np.stack([o.box3d.extent for o in scene.objects])
    r = np.stack([o.box3d.rotation for o in scene.objects])
    fraction, count, box = visibility.visible_fraction(
        scene, frame, c, e, r, np.array([True, False])
    )
    assert fraction[1] == 0 and count[1] == 0 and np.all(np.isnan(box[1]))
    assert fraction[0] == pytest.approx(1.0)


def test_observe_keeps_everything_without_depth_or_points():
    scene, frame = make_scene(None, [TARGET])
    obs = observe_frame(scene, frame, ObserveConfig())
    assert obs.num_objects == 1 and obs.visibility[0] == 1.0
