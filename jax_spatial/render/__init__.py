"""Triangle rendering: a jit-compiled rasterizer (`rasterizer`) and meshes to feed it (`meshes`)."""

from jax_spatial.render.meshes import Mesh, Shape, load_mesh, pack
from jax_spatial.render.rasterizer import Render, Triangles, render

__all__ = ["Mesh", "Render", "Shape", "Triangles", "load_mesh", "pack", "render"]
