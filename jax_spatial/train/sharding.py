"""Device mesh `(data, fsdp, model)` and shardings from NNX partitioning metadata.

    mesh = make_mesh(data=-1, fsdp=1)            # -1: every device not used by the others
    mesh = make_mesh(fsdp=2, model=2)            # + tensor parallelism over `model`
    model = shard_tree(model, mesh)              # params per their `fsdp` annotations
    batch_sharding(mesh)                         # leading (batch) axis over data and fsdp

Parameters are sharded only along `fsdp` (their metadata names it on a width dimension);
`data` replicates them. The batch axis is split over both axes, since fully sharded data
parallelism is data parallelism too. On one CPU device this is a 1x1 mesh and every sharding
is trivial, so the same code runs everywhere.

The `model` axis (size 1 unless asked for) is tensor parallelism: parameters whose metadata
names it (gemma3's heads, MLP width and vocabulary) are split over it, and the batch is
replicated along it (every `model` shard of a data shard sees the same examples).
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from jax_spatial.errors import UserError

AXES = ("data", "fsdp")  # the batch axes
MODEL = "model"
MESH_AXES = (*AXES, MODEL)


def make_mesh(data: int = -1, fsdp: int = 1, devices=None, model: int = 1) -> jax.sharding.Mesh:
    devices = list(devices if devices is not None else jax.devices())
    n = len(devices)
    if fsdp < 1 or model < 1 or (data != -1 and data < 1):
        raise UserError(f"mesh sizes must be positive (data={data}, fsdp={fsdp}, model={model})")
    if data == -1:
        if n % (fsdp * model):
            raise UserError(f"{n} devices do not split into fsdp={fsdp} x model={model}")
        data = n // (fsdp * model)
    if data * fsdp * model != n:
        raise UserError(
            f"mesh data={data} x fsdp={fsdp} x model={model} needs {data * fsdp * model} "
            f"devices, found {n}"
        )
    return jax.make_mesh(
        (data, fsdp, model),
        MESH_AXES,
        axis_types=(jax.sharding.AxisType.Auto,) * 3,
        devices=devices,
    )


def batch_sharding(mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(AXES))


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def _spec_for(mesh, spec: PartitionSpec, shape) -> PartitionSpec:
    # A dimension that does not divide by its axis size stays replicated (small biases).
    out = []
    for dim, axis in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec)), strict=False):
        size = (
            int(np.prod([mesh.shape[a] for a in ((axis,) if isinstance(axis, str) else axis)]))
            if axis
            else 1
        )
        out.append(axis if axis and dim % size == 0 else None)
    return PartitionSpec(*out)


def state_shardings(mesh, state):
    """`NamedSharding`s for an `nnx.State` from its partitioning metadata."""
    specs = nnx.get_partition_spec(state)
    return jax.tree.map(
        lambda spec, value: NamedSharding(mesh, _spec_for(mesh, spec, np.shape(value))),
        specs,
        state,
        is_leaf=lambda x: isinstance(x, PartitionSpec),
    )


def shard_tree(node, mesh):
    """Places an NNX module or optimizer's state on `mesh` per its metadata; returns it."""
    state = nnx.state(node)
    nnx.update(node, jax.device_put(state, state_shardings(mesh, state)))
    return node


__all__ = [
    "AXES",
    "MESH_AXES",
    "MODEL",
    "batch_sharding",
    "make_mesh",
    "replicated",
    "shard_tree",
    "state_shardings",
]
