"""Rigid transforms and the camera-centred, gravity-aligned `view` frame.

Frames (transforms are named `a_from_b`: they map coordinates in `b` to coordinates in `a`):

* `cam`: OpenCV camera, x right, y down, z forward.
* `view`: origin at the optical centre, x right, y forward (the horizontal viewing
  direction), z up (against gravity). It is `cam` with pitch and roll removed and yaw kept,
  so the answer to "is A left of B" does not change when the camera tilts.
* `world`: a dataset's own frame. Sources convert their worlds to be z-up before handing
  poses over, so `view_from_world` needs nothing but the camera-to-world pose.

Angles: `pitch` > 0 tilts the optical axis up, towards +z. `roll` > 0 turns the camera about
its optical axis so that its up vector leans towards the view's +x (right); the picture then
looks turned anticlockwise.

Transforms are `[..., 4, 4]` homogeneous matrices or `[..., 3, 3]` rotations; points carry a
trailing axis of 3. Everything broadcasts and is jit-safe.
"""

from __future__ import annotations

import jax.numpy as jnp

# A level camera's axes expressed in the view frame: cam x -> view x, cam y (down) -> view -z,
# cam z (forward) -> view y.
VIEW_FROM_LEVEL_CAM = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

_EPS = 1e-9


def rotation_x(angle):
    """Right-handed rotation about +x. `[...]` -> `[..., 3, 3]`."""
    c, s = jnp.cos(angle), jnp.sin(angle)
    o, z = jnp.ones_like(c), jnp.zeros_like(c)
    return jnp.stack(
        [jnp.stack([o, z, z], -1), jnp.stack([z, c, -s], -1), jnp.stack([z, s, c], -1)], -2
    )


def rotation_y(angle):
    """Right-handed rotation about +y. `[...]` -> `[..., 3, 3]`."""
    c, s = jnp.cos(angle), jnp.sin(angle)
    o, z = jnp.ones_like(c), jnp.zeros_like(c)
    return jnp.stack(
        [jnp.stack([c, z, s], -1), jnp.stack([z, o, z], -1), jnp.stack([-s, z, c], -1)], -2
    )


def rotation_z(angle):
    """Right-handed rotation about +z. `[...]` -> `[..., 3, 3]`."""
    c, s = jnp.cos(angle), jnp.sin(angle)
    o, z = jnp.ones_like(c), jnp.zeros_like(c)
    return jnp.stack(
        [jnp.stack([c, -s, z], -1), jnp.stack([s, c, z], -1), jnp.stack([z, z, o], -1)], -2
    )


def make_transform(rotation, translation):
    """`[..., 3, 3]`, `[..., 3]` -> `[..., 4, 4]`."""
    rotation, translation = jnp.asarray(rotation), jnp.asarray(translation)
    batch = jnp.broadcast_shapes(rotation.shape[:-2], translation.shape[:-1])
    top = jnp.concatenate(
        [
            jnp.broadcast_to(rotation, batch + (3, 3)),
            jnp.broadcast_to(translation, batch + (3,))[..., None],
        ],
        axis=-1,
    )
    bottom = jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0], top.dtype), batch + (1, 4))
    return jnp.concatenate([top, bottom], axis=-2)


def invert_transform(a_from_b):
    """`[..., 4, 4]` rigid transform -> its inverse `b_from_a`."""
    rot = a_from_b[..., :3, :3]
    rot_t = jnp.swapaxes(rot, -1, -2)
    return make_transform(rot_t, -jnp.einsum("...ij,...j->...i", rot_t, a_from_b[..., :3, 3]))


def apply_transform(a_from_b, points_b):
    """Maps `[..., 3]` points by a `[..., 4, 4]` transform (broadcast over leading axes)."""
    rot = a_from_b[..., :3, :3]
    return jnp.einsum("...ij,...j->...i", rot, points_b) + a_from_b[..., :3, 3]


def apply_rotation(a_from_b, vectors_b):
    """Rotates `[..., 3]` vectors by a `[..., 3, 3]` rotation."""
    return jnp.einsum("...ij,...j->...i", a_from_b, vectors_b)


def view_from_cam_rotation(pitch, roll):
    """The rotation from a tilted camera to its view frame. `[...]`, `[...]` -> `[..., 3, 3]`.

    The camera's forward axis lands on `(0, cos pitch, sin pitch)` and, for zero pitch, its
    up axis on `(sin roll, 0, cos roll)`.
    """
    pitch, roll = jnp.broadcast_arrays(jnp.asarray(pitch, float), jnp.asarray(roll, float))
    return rotation_x(pitch) @ rotation_y(roll) @ VIEW_FROM_LEVEL_CAM


def pitch_roll_from_view_from_cam(view_from_cam):
    """Inverse of `view_from_cam_rotation` for a yaw-free `[..., 3, 3]` rotation."""
    forward = view_from_cam[..., :, 2]
    right = view_from_cam[..., :, 0]
    up = -view_from_cam[..., :, 1]
    pitch = jnp.arctan2(forward[..., 2], jnp.hypot(forward[..., 0], forward[..., 1]))
    roll = jnp.arctan2(-right[..., 2], up[..., 2])
    return pitch, roll


def _normalize(v):
    return v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), _EPS)


def view_from_world(world_from_cam):
    """The view frame of a posed camera in a z-up world. `[..., 4, 4]` -> `[..., 4, 4]`.

    The view's y axis is the camera's forward axis flattened onto the horizontal plane. When
    the camera looks straight up or down that is undefined and the camera's right axis,
    flattened, fixes the yaw instead.
    """
    rot = world_from_cam[..., :3, :3]
    centre = world_from_cam[..., :3, 3]
    up = jnp.broadcast_to(jnp.array([0.0, 0.0, 1.0], rot.dtype), centre.shape)
    forward, right = rot[..., :, 2], rot[..., :, 0]
    forward_h = forward - forward[..., 2:3] * up
    right_h = right - right[..., 2:3] * up
    use_forward = jnp.linalg.norm(forward_h, axis=-1, keepdims=True) > 1e-6
    y_from_forward = _normalize(forward_h)
    y_from_right = jnp.cross(up, _normalize(right_h))
    y_axis = jnp.where(use_forward, y_from_forward, y_from_right)
    x_axis = jnp.cross(y_axis, up)
    view_from_world_rot = jnp.stack([x_axis, y_axis, up], axis=-2)
    translation = -jnp.einsum("...ij,...j->...i", view_from_world_rot, centre)
    return make_transform(view_from_world_rot, translation)


def view_from_cam(world_from_cam):
    """`[..., 4, 4]` camera-to-world pose in a z-up world -> `[..., 4, 4]` view_from_cam."""
    return view_from_world(world_from_cam) @ world_from_cam


def yaw_of_camera(world_from_cam):
    """Heading of the view's forward (y) axis in the world's xy-plane, anticlockwise from +x."""
    y_axis = view_from_world(world_from_cam)[..., 1, :3]
    return jnp.arctan2(y_axis[..., 1], y_axis[..., 0])
