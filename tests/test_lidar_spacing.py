"""Ring-aware point spacing of LiDAR sweeps (`visibility.point_spacings`).

A spinning LiDAR samples angles: its returns lie on rings a fixed elevation step apart, and
the z-buffer must splat each return as wide as the gap to the next ring at its range, or
hidden points show through the stripes between rings.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from jax_spatial import visibility
from jax_spatial.observe import ObserveConfig
from jax_spatial.scene import Scene
from jax_spatial.sources import get_source


def ring_sweep(ring_step_deg, azimuth_step_deg, distance=10.0, rings=32):
    """`[P, 3]` returns of a LiDAR at the origin on a wall `distance` m ahead (along +y)."""
    elevation = np.radians(-ring_step_deg * np.arange(rings) + 2.0)
    azimuth = np.radians(np.arange(-40.0, 40.0, azimuth_step_deg))
    el, az = np.meshgrid(elevation, azimuth)
    # Ray (sin az cos el, cos az cos el, sin el), cut by the plane y = distance.
    t = distance / (np.cos(az) * np.cos(el))
    rays = np.stack([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)], -1)
    return (rays * t[..., None]).reshape(-1, 3)


@pytest.mark.parametrize("ring_deg, azimuth_deg", [(0.4, 0.09), (1.33, 0.33), (0.2, 0.4)])
def test_ring_step_is_the_larger_angular_gap(ring_deg, azimuth_deg):
    step = visibility.estimate_ring_spacing(ring_sweep(ring_deg, azimuth_deg))
    expected = visibility.SPACING_SCALE * np.radians(max(ring_deg, azimuth_deg))
    # 5%: the rings are exact, the only error is the azimuth sampling near the wall's edges.
    assert step == pytest.approx(expected, rel=0.05)


def test_nearest_neighbour_spacing_is_too_fine_for_rings():
    points = ring_sweep(1.33, 0.33, distance=20.0)
    ring_gap_m = 20.0 * np.radians(1.33)
    # The plain estimate sees the along-ring gap: a quarter of the gap between rings.
    assert visibility.estimate_spacing(points) < 0.5 * ring_gap_m
    scene = Scene("s", "test", [], [], points=points, meta={"lidar_origin": [0.0, 0.0, 0.0]})
    spacing = visibility.point_spacings(scene)
    assert spacing.shape == (len(points),)
    assert np.median(spacing) > ring_gap_m


def test_override_and_scans_keep_one_spacing():
    points = ring_sweep(0.4, 0.1)
    scan = Scene("s", "test", [], [], points=points)
    assert np.ndim(visibility.point_spacings(scan)) == 0
    fixed = Scene("s", "test", [], [], points=points, meta={"lidar_origin": [0, 0, 0],
                                                            "point_spacing": 0.3})  # fmt: skip
    assert visibility.point_spacings(fixed) == 0.3


# -- the real KITTI sweep ------------------------------------------------------------------


@pytest.fixture
def kitti_sweep(real_data):
    return get_source("mmdet3d", str(real_data("mmdet3d_infos", "kitti_000008"))).load("000008")


def test_kitti_sweep_ring_step_is_the_hdl64_step(kitti_sweep):
    scene = kitti_sweep
    origin = np.asarray(scene.meta["lidar_origin"])
    # The sensor sits above the colour camera (KITTI's setup drawing: 8 cm higher, 27 cm back).
    np.testing.assert_allclose(origin, [0.0, -0.27, 0.08], atol=0.02)
    step = visibility.estimate_ring_spacing(scene.points - origin)
    # The HDL-64E's upper block, which holds most of the camera's field of view, is 1/3 degree
    # between lasers; 10% covers the lower block's 1/2 degree mixed into the median.
    assert np.degrees(step) / visibility.SPACING_SCALE == pytest.approx(1 / 3, rel=0.1)
    spacing = visibility.point_spacings(scene)
    ranges = np.linalg.norm(scene.points - origin, axis=1)
    np.testing.assert_allclose(spacing, step * np.maximum(ranges, 0.1), rtol=1e-6)
    # Far returns are spread much wider than the scan-style nearest-neighbour estimate says.
    assert np.median(spacing[ranges > 20]) > 2 * visibility.estimate_spacing(scene.points)


def test_native_kitti_reader_places_the_sensor_the_same(tmp_path, real_data, kitti_sweep):
    kitti = real_data("kitti_object", "training")
    split = tmp_path / "training"
    for part, suffix in (("image_2", ".png"), ("label_2", ".txt"), ("calib", ".txt")):
        (split / part).mkdir(parents=True)
        (split / part / f"000008{suffix}").symlink_to(kitti / part / f"000008{suffix}")
    (split / "velodyne").mkdir()
    sweep = real_data("mmdet3d_infos", "kitti_000008", "000008.bin")
    (split / "velodyne" / "000008.bin").symlink_to(sweep)
    native = get_source("kitti", str(tmp_path)).load("000008")
    np.testing.assert_allclose(
        native.meta["lidar_origin"], kitti_sweep.meta["lidar_origin"], atol=1e-4
    )


def _hidden_behind(scene, frame, car, behind_m=3.0, size=0.6, step=0.04):
    """A box `behind_m` further along the camera ray through `car`, with its front face sampled
    every `step` m: wholly hidden from the camera by the car."""
    cam = frame.world_from_cam[:3, 3]
    ray = car.centre - cam
    ray /= np.linalg.norm(ray)
    right = np.cross(ray, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, ray)
    rotation = np.stack([right, ray, up], axis=1)  # world_from_box: box y along the ray
    centre = car.centre + ray * (behind_m + 0.5 * float(car.extent.max()))
    a, b = np.meshgrid(np.arange(-0.28, 0.29, step), np.arange(-0.28, 0.29, step))
    face = centre - 0.5 * size * ray + a.reshape(-1, 1) * right + b.reshape(-1, 1) * up
    return centre, np.full(3, size), rotation, face


@pytest.mark.parametrize("car_index", [4, 5])  # the two far cars, 34 m and 22 m from the sensor
def test_object_behind_a_far_car_stays_hidden(kitti_sweep, car_index):
    scene, frame = kitti_sweep, kitti_sweep.frames[0]
    car = scene.objects[car_index].box3d
    centre, extent, rotation, face = _hidden_behind(scene, frame, car)
    origin = np.asarray(scene.meta["lidar_origin"])
    step = visibility.estimate_ring_spacing(scene.points - origin)
    with_face = dataclasses.replace(scene, points=np.concatenate([scene.points, face]))
    ring = np.concatenate(
        [visibility.point_spacings(scene), step * np.linalg.norm(face - origin, axis=1)]
    )
    plain = visibility.estimate_spacing(scene.points)

    def fraction(spacing):
        f, _, _ = visibility.visible_fraction(
            with_face, frame, centre[None], extent[None], rotation[None], np.ones(1, bool),
            point_spacing=spacing,
        )  # fmt: skip
        return float(f[0])

    ring_fraction, plain_fraction = fraction(ring), fraction(plain)
    # Ring-aware splats close the car's stripes: the box is dropped as hidden (below the
    # observe threshold), while the along-ring spacing lets far more of it show through.
    assert ring_fraction < ObserveConfig().min_visible_fraction, ring_fraction
    assert plain_fraction > ring_fraction + 0.05, (plain_fraction, ring_fraction)


def test_kitti_cars_stay_visible_with_ring_spacing(kitti_sweep):
    """The six cars the LiDAR sees are still seen whole: coarser splats hide nothing real."""
    scene, frame = kitti_sweep, kitti_sweep.frames[0]
    centre = np.stack([o.box3d.centre for o in scene.objects])
    extent = np.stack([o.box3d.extent for o in scene.objects])
    rotation = np.stack([o.box3d.rotation for o in scene.objects])
    fraction, count, _ = visibility.visible_fraction(
        scene, frame, centre, extent, rotation, np.ones(len(centre), bool)
    )
    # Measured 0.96-1.0: the camera sits 27 cm from the sensor, so little the sensor saw is
    # hidden from it.
    assert np.all(fraction > 0.9), fraction
    assert np.all(count >= 50), count
