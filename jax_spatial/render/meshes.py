"""Triangle meshes: a small `Mesh` type, loading with trimesh, primitives and furniture.

Local frames of the builders: z up, the footprint centred on the origin, the base at `z = 0`,
so placing a shape is a yaw about z plus a translation, and its exact oriented 3D box is the
axis-aligned box of its vertices in the local frame (`Shape.extent`, centred at
`(0, 0, extent_z / 2)`). Round primitives use segment counts divisible by 4, so vertices sit
on the extreme points and the vertex box is the true box.

UVs follow OpenGL/OBJ: origin at the texture's bottom-left, v up; `Mesh.texture` is stored as
an image (row 0 at the top). trimesh already converts glTF UVs to that convention on load.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from jax_spatial.render import rasterizer

# Corner normals within this angle of their face normal are smoothed; sharper creases (box
# edges, cylinder rims) keep the face normal, so one rule serves boxes and scanned meshes.
CREASE_DEG = 40.0
MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".ply", ".stl", ".off")


@dataclasses.dataclass
class Mesh:
    """A triangle mesh with optional colours and one optional texture.

    Attributes:
      vertices: `[V, 3]` float64 positions.
      faces: `[F, 3]` int vertex indices.
      vertex_colors: `[V, 3]` float in `[0, 1]`, or None.
      face_colors: `[F, 3]` float in `[0, 1]`, or None (wins over vertex colours).
      uv: `[V, 2]` texture coordinates (OpenGL convention), or None.
      texture: `[h, w, 3]` uint8 image, or None.
      specular: Blinn-Phong highlight strength (0 = matte).
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray | None = None
    face_colors: np.ndarray | None = None
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None
    specular: float = 0.0

    def __post_init__(self):
        self.vertices = np.asarray(self.vertices, np.float64).reshape(-1, 3)
        self.faces = np.asarray(self.faces, np.int64).reshape(-1, 3)

    @property
    def bounds(self) -> np.ndarray:
        """`[2, 3]` min and max corner of the vertices."""
        return np.stack([self.vertices.min(0), self.vertices.max(0)])

    def transformed(self, a_from_mesh: np.ndarray) -> Mesh:
        """The mesh with its vertices mapped by a `[4, 4]` transform (scale allowed)."""
        a_from_mesh = np.asarray(a_from_mesh, np.float64)
        v = self.vertices @ a_from_mesh[:3, :3].T + a_from_mesh[:3, 3]
        return dataclasses.replace(self, vertices=v)

    def with_color(self, rgb) -> Mesh:
        """The mesh with one flat colour (drops vertex and face colours, keeps any texture)."""
        colours = np.broadcast_to(np.asarray(rgb, np.float64), (len(self.faces), 3)).copy()
        return dataclasses.replace(self, vertex_colors=None, face_colors=colours)

    def corner_colors(self) -> np.ndarray:
        """`[F, 3, 3]` colour of each face corner (white when the mesh has none)."""
        if self.face_colors is not None:
            return np.repeat(np.asarray(self.face_colors, np.float64)[:, None], 3, 1)
        if self.vertex_colors is not None:
            return np.asarray(self.vertex_colors, np.float64)[self.faces]
        return np.ones((len(self.faces), 3, 3))

    def corner_normals(self, crease_deg: float = CREASE_DEG) -> np.ndarray:
        """`[F, 3, 3]` unit normals per face corner, smoothed except across creases."""
        tri = self.vertices[self.faces]
        face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # area-weighted
        vert_n = np.zeros_like(self.vertices)
        for k in range(3):
            np.add.at(vert_n, self.faces[:, k], face_n)
        face_u = _unit(face_n)
        corner = _unit(vert_n[self.faces])
        smooth = np.sum(corner * face_u[:, None], -1) > np.cos(np.radians(crease_deg))
        return np.where(smooth[..., None], corner, face_u[:, None])


def _unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def concatenate(meshes: list[Mesh]) -> Mesh:
    """Joins untextured meshes into one (colours become face colours)."""
    if any(m.texture is not None for m in meshes):
        raise ValueError("concatenate joins untextured meshes only; keep textured ones separate")
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return Mesh(
        vertices=np.concatenate([m.vertices for m in meshes]),
        faces=np.concatenate([m.faces + o for m, o in zip(meshes, offsets, strict=True)]),
        face_colors=np.concatenate([m.corner_colors().mean(1) for m in meshes]),
        specular=max(m.specular for m in meshes),
    )


