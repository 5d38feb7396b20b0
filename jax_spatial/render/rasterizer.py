"""A jit-compiled triangle rasterizer: RGB, metric depth and instance ids for pinhole cameras.

Cameras are OpenCV pinholes (`cam`: x right, y down, z forward) with intrinsics `K [3, 3]` and a
pose `world_from_cam [4, 4]`; pixel `(col, row)` is sampled at its centre `(col + 0.5, row + 0.5)`,
the convention of `geometry/cameras.py`. Outputs per view: `rgb [H, W, 3]` float in `[0, 1]`,
`depth [H, W]` camera z in metres (0 where no triangle is hit) and `instance [H, W]` int32 (the
instance id of the triangle seen, -1 where none).

Pipeline, all with static shapes (one compile per triangle bucket, texture bucket and image size):

1. **Near-plane clipping.** Triangles are clipped in camera space against `z = near`
   (`cameras.NEAR_PLANE_M`): a triangle with one vertex in front becomes one smaller triangle,
   with two in front a quad split into two triangles, with none it is dropped. So `T` input
   triangles become `2T` slots, the second used only by the quad case. Attributes are cut
   linearly in camera space, which is exact for attributes that vary linearly over the 3D
   triangle. Clipping (rather than discarding) matters because a camera inside a room has
   walls and floor straddling its image plane. The cut point of an edge is always computed
   from its in-front end, so two triangles sharing an edge cut it at bit-identical points.
2. **Binning.** The image is split into square tiles (`tile` px). Each triangle's screen bounding
   box marks the tiles it may touch; each tile gets its triangles in index order.
3. **Rasterising in passes.** Pass `j` takes the `j`-th group of `chunk` triangles of every
   tile and evaluates them at the tile's pixels: `[tiles, tile*tile, chunk]` values, so memory is
   bounded whatever the triangle count. A `lax.while_loop` runs as many passes as the busiest
   tile needs. Each pass keeps, per pixel, the triangle with the largest interpolated `1/z`
   (nearest), ties going to the lower triangle index, so the result does not depend on the
   chunking.
4. **Deferred shading.** Once per pixel, for the winning triangle: perspective-correct
   barycentrics (screen barycentrics weighted by `1/z_i`), interpolated colour, uv and normal,
   bilinear texture lookup (repeat addressing), Lambert shading from one directional light plus
   ambient and a weak fill light at the camera, and an optional Blinn-Phong highlight.

**Fill rule.** The coverage test is inclusive with a small tolerance: a pixel centre is inside
when its signed distance to each edge is `>= -EDGE_EPS_PX` pixels. Each edge's line equation is
written from the edge's midpoint and length, which are symmetric in its two ends, so the two
triangles sharing an edge evaluate exactly negated distances at every pixel: every pixel centre
on a shared edge is claimed by at least one of them, and no holes open between adjacent
triangles. Pixels claimed twice are settled by the depth test. Back faces are not culled (meshes
from the wild have inconsistent winding, and room walls are seen from inside); lighting is
two-sided.

Attributes per triangle corner (`[T, 3, ATTR_DIM]`): colour `0:3` (linear 0..1), uv `3:5` (OpenGL
convention, origin at the texture's bottom-left), normal `5:8` (world), specular strength `8`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jax_spatial.geometry import cameras

ATTR_DIM = 9
COLOUR, UV, NORMAL, SPECULAR = slice(0, 3), slice(3, 5), slice(5, 8), 8
# Slack of the coverage test in pixels: absorbs rounding in the edge equations of very large
# (near-clipped) triangles; overdraw is at most this far outside a silhouette.
EDGE_EPS_PX = 1e-3
# Light defaults: from above and a little behind a camera facing +y, like a ceiling light.
DEFAULT_LIGHT_DIR = (0.3, -0.5, 1.0)
DEFAULT_AMBIENT = 0.3
# A weak light at the camera: surfaces facing away from the key light (ceilings, walls seen
# edge-on to it) keep some shading cue instead of a flat ambient colour.
DEFAULT_FILL = 0.3
SHININESS = 32.0


@struct.dataclass
class Triangles:
    """A padded triangle soup in the world frame (a pytree; see `meshes.pack`).

    Attributes:
      vertices: `[T, 3, 3]` float32 world positions of each triangle's corners.
      attrs: `[T, 3, ATTR_DIM]` float32 per-corner attributes (module docstring).
      instance: `[T]` int32 instance id written to the instance map.
      texture: `[T]` int32 index into the texture stack, -1 for untextured.
      valid: `[T]` bool, False for padding.
    """

    vertices: jax.Array
    attrs: jax.Array
    instance: jax.Array
    texture: jax.Array
    valid: jax.Array

    @property
    def num(self) -> int:
        return self.vertices.shape[0]


@struct.dataclass
class Render:
    """Rendered images of one view (`[...]` leading axes for batched views).

    Attributes:
      rgb: `[..., H, W, 3]` float32 in `[0, 1]`.
      depth: `[..., H, W]` float32 camera z in metres, 0 where nothing was hit.
      instance: `[..., H, W]` int32 instance id, -1 where nothing was hit.
    """

    rgb: jax.Array
    depth: jax.Array
    instance: jax.Array


def _cut(p_in, p_out, a_in, a_out, near):
    """Point and attributes where segment in->out crosses `z = near` (from the in-front end)."""
    dz = p_out[..., 2] - p_in[..., 2]
    t = (near - p_in[..., 2]) / jnp.where(dz == 0, 1.0, dz)
    t = t[..., None]
    return p_in + t * (p_out - p_in), a_in + t * (a_out - a_in)


def clip_near(vertices, attrs, valid, near=cameras.NEAR_PLANE_M):
    """Clips camera-space triangles against the plane `z = near`.

    Args:
      vertices: `[T, 3, 3]` camera-frame corners.
      attrs: `[T, 3, A]` per-corner attributes.
      valid: `[T]` bool.

    Returns:
      `(vertices [2T, 3, 3], attrs [2T, 3, A], valid [2T], source [2T])`: the first `T` slots
      hold each triangle's first piece, the last `T` the second piece of quads; `source` is the
      input triangle index of each slot. Every valid output corner has `z >= near`.
    """
    t = vertices.shape[0]
    inside = vertices[..., 2] > near  # [T, 3]
    n_in = jnp.sum(inside, axis=-1)
    # Rotate the corners (keeping winding) so that corner 0 is the odd one out: the only
    # corner in front when one is, the only one behind when two are.
    special = jnp.where(n_in == 1, jnp.argmax(inside, -1), jnp.argmax(~inside, -1))
    order = (special[:, None] + jnp.arange(3)[None]) % 3
    v = jnp.take_along_axis(vertices, order[:, :, None], axis=1)
    a = jnp.take_along_axis(attrs, order[:, :, None], axis=1)
    p0, p1, p2 = v[:, 0], v[:, 1], v[:, 2]
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    # One in front (corner 0): the tip survives.
    q01_in, b01_in = _cut(p0, p1, a0, a1, near)
    q02_in, b02_in = _cut(p0, p2, a0, a2, near)
    # Two in front (corners 1, 2): a quad (q01, p1, p2, q02) split along q01-p2.
    q01_out, b01_out = _cut(p1, p0, a1, a0, near)
    q02_out, b02_out = _cut(p2, p0, a2, a0, near)

    one = (n_in == 1)[:, None, None]
    two = (n_in == 2)[:, None, None]
    first_v = jnp.where(
        one,
        jnp.stack([p0, q01_in, q02_in], 1),
        jnp.where(two, jnp.stack([q01_out, p1, p2], 1), v),
    )
    first_a = jnp.where(
        one,
        jnp.stack([a0, b01_in, b02_in], 1),
        jnp.where(two, jnp.stack([b01_out, a1, a2], 1), a),
    )
    second_v = jnp.stack([q01_out, p2, q02_out], 1)
    second_a = jnp.stack([b01_out, a2, b02_out], 1)
    out_v = jnp.concatenate([first_v, second_v], 0)
    out_a = jnp.concatenate([first_a, second_a], 0)
    out_valid = jnp.concatenate([valid & (n_in >= 1), valid & (n_in == 2)], 0)
    source = jnp.concatenate([jnp.arange(t), jnp.arange(t)], 0)
    return out_v, out_a, out_valid, source


def _edge_planes(uv):
    """Signed-distance line equations of a screen triangle's edges.

    Args:
      uv: `[T, 3, 2]` screen corners.

    Returns:
      `[T, 3, 3]` coefficients `(A, B, C)` per edge `i` (the edge opposite corner `i`) with
      `A u + B v + C` the signed distance in pixels, positive towards corner `i`; and `[T]`
      twice the signed area.
    """
    p0, p1, p2 = uv[:, 0], uv[:, 1], uv[:, 2]
    area2 = (p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (
        p2[:, 0] - p0[:, 0]
    )
    sign = jnp.where(area2 >= 0, 1.0, -1.0)
    planes = []
    for a, b in ((p1, p2), (p2, p0), (p0, p1)):
        d = b - a
        length = jnp.maximum(jnp.hypot(d[:, 0], d[:, 1]), 1e-30)
        # Midpoint and length are symmetric in (a, b), so the neighbour that walks this edge
        # the other way gets exactly the negated equation.
        mid = 0.5 * (a + b)
        coef_a = -d[:, 1] / length
        coef_b = d[:, 0] / length
        coef_c = -(coef_a * mid[:, 0] + coef_b * mid[:, 1])
        planes.append(jnp.stack([coef_a, coef_b, coef_c], -1) * sign[:, None])
    return jnp.stack(planes, 1), area2


def _barycentric_planes(uv):
    """`[T, 3, 2]` -> `[T, 3, 3]` line equations of the screen barycentrics (unit at corner i)."""
    p0, p1, p2 = uv[:, 0], uv[:, 1], uv[:, 2]
    area2 = (p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (
        p2[:, 0] - p0[:, 0]
    )
    inv = 1.0 / jnp.where(area2 == 0, 1.0, area2)
    planes = []
    for a, b in ((p1, p2), (p2, p0), (p0, p1)):
        coef_a = -(b[:, 1] - a[:, 1]) * inv
        coef_b = (b[:, 0] - a[:, 0]) * inv
        coef_c = (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]) * inv
        planes.append(jnp.stack([coef_a, coef_b, coef_c], -1))
    return jnp.stack(planes, 1)


def _sample_texture(textures, index, uv):
    """Bilinear, repeat-addressed lookup. `[M, S, S, 3]`, `[P]`, `[P, 2]` -> `[P, 3]`.

    uv follows OpenGL: v = 0 is the bottom row of the image (row S - 1).
    """
    size = textures.shape[1]
    s = uv[:, 0] * size - 0.5
    t = (1.0 - uv[:, 1]) * size - 0.5
    s0, t0 = jnp.floor(s), jnp.floor(t)
    fs, ft = (s - s0)[:, None], (t - t0)[:, None]
    s0 = s0.astype(jnp.int32) % size
    t0 = t0.astype(jnp.int32) % size
    s1, t1 = (s0 + 1) % size, (t0 + 1) % size
    idx = jnp.clip(index, 0, textures.shape[0] - 1)

    def at(row, col):
        return textures[idx, row, col]

    top = at(t0, s0) * (1 - fs) + at(t0, s1) * fs
    bottom = at(t1, s0) * (1 - fs) + at(t1, s1) * fs
    return top * (1 - ft) + bottom * ft


def _render_one(
    tris,
    textures,
    K,
    world_from_cam,
    light_dir,
    ambient,
    fill,
    background,
    *,
    height,
    width,
    tile,
    chunk,
):
    f32 = jnp.float32
    rot = world_from_cam[:3, :3].astype(f32)
    centre = world_from_cam[:3, 3].astype(f32)
    K = K.astype(f32)
    v_cam = jnp.einsum("ji,tkj->tki", rot, tris.vertices - centre)  # cam_from_world
    v, attrs, valid, source = clip_near(v_cam, tris.attrs, tris.valid)
    z = v[..., 2]
    safe_z = jnp.maximum(z, cameras.NEAR_PLANE_M)
    xy = v[..., :2] / safe_z[..., None]
    uv = jnp.stack(
        [K[0, 0] * xy[..., 0] + K[0, 1] * xy[..., 1] + K[0, 2], K[1, 1] * xy[..., 1] + K[1, 2]],
        -1,
    )  # [T2, 3, 2]
    edges, area2 = _edge_planes(uv)
    bary = _barycentric_planes(uv)
    valid = valid & (jnp.abs(area2) > 1e-9) & jnp.all(jnp.isfinite(uv), axis=(1, 2))
    # 1/z is affine in screen space: its line equation is the barycentric planes weighted by 1/z_i.
    invz_plane = jnp.einsum("tij,ti->tj", bary, 1.0 / safe_z)  # [T2, 3]
    coef = jnp.concatenate([edges.reshape(-1, 9), invz_plane], -1)  # [T2, 12]

    # Binning by screen bounding box against the tiles' pixel-centre ranges.
    th, tw = -(-height // tile), -(-width // tile)
    n_tiles = th * tw
    big = f32(1e30)
    lo = jnp.where(valid[:, None], jnp.min(uv, 1), big)
    hi = jnp.where(valid[:, None], jnp.max(uv, 1), -big)
    ty, tx = jnp.divmod(jnp.arange(n_tiles), tw)
    x0 = (tx * tile).astype(f32) + 0.5 - EDGE_EPS_PX
    y0 = (ty * tile).astype(f32) + 0.5 - EDGE_EPS_PX
    x1 = x0 + (tile - 1) + 2 * EDGE_EPS_PX
    y1 = y0 + (tile - 1) + 2 * EDGE_EPS_PX
    overlap = (
        (hi[None, :, 0] >= x0[:, None])
        & (lo[None, :, 0] <= x1[:, None])
        & (hi[None, :, 1] >= y0[:, None])
        & (lo[None, :, 1] <= y1[:, None])
    )  # [n_tiles, T2]
    counts = jnp.sum(overlap, -1)
    # Each tile's triangles first, in index order (stable sort keeps ties deterministic).
    order = jnp.argsort(~overlap, axis=-1, stable=True).astype(jnp.int32)
    t2 = order.shape[1]
    padded = -(-t2 // chunk) * chunk
    order = jnp.pad(order, ((0, 0), (0, padded - t2)))
    passes = (jnp.max(counts) + chunk - 1) // chunk

    py, px = jnp.meshgrid(jnp.arange(tile), jnp.arange(tile), indexing="ij")
    pix_x = (tx[:, None] * tile + px.reshape(1, -1)).astype(f32) + 0.5  # [n_tiles, P_t]
    pix_y = (ty[:, None] * tile + py.reshape(1, -1)).astype(f32) + 0.5

    def body(j, state):
        best_invz, best_tri = state
        idx = jax.lax.dynamic_slice_in_dim(order, j * chunk, chunk, axis=1)  # [n_tiles, C]
        live = (j * chunk + jnp.arange(chunk))[None, :] < counts[:, None]
        c = coef[idx]  # [n_tiles, C, 12]

        def plane(k):
            return (
                c[:, None, :, 3 * k] * pix_x[:, :, None]
                + c[:, None, :, 3 * k + 1] * pix_y[:, :, None]
                + c[:, None, :, 3 * k + 2]
            )

        inside = (plane(0) >= -EDGE_EPS_PX) & (plane(1) >= -EDGE_EPS_PX)
        inside = inside & (plane(2) >= -EDGE_EPS_PX) & live[:, None, :]
        invz = jnp.where(inside, plane(3), -1.0)  # [n_tiles, P_t, C]
        k = jnp.argmax(invz, axis=-1)
        top = jnp.take_along_axis(invz, k[..., None], -1)[..., 0]
        tri = jnp.take_along_axis(idx[:, None, :], k[..., None], -1)[..., 0]
        # Strictly nearer only: on ties the lower triangle index (an earlier pass) keeps the pixel.
        better = top > best_invz
        return jnp.where(better, top, best_invz), jnp.where(better, tri, best_tri)

    init = (jnp.zeros((n_tiles, tile * tile), f32), jnp.full((n_tiles, tile * tile), -1, jnp.int32))
    best_invz, best_tri = jax.lax.fori_loop(0, passes, body, init)

    def untile(a):
        a = a.reshape((th, tw, tile, tile) + a.shape[2:])
        a = jnp.swapaxes(a, 1, 2).reshape((th * tile, tw * tile) + a.shape[4:])
        return a[:height, :width]

    tri = untile(best_tri).reshape(-1)
    hit = tri >= 0
    tri_c = jnp.maximum(tri, 0)
    cols, rows = jnp.meshgrid(jnp.arange(width), jnp.arange(height))
    pu = cols.reshape(-1).astype(f32) + 0.5
    pv = rows.reshape(-1).astype(f32) + 0.5
    b = bary[tri_c]  # [P, 3, 3]
    screen_b = b[..., 0] * pu[:, None] + b[..., 1] * pv[:, None] + b[..., 2]
    # The inclusive edge test admits pixels a hair outside: clamp so attributes do not overshoot.
    screen_b = jnp.clip(screen_b, 0.0, None)
    screen_b = screen_b / jnp.maximum(jnp.sum(screen_b, -1, keepdims=True), 1e-30)
    # 1/z is affine in screen space; attributes are affine in 1/z-weighted barycentrics.
    w = screen_b / safe_z[tri_c]
    invz = jnp.sum(w, -1, keepdims=True)
    depth = 1.0 / jnp.maximum(invz[:, 0], 1e-30)
    w = w / jnp.maximum(invz, 1e-30)
    a = jnp.einsum("pi,pia->pa", w, attrs[tri_c])  # [P, A]

    src = source[tri_c]
    tex_index = tris.texture[src]
    colour = a[:, COLOUR]
    texel = _sample_texture(textures, tex_index, a[:, UV])
    colour = jnp.where((tex_index >= 0)[:, None], colour * texel, colour)

    # Shading in the world frame: two-sided normals face the camera.
    ray_y = (pv - K[1, 2]) / K[1, 1]
    ray_x = (pu - K[0, 2] - K[0, 1] * ray_y) / K[0, 0]
    ray_cam = jnp.stack([ray_x, ray_y, jnp.ones_like(pu)], -1)
    ray = ray_cam @ rot.T
    ray = ray / jnp.linalg.norm(ray, axis=-1, keepdims=True)
    normal = a[:, NORMAL]
    normal = normal / jnp.maximum(jnp.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)
    normal = jnp.where(jnp.sum(normal * ray, -1, keepdims=True) > 0, -normal, normal)
    light = light_dir / jnp.linalg.norm(light_dir)
    diffuse = jnp.maximum(normal @ light, 0.0)[:, None]
    half = light[None, :] - ray
    half = half / jnp.maximum(jnp.linalg.norm(half, axis=-1, keepdims=True), 1e-12)
    spec = (
        a[:, SPECULAR : SPECULAR + 1]
        * jnp.maximum(jnp.sum(normal * half, -1, keepdims=True), 0.0) ** SHININESS
    )
    facing = jnp.maximum(-jnp.sum(normal * ray, -1, keepdims=True), 0.0)
    lit = ambient + (1.0 - ambient - fill) * diffuse + fill * facing
    shaded = colour * lit + spec * (diffuse > 0)
    rgb = jnp.where(hit[:, None], jnp.clip(shaded, 0.0, 1.0), background[None, :])
    return Render(
        rgb=rgb.reshape(height, width, 3),
        depth=jnp.where(hit, depth, 0.0).reshape(height, width),
        instance=jnp.where(hit, tris.instance[src], -1).reshape(height, width).astype(jnp.int32),
    )


@functools.partial(jax.jit, static_argnames=("height", "width", "tile", "chunk"))
def render(
    tris: Triangles,
    textures,
    K,
    world_from_cam,
    *,
    height: int,
    width: int,
    light_dir=DEFAULT_LIGHT_DIR,
    ambient=DEFAULT_AMBIENT,
    fill=DEFAULT_FILL,
    background=(0.0, 0.0, 0.0),
    tile: int = 16,
    chunk: int = 32,
) -> Render:
    """Renders a triangle soup from one or more pinhole cameras.

    Args:
      tris: the scene's triangles (`meshes.pack`), `T` padded to a bucket.
      textures: `[M, S, S, 3]` float32 texture stack in `[0, 1]` (row 0 = top of the image);
        pass `[1, 1, 1, 3]` ones when nothing is textured.
      K: `[3, 3]` or `[V, 3, 3]` intrinsics.
      world_from_cam: `[4, 4]` or `[V, 4, 4]` camera-to-world poses (OpenCV camera axes).
      height, width: image size (static).
      light_dir: `[3]` world direction towards the light.
      ambient: fraction of the colour lit without any light.
      fill: weight of a light at the camera (the key light gets `1 - ambient - fill`).
      background: `[3]` colour of pixels that hit nothing.
      tile, chunk: tile side in pixels and triangles per pass (memory/speed trade-off only;
        the output does not depend on them).

    Returns:
      A `Render` with `[H, W, ...]` fields, or `[V, H, W, ...]` when the cameras are batched.
      Views are rendered one after the other (`lax.map`) so memory does not grow with `V`.
    """
    K = jnp.asarray(K, jnp.float32)
    world_from_cam = jnp.asarray(world_from_cam, jnp.float32)
    light_dir = jnp.asarray(light_dir, jnp.float32)
    ambient = jnp.asarray(ambient, jnp.float32)
    fill = jnp.asarray(fill, jnp.float32)
    background = jnp.asarray(background, jnp.float32)
    textures = jnp.asarray(textures, jnp.float32)
    one = functools.partial(
        _render_one, tris, textures, height=height, width=width, tile=tile, chunk=chunk
    )
    if K.ndim == 3 or world_from_cam.ndim == 3:
        n = K.shape[0] if K.ndim == 3 else world_from_cam.shape[0]
        K = jnp.broadcast_to(K, (n, 3, 3))
        world_from_cam = jnp.broadcast_to(world_from_cam, (n, 4, 4))
        return jax.lax.map(
            lambda kp: one(kp[0], kp[1], light_dir, ambient, fill, background), (K, world_from_cam)
        )
    return one(K, world_from_cam, light_dir, ambient, fill, background)


def bucket_size(n: int, minimum: int = 256) -> int:
    """Padded triangle count for `n` triangles: the next power of two, at least `minimum`."""
    size = minimum
    while size < n:
        size *= 2
    return size


def pad_triangles(vertices, attrs, instance, texture, size: int | None = None) -> Triangles:
    """Host arrays -> a `Triangles` padded to `size` (default `bucket_size(T)`).

    Args:
      vertices: `[T, 3, 3]` world corners; attrs: `[T, 3, ATTR_DIM]`; instance, texture: `[T]`.
    """
    t = len(vertices)
    size = bucket_size(t) if size is None else size
    if size < t:
        raise ValueError(f"cannot pad {t} triangles to {size}")
    pad = size - t

    def grow(x, dtype, fill=0):
        x = np.asarray(x, dtype)
        return np.concatenate([x, np.full((pad,) + x.shape[1:], fill, dtype)], 0)

    return Triangles(
        vertices=grow(np.reshape(vertices, (t, 3, 3)), np.float32),
        attrs=grow(np.reshape(attrs, (t, 3, ATTR_DIM)), np.float32),
        instance=grow(instance, np.int32, -1),
        texture=grow(texture, np.int32, -1),
        valid=np.concatenate([np.ones(t, bool), np.zeros(pad, bool)]),
    )