# ----------------------------------------------------------------------------- loading


def load_mesh(path, up: str = "auto", texture_size: int | None = 512) -> Mesh:
    """Reads a mesh file (GLB/glTF, OBJ, PLY, STL, OFF) with trimesh into one `Mesh`.

    Multi-part files are flattened (trimesh packs their textures into one atlas). Colours come
    from the texture (uv + image), else vertex or face colours, else the material's base colour.

    Args:
      path: the file.
      up: the file's up axis, "y" or "z", returned z-up. "auto": glTF is y-up by its spec;
        other formats are taken as z-up when the mesh rests on `z = 0` and not on `y = 0`, else
        y-up (the common convention of OBJ and PLY exports).
      texture_size: textures larger than this on a side are downsampled (None keeps them).
    """
    import trimesh  # Imported lazily: only mesh files need it.

    path = pathlib.Path(path)
    loaded = trimesh.load(str(path), force="mesh", process=False)
    vertices = np.asarray(loaded.vertices, np.float64)
    faces = np.asarray(loaded.faces, np.int64)
    mesh = Mesh(vertices=vertices, faces=faces)
    visual = loaded.visual
    if getattr(visual, "kind", None) == "texture" and getattr(visual, "uv", None) is not None:
        material = visual.material
        image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
        # glTF multiplies the texture by baseColorFactor; trimesh's OBJ materials carry a
        # default grey diffuse even where the file gives none, so OBJ textures stand alone.
        is_pbr = hasattr(material, "baseColorFactor")
        factor = _base_colour(material) if is_pbr else np.ones(3)
        if path.suffix.lower() == ".obj":
            image = _obj_texture(path, image)
            if image is None:
                factor = _NEUTRAL
        if image is not None and len(visual.uv) == len(vertices):
            image = image.convert("RGB")
            if texture_size and max(image.size) > texture_size:
                scale = texture_size / max(image.size)
                size = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
                from PIL import Image

                image = image.resize(size, Image.Resampling.BILINEAR)
            mesh.uv = np.asarray(visual.uv, np.float64)
            mesh.texture = np.asarray(image, np.uint8)
        mesh.face_colors = np.broadcast_to(factor, (len(faces), 3)).copy()
    elif getattr(visual, "kind", None) in ("vertex", "face"):
        if visual.kind == "vertex":
            mesh.vertex_colors = np.asarray(visual.vertex_colors, np.float64)[:, :3] / 255.0
        else:
            mesh.face_colors = np.asarray(visual.face_colors, np.float64)[:, :3] / 255.0
    if up == "auto":
        lo = mesh.bounds[0]
        size = np.ptp(mesh.vertices, 0)
        rests_on_z = abs(lo[2]) < 0.05 * size.max() and abs(lo[1]) > 0.05 * size.max()
        up = "z" if path.suffix.lower() not in (".glb", ".gltf") and rests_on_z else "y"
    if up == "y":
        # y-up -> z-up: a +90 degree turn about x keeps the mesh's front (+z) facing -y.
        mesh.vertices = mesh.vertices @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]).T
    elif up != "z":
        raise ValueError(f"up must be 'auto', 'y' or 'z', got {up!r}")
    return mesh


# Colour of meshes whose texture is missing: a light grey that shades visibly.
_NEUTRAL = np.array([0.72, 0.72, 0.72])


def _obj_texture(path: pathlib.Path, image):
    """The OBJ's diffuse map: its `map_Kd` file when the material names exactly one, else
    trimesh's image unless that is a placeholder (trimesh substitutes a few-pixel image when
    the .mtl or its texture is missing or unreadable)."""
    from PIL import Image

    maps = []
    for line in path.read_text(errors="ignore").splitlines():
        if line.startswith("mtllib "):
            mtl = path.parent / line.split(None, 1)[1].strip()
            if mtl.is_file():
                for entry in mtl.read_text(errors="ignore").splitlines():
                    if entry.strip().startswith("map_Kd "):
                        maps.append(mtl.parent / entry.strip().split()[-1])
    existing = sorted({m for m in maps if m.is_file()})
    if len(set(maps)) == 1 and existing:
        return Image.open(existing[0])
    if image is None or min(image.size) <= 16:
        return None
    return image


def _base_colour(material) -> np.ndarray:
    for name in ("baseColorFactor", "diffuse"):
        value = getattr(material, name, None)
        if value is not None:
            value = np.asarray(value, np.float64)[:3]
            return value / 255.0 if value.max() > 1.0 else value
    return np.ones(3)


def find_meshes(folder) -> list[pathlib.Path]:
    """Mesh files under `folder`, recursively, sorted (the order sources sample from)."""
    folder = pathlib.Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in MESH_SUFFIXES)


def normalised(mesh: Mesh, size: float) -> Mesh:
    """Scales a mesh so its largest side is `size`, footprint centred, base on `z = 0`."""
    lo, hi = mesh.bounds
    scale = size / max(float(np.max(hi - lo)), 1e-12)
    offset = -np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    transform = np.diag([scale, scale, scale, 1.0])
    transform[:3, 3] = offset * scale
    return mesh.transformed(transform)


# ----------------------------------------------------------------------------- primitives


def box(extent, centre=(0.0, 0.0, 0.0)) -> Mesh:
    """An axis-aligned box with separate vertices per face (sharp edges, per-face uv)."""
    half = 0.5 * np.asarray(extent, np.float64)
    centre = np.asarray(centre, np.float64)
    vertices, faces, uv = [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u_axis, v_axis = [a for a in range(3) if a != axis]
            quad = []
            for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = np.zeros(3)
                p[axis], p[u_axis], p[v_axis] = sign, su, sv
                quad.append(p * half + centre)
            base = len(vertices)
            vertices += quad
            uv += [(0, 0), (1, 0), (1, 1), (0, 1)]
            # Outward winding: counter-clockwise seen from outside.
            outward = np.cross(quad[1] - quad[0], quad[2] - quad[0])[axis] * sign > 0
            faces += (
                [(base, base + 1, base + 2), (base, base + 2, base + 3)]
                if outward
                else [(base, base + 2, base + 1), (base, base + 3, base + 2)]
            )
    return Mesh(vertices=np.array(vertices), faces=np.array(faces), uv=np.array(uv, float))


def _ring(radius, z, segments):
    angle = 2 * np.pi * np.arange(segments) / segments
    return np.stack([radius * np.cos(angle), radius * np.sin(angle), np.full(segments, z)], -1)


def _lathe(profile, segments) -> Mesh:
    """Surface of revolution about z of a `[(radius, z), ...]` profile (radius 0 = a pole)."""
    vertices, faces, rings = [], [], []
    for radius, z in profile:
        start = len(vertices)
        if radius == 0:
            vertices.append((0.0, 0.0, z))
            rings.append([start] * segments)
        else:
            vertices.extend(_ring(radius, z, segments))
            rings.append(list(range(start, start + segments)))
    for k, (lower, upper) in enumerate(zip(rings[:-1], rings[1:], strict=True)):
        if tuple(profile[k]) == tuple(profile[k + 1]):
            continue  # a duplicated rim: it only splits the normals, it has no area
        for i in range(segments):
            j = (i + 1) % segments
            a, b, c, d = lower[i], lower[j], upper[j], upper[i]
            if a != b:
                faces.append((a, b, c))
            if c != d:
                faces.append((a, c, d))
    return Mesh(vertices=np.array(vertices), faces=np.array(faces))


def cylinder(radius, height, segments: int = 24) -> Mesh:
    """A closed cylinder on `z = 0`. Rims are duplicated so caps stay flat-shaded."""
    profile = [
        (0, 0.0),
        (radius, 0.0),
        (radius, 0.0),
        (radius, height),
        (radius, height),
        (0, height),
    ]
    return _lathe(profile, segments)


def cone(radius, height, segments: int = 24) -> Mesh:
    """A closed cone on `z = 0` with its apex at `z = height`."""
    return _lathe([(0, 0.0), (radius, 0.0), (radius, 0.0), (0, height)], segments)


def sphere(radius, rings: int = 12, segments: int = 24) -> Mesh:
    """A uv-sphere resting on `z = 0` (centre at `z = radius`)."""
    theta = np.pi * np.arange(rings + 1) / rings
    profile = [
        (0 if i in (0, rings) else radius * np.sin(t), radius * (1 - np.cos(t)))
        for i, t in enumerate(theta)
    ]
    return _lathe(profile, segments)


def frustum(r_bottom, r_top, height, z0=0.0, segments: int = 24, open_ends=True) -> Mesh:
    """A truncated cone (lamp shade), open at both ends unless `open_ends` is False."""
    profile = [(r_bottom, z0), (r_top, z0 + height)]
    if not open_ends:
        profile = [(0, z0), (r_bottom, z0)] + profile + [(r_top, z0 + height), (0, z0 + height)]
    return _lathe(profile, segments)


def _moved(mesh: Mesh, offset) -> Mesh:
    transform = np.eye(4)
    transform[:3, 3] = offset
    return mesh.transformed(transform)


# ----------------------------------------------------------------------------- shapes


@dataclasses.dataclass
class Shape:
    """A placeable object: mesh in its local frame (z up, base on z = 0) plus ground truth.

    Attributes:
      category: class name ("table", "chair", ...).
      mesh: the mesh; colours are assigned by the caller.
      extent: `[3]` exact side lengths of the local box, which is centred at
        `(0, 0, extent[2] / 2)`.
      support: `(top_z, size_x, size_y)` of a flat top other objects can stand on, or None.
      accent: `[F]` bool, faces drawn in a secondary colour (a lamp's pole), or None.
    """

    category: str
    mesh: Mesh
    extent: np.ndarray
    support: tuple[float, float, float] | None = None
    accent: np.ndarray | None = None


def scaled(shape: Shape, factor: float) -> Shape:
    """The shape `factor` times as large in every direction (its base stays on `z = 0`)."""
    support = None if shape.support is None else tuple(float(v) * factor for v in shape.support)
    return dataclasses.replace(
        shape,
        mesh=shape.mesh.transformed(np.diag([factor, factor, factor, 1.0])),
        extent=np.asarray(shape.extent, np.float64) * factor,
        support=support,
    )


def _shape(category, parts, accent_parts=(), support=None) -> Shape:
    mesh = concatenate(list(parts) + list(accent_parts))
    accent = np.concatenate(
        [np.zeros(len(p.faces), bool) for p in parts]
        + [np.ones(len(p.faces), bool) for p in accent_parts]
    )
    lo, hi = mesh.bounds
    # Builders centre footprints on the origin; recentre exactly so the box is too.
    mesh = _moved(mesh, (-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]))
    return Shape(category, mesh, hi - lo, support, accent if accent.any() else None)


def box_shape(extent, category="box") -> Shape:
    return _shape(category, [box(extent, (0, 0, extent[2] / 2))], support=None)


def cylinder_shape(radius, height, category="cylinder") -> Shape:
    return _shape(category, [cylinder(radius, height)])


def sphere_shape(radius, category="ball") -> Shape:
    return _shape(category, [sphere(radius)])


def cone_shape(radius, height, category="cone") -> Shape:
    return _shape(category, [cone(radius, height)])


def cup_shape(radius, height) -> Shape:
    """A mug: a cylinder with a box handle on its +x side."""
    handle = box(
        (0.25 * radius + 0.01, 0.2 * radius + 0.005, 0.5 * height),
        (radius + 0.125 * radius + 0.004, 0, 0.5 * height),
    )
    return _shape("cup", [cylinder(radius, height), handle])


def table_shape(width, depth, height, top=0.04, leg=0.05) -> Shape:
    """A table: a top slab on four square legs at the corners."""
    legs = [
        box(
            (leg, leg, height - top),
            (
                sx * (width / 2 - leg / 2 - 0.02),
                sy * (depth / 2 - leg / 2 - 0.02),
                (height - top) / 2,
            ),
        )
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]
    slab = box((width, depth, top), (0, 0, height - top / 2))
    return _shape("table", [slab] + legs, support=(height, width, depth))


def chair_shape(width, depth, seat_height, back_height, leg=0.04, seat=0.04) -> Shape:
    """A chair facing -y: seat, four legs and a backrest along its +y edge."""
    legs = [
        box(
            (leg, leg, seat_height - seat),
            (sx * (width / 2 - leg / 2), sy * (depth / 2 - leg / 2), (seat_height - seat) / 2),
        )
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]
    seat_mesh = box((width, depth, seat), (0, 0, seat_height - seat / 2))
    back = box((width, 0.04, back_height), (0, depth / 2 - 0.02, seat_height + back_height / 2))
    return _shape("chair", [seat_mesh, back] + legs)


def shelf_shape(width, depth, height, boards: int = 4, board=0.025) -> Shape:
    """An open shelf unit: two side panels, a back panel and `boards` horizontal boards."""
    sides = [
        box((board, depth, height), (sx * (width / 2 - board / 2), 0, height / 2)) for sx in (-1, 1)
    ]
    back = box((width - 2 * board, board, height), (0, depth / 2 - board / 2, height / 2))
    levels = [
        box(
            (width - 2 * board, depth - board, board),
            (0, -board / 2, board / 2 + i * (height - board) / (boards - 1)),
        )
        for i in range(boards)
    ]
    return _shape("shelf", sides + [back] + levels, support=(height, width, depth))


def lamp_shape(base_radius, height, shade_radius) -> Shape:
    """A floor or table lamp: a disc base, a thin pole (accent colour) and a closed shade."""
    base = cylinder(base_radius, 0.03 * height + 0.01)
    shade_h = 0.3 * height
    pole = cylinder(0.012 + 0.005 * height, height - 0.5 * shade_h)
    shade = frustum(shade_radius, 0.6 * shade_radius, shade_h, z0=height - shade_h, open_ends=False)
    return _shape("lamp", [base, shade], accent_parts=[pole])


# ----------------------------------------------------------------------------- packing


def pack(items, texture_size: int = 256, min_triangles: int = 256):
    """Meshes placed in the world -> padded `rasterizer.Triangles` and a texture stack.

    Args:
      items: `(mesh, world_from_mesh [4, 4], instance_id)` triples.
      texture_size: side of the square texture slots; textures are resized to fit.
      min_triangles: smallest triangle bucket.

    Returns:
      `(triangles, textures [M, S, S, 3] float32)`; `M` is a power of two (at least 1) so the
      compiled renderer is reused across scenes with similar texture counts.
    """
    from PIL import Image

    verts, attrs, inst, tex, images = [], [], [], [], []
    for mesh, world_from_mesh, instance_id in items:
        world_from_mesh = np.asarray(world_from_mesh, np.float64)
        placed = mesh.transformed(world_from_mesh)
        f = len(placed.faces)
        corner = np.zeros((f, 3, rasterizer.ATTR_DIM))
        corner[..., rasterizer.COLOUR] = placed.corner_colors()
        corner[..., rasterizer.NORMAL] = placed.corner_normals()
        corner[..., rasterizer.SPECULAR] = placed.specular
        index = -1
        if placed.texture is not None and placed.uv is not None:
            corner[..., rasterizer.UV] = placed.uv[placed.faces]
            index = len(images)
            image = Image.fromarray(np.asarray(placed.texture, np.uint8)).convert("RGB")
            images.append(
                np.asarray(image.resize((texture_size, texture_size), Image.Resampling.BILINEAR))
            )
        verts.append(placed.vertices[placed.faces])
        attrs.append(corner)
        inst.append(np.full(f, instance_id, np.int32))
        tex.append(np.full(f, index, np.int32))
    size = rasterizer.bucket_size(sum(len(v) for v in verts), min_triangles)
    triangles = rasterizer.pad_triangles(
        np.concatenate(verts),
        np.concatenate(attrs),
        np.concatenate(inst),
        np.concatenate(tex),
        size,
    )
    slots = 1
    while slots < len(images):
        slots *= 2
    stack = np.ones((slots, texture_size, texture_size, 3), np.float32)
    for i, image in enumerate(images):
        stack[i] = image.astype(np.float32) / 255.0
    return triangles, stack
