"""The single-view relation pass: every pair and every family of a batch, compiled, at once.

All relations are decided in the view frame (x right, y forward, z up; `geometry.frames`), so
they do not change when the camera pitches or rolls. Per object we use the box centre `c`, the
half size of its view-axis-aligned bounding box `h = boxes.axis_half_extent(extent, rotation)`
and a few derived numbers; a pair `(i, j)` reads "i <relation> j". The full rules with worked
examples are in docs/relations.md; in short (margins are `RelationConfig` fields):

Position families. `value` is the signed centre difference along the family's axis, positive
when the first word applies. A pair is clear when all of these hold:

* separation: `|value| > max(abs_margin_m, frac_margin * (h_i + h_j))` on that axis;
* `left_right` (value `x_j - x_i`): the azimuths `atan2(x, y)` order the same way, at least
  `min_image_angle_deg` apart, so perspective does not show the other order in the image;
* `front_behind` (value `y_j - y_i`, smaller y = in front): the horizontal ranges
  `hypot(x, y)` order the same way (an object off to the side can have the smaller y and still
  be further from the viewer);
* `above_below` (value `z_i - z_j`): the upper box's bottom is no lower than the lower box's
  top minus `contact_tolerance_m` (stacked or floating over it, not standing beside it and not
  inside it), their floor-plan footprints overlap or lie within `max_horizontal_gap_m` on both
  view axes (over it, not merely higher somewhere else in the room), and the elevations
  `atan2(z, hypot(x, y))` order the same way, at least `min_image_angle_deg` apart, so the
  upper one also looks higher in the picture.

Size families. `value = log(s_i) - log(s_j)`, positive when i is the bigger/taller/wider:

* `bigger_smaller`: s = box volume; clear when `exp(|value|) >= volume_ratio`;
* `taller_shorter`: s = vertical extent `2 h_z`; clear when `exp(|value|) >= height_ratio` and
  `|s_i - s_j| >= height_diff_m`;
* `wider_thinner`: s = the box's horizontal extent across its own line of sight (the width of
  its shadow on the horizontal direction perpendicular to the ray from the camera to its
  centre, i.e. how wide it looks, in metres); clear when `exp(|value|) >= width_ratio` and
  `|s_i - s_j| >= width_diff_m`.

Boxes lifted from depth (`ObjectBatch.hidden_depth > 0`) may reach up to that far behind what
the camera saw: position margins grow by `lifted_centre_slack` of it per object, and in size
families the volume, height and width of a lifted box are lower bounds, so "i bigger than j"
must hold against j's upper bound (its box deepened along the line of sight by `hidden_depth`
and grown by `lifted_side_shrink`). Every family also needs both boxes complete
(`ObjectBatch.complete`: a box lifted from a cut-off or partly hidden view is too small and
off-centre). Box sides below `min_extent_m` count as `min_extent_m` in size families, which
keeps the logs
finite for flat annotations.

`pair` is `sign(value)` where clear, else 0; it is 0 on the diagonal and wherever i or j is
padding, and exactly antisymmetric (every rule is symmetric in the swap). `pair_value` is the
measured value for every valid pair (also unclear ones) and 0 elsewhere.

Existence (position families only; size families are 0, see docs/relations.md):
`exists[b, r, c, f, d]` is +1 when some valid object `o != r` of category c stands in relation
`(f, d)` to r clearly (`pair[o, r, f] == +1` for d == 0, `-1` for d == 1), -1 when there is
at least one such `o` and all of them stand clearly in the opposite relation, else 0. It is 0
for every `r` that is padding or not askable (`ObjectBatch.askable`); a "yes" needs an askable
witness `o`, a "no" every valid `o` (glimpses too).

References: `unique_ref` (the phrase names one valid object, glimpses included, and the object
is askable) and `relative`, a bit mask over `RELATIVE_KINDS` of the relative referring
expressions ("the leftmost car", "the second chair from the left", "the tallest shelf") that
single an askable object out among every valid object of its category, decided by the same
clear `pair` signs as the questions.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from jax_spatial.batching import ObjectBatch
from jax_spatial.geometry import boxes
from jax_spatial.relations.types import (
    FAMILIES,
    POSITION_FAMILIES,
    RELATIVE_KINDS,
    SingleViewRelations,
)

# Family index order, as in `FAMILIES`; the code below stacks values in this order.
_POSITION = tuple(FAMILIES.index(f) for f in POSITION_FAMILIES)
assert _POSITION == (0, 1, 2), "positions are stacked first"


@dataclasses.dataclass(frozen=True)
class RelationConfig:
    """Clarity margins of the single-view relations. Frozen, so it can be a static jit argument.

    Attributes:
      abs_margin_m: smallest centre separation, metres, for any position relation. 0.15 m sits
        above the centre noise of ScanNet/Scan2CAD and KITTI boxes (a few cm) plus the shift a
        1-2 degree gravity error puts on a room-sized scene, so a clear answer survives noise.
      frac_margin: the separation must also exceed this fraction of the two boxes' half
        extents summed along the axis. 0.5 means "more than the mean half size": two chairs
        side by side with a gap are clear, a lamp standing against a sofa is not, and big
        objects need proportionally more room, as a person judging by eye would.
      min_image_angle_deg: left/right and above/below also need the centres' azimuths
        (elevations) to order the same way and this far apart. One degree is about 1% of a
        60-90 degree field of view (~10 px at 640 px): closer than that, one object sits in the
        same image column (row) as the other and the picture does not show the order.
      contact_tolerance_m: "above" needs the upper box's bottom no lower than the lower box's
        top minus this. 0.1 m lets a cup standing on a table count (segmentation-derived boxes
        interpenetrate by a few cm, and a tilted gravity estimate raises a wide box's top),
        but not a cup on a far table against the backrest of a near chair that reaches higher.
      max_horizontal_gap_m: "above" also needs the two footprints on the floor plan (view
        x-y, axis-aligned) to overlap or be at most this far apart on both axes. 0.25 m keeps
        a picture on the wall just behind a sofa and a lamp hanging beside a shelf's edge,
        and rejects a cup on a table a metre behind the one asked about, which a person
        calls "higher" or "further back", not "above".
      lifted_side_shrink: a box lifted from depth (hidden_depth > 0) may be this fraction
        smaller than the object on every side: mask edges are trimmed as flying pixels and
        the extremes as outliers (`lift.image_only`), which on procedural scenes shrinks a
        ball's sides by up to ~25%. Its size upper bounds grow by this; 0.3 leaves margin.
      lifted_centre_slack: a lifted box's centre may be off by this fraction of its hidden
        depth (`ObjectBatch.hidden_depth`), added to position margins per object. Half would
        do for the view the box was lifted in; another view of the scene sees that error
        from the side, and tables and shelves also lose visible sides to trimming: measured
        on 210 procedural views (bench/lift_agreement.py), 0.5 left 1.2% of answers wrong.
      volume_ratio: bigger/smaller needs this volume ratio. 1.5 is ~14% per side: above the
        5-10% per-side annotation noise of box datasets, and below it people do not agree
        which of two objects is bigger.
      height_ratio, height_diff_m: taller/shorter needs both; 20% and 10 cm. The ratio keeps
        tall pairs honest (2.0 m vs 1.9 m is not clearly taller), the difference keeps small
        pairs honest (a 6 cm vs 4 cm object differ by 50% but within box noise).
      width_ratio, width_diff_m: wider/thinner, same reasoning as height.
      min_extent_m: box sides below this count as this in size families. 1 cm is below the
        precision of any box annotation; flooring keeps log ratios finite for flat boxes
        (posters, rugs) without claiming a precision the annotation does not have.
    """

    abs_margin_m: float = 0.15
    frac_margin: float = 0.5
    min_image_angle_deg: float = 1.0
    contact_tolerance_m: float = 0.1
    max_horizontal_gap_m: float = 0.25
    lifted_side_shrink: float = 0.3
    lifted_centre_slack: float = 1.0
    volume_ratio: float = 1.5
    height_ratio: float = 1.2
    height_diff_m: float = 0.1
    width_ratio: float = 1.2
    width_diff_m: float = 0.1
    min_extent_m: float = 0.01


def _pairwise_diff(a):
    """`[B, N, ...]` -> `[B, N, N, ...]` with `out[:, i, j] = a[:, i] - a[:, j]`."""
    return a[:, :, None] - a[:, None, :]


def _across_sight_width(centre, extent, rotation):
    """Full width of each box across its horizontal line of sight. -> `[..., ]` metres.

    The support width of the box along `p`, the horizontal unit vector perpendicular to the
    ray from the camera to the centre: `sum_k |p . R[:, k]| * extent_k`. A centre straight
    above or below the camera has no horizontal ray; view x is used there.
    """
    x, y = centre[..., 0], centre[..., 1]
    r = jnp.hypot(x, y)
    on_axis = r < 1e-6
    safe_r = jnp.where(on_axis, 1.0, r)
    px = jnp.where(on_axis, 1.0, y / safe_r)
    py = jnp.where(on_axis, 0.0, -x / safe_r)
    along_p = px[..., None] * rotation[..., 0, :] + py[..., None] * rotation[..., 1, :]
    return jnp.sum(jnp.abs(along_p) * extent, axis=-1)


def _position_signs(batch: ObjectBatch, config: RelationConfig):
    """Values `[B, N, N, 3]` float32 and clear signs `[B, N, N, 3]` int8 of position families."""
    centre = batch.centre.astype(jnp.float32)
    half = boxes.axis_half_extent(batch.extent.astype(jnp.float32), batch.rotation)
    x, y, z = centre[..., 0], centre[..., 1], centre[..., 2]
    hx, hy, hz = half[..., 0], half[..., 1], half[..., 2]
    horizontal = jnp.hypot(x, y)

    # Per-object coordinate whose difference i - j is positive when the first word applies:
    # left of (smaller x), above (larger z), in front of (smaller y).
    coord = jnp.stack([-x, z, -y], axis=-1)  # [B, N, 3]
    half_axis = jnp.stack([hx, hz, hy], axis=-1)
    # What the picture shows, ordered the same way: right-to-left azimuth, elevation, nearness.
    image = jnp.stack([-jnp.arctan2(x, y), jnp.arctan2(z, horizontal), -horizontal], axis=-1)
    angle = math.radians(config.min_image_angle_deg)
    image_gap = jnp.array([angle, angle, 0.0], jnp.float32)

    value = _pairwise_diff(coord)  # [B, N, N, 3]
    sum_half = half_axis[:, :, None] + half_axis[:, None, :]
    margin = jnp.maximum(config.abs_margin_m, config.frac_margin * sum_half)
    if batch.hidden_depth is not None:
        # A lifted box may reach further back than it shows: its centre moves by up to half
        # of that along the lifting view's ray, which another view of the scene sees from the
        # side; and the visible sides are trimmed too. The whole hidden depth is the slack.
        slack = config.lifted_centre_slack * batch.hidden_depth.astype(jnp.float32)
        margin = margin + (slack[:, :, None] + slack[:, None, :])[..., None]
    separated = jnp.abs(value) > margin
    image_diff = _pairwise_diff(image)
    positive = value > 0
    image_agrees = jnp.where(positive, image_diff > image_gap, image_diff < -image_gap)

    bottom, top = z - hz, z + hz
    tol = config.contact_tolerance_m
    i_over_j = bottom[:, :, None] >= top[:, None, :] - tol
    j_over_i = bottom[:, None, :] >= top[:, :, None] - tol
    stacked = jnp.where(positive[..., 1], i_over_j, j_over_i)
    # "Above" also needs one to be over the other: footprints overlapping, or nearly, on the
    # floor plan. A cup on a far table is higher than a near table but not above it.
    gap_x = jnp.abs(_pairwise_diff(x)) - (hx[:, :, None] + hx[:, None, :])
    gap_y = jnp.abs(_pairwise_diff(y)) - (hy[:, :, None] + hy[:, None, :])
    over = (gap_x <= config.max_horizontal_gap_m) & (gap_y <= config.max_horizontal_gap_m)
    stacked = stacked & over
    # Only above/below has a stacking rule; the other two families pass it.
    stacked = jnp.stack([jnp.ones_like(stacked), stacked, jnp.ones_like(stacked)], axis=-1)

    clear = separated & image_agrees & stacked
    if batch.complete is not None:
        # A box lifted from a cut-off or partly hidden view may sit far from the object.
        clear = clear & (batch.complete[:, :, None] & batch.complete[:, None, :])[..., None]
    sign = jnp.where(clear, jnp.where(positive, 1, -1), 0).astype(jnp.int8)
    return value, sign


def _along_sight_depth(centre, extent, rotation):
    """Full depth of each box along its horizontal line of sight. -> `[...]` metres."""
    x, y = centre[..., 0], centre[..., 1]
    r = jnp.hypot(x, y)
    on_axis = r < 1e-6
    safe_r = jnp.where(on_axis, 1.0, r)
    qx = jnp.where(on_axis, 0.0, x / safe_r)
    qy = jnp.where(on_axis, 1.0, y / safe_r)
    along_q = qx[..., None] * rotation[..., 0, :] + qy[..., None] * rotation[..., 1, :]
    return jnp.sum(jnp.abs(along_q) * extent, axis=-1)


def _size_signs(batch: ObjectBatch, config: RelationConfig):
    """Values (log ratios) `[B, N, N, 3]` float32 and clear signs `[B, N, N, 3]` int8."""
    extent = jnp.maximum(batch.extent.astype(jnp.float32), config.min_extent_m)
    half = boxes.axis_half_extent(extent, batch.rotation)
    height = 2.0 * half[..., 2]
    width = jnp.maximum(
        _across_sight_width(batch.centre.astype(jnp.float32), extent, batch.rotation),
        config.min_extent_m,
    )
    # Per-object logs, differenced pairwise: exactly antisymmetric, unlike log(s_i / s_j).
    log_size = jnp.stack(
        [jnp.sum(jnp.log(extent), axis=-1), jnp.log(height), jnp.log(width)], axis=-1
    )
    value = _pairwise_diff(log_size)  # [B, N, N, 3]
    min_log_ratio = jnp.log(
        jnp.array([config.volume_ratio, config.height_ratio, config.width_ratio], jnp.float32)
    )
    # Volume has no absolute margin: the ratio alone decides.
    linear = jnp.stack([jnp.zeros_like(height), height, width], axis=-1)
    min_diff = jnp.array([0.0, config.height_diff_m, config.width_diff_m], jnp.float32)
    if batch.hidden_depth is None:
        ratio_ok = jnp.abs(value) >= min_log_ratio
        diff_ok = jnp.abs(_pairwise_diff(linear)) >= min_diff
    else:
        # A lifted box may hide up to `hidden_depth` metres behind what it shows: its volume
        # and width are lower bounds. "i bigger than j" must hold against j's upper bound.
        hidden = batch.hidden_depth.astype(jnp.float32)
        sight = jnp.maximum(
            _along_sight_depth(batch.centre.astype(jnp.float32), extent, batch.rotation),
            config.min_extent_m,
        )
        # Lifted boxes (hidden_depth > 0) also lose up to `lifted_side_shrink` of every side to
        # the trimming of mask edges: their upper bounds grow by that on each side.
        lifted = (hidden > 0).astype(jnp.float32)
        grow = jnp.log1p(config.lifted_side_shrink) * lifted
        upper_log = log_size + jnp.stack(
            [jnp.log1p(hidden / sight) + 3.0 * grow, grow, jnp.log1p(hidden / width) + grow], -1
        )
        factor = 1.0 + config.lifted_side_shrink * lifted
        upper_linear = jnp.stack(
            [jnp.zeros_like(hidden), height * factor, (width + hidden) * factor], -1
        )
        i_wins = log_size[:, :, None] - upper_log[:, None, :]  # [B, N, N, 3]
        j_wins = log_size[:, None, :] - upper_log[:, :, None]
        i_diff = linear[:, :, None] - upper_linear[:, None, :]
        j_diff = linear[:, None, :] - upper_linear[:, :, None]
        positive = value > 0
        ratio_ok = jnp.where(positive, i_wins, j_wins) >= min_log_ratio
        diff_ok = jnp.where(positive, i_diff, j_diff) >= min_diff
    clear = ratio_ok & diff_ok
    if batch.complete is not None:
        # A box lifted from a cut-off or partly hidden view is too small: no size verdicts.
        clear = clear & (batch.complete[:, :, None] & batch.complete[:, None, :])[..., None]
    sign = jnp.where(clear, jnp.where(value > 0, 1, -1), 0).astype(jnp.int8)
    return value, sign


_WORD_BITS = 32  # uint32 words: 64-bit integers are off by default in JAX


def _pack_bits(flags, axis=1):
    """Packs bool flags along `axis` into uint32 bit masks; that axis shrinks from N to W.

    Bit `k` of word `w` is object `w * bits + k`, with `bits = min(N, 32)` and
    `W = ceil(N / bits)`; objects past N (padding of the last word) are 0.
    """
    N = flags.shape[axis]
    bits = min(N, _WORD_BITS)
    words = -(-N // bits)
    pad = [(0, 0)] * flags.ndim
    pad[axis] = (0, words * bits - N)
    flags = jnp.pad(flags, pad)
    shape = flags.shape[:axis] + (words, bits) + flags.shape[axis + 1 :]
    flags = flags.reshape(shape)
    weight = jnp.left_shift(jnp.uint32(1), jnp.arange(bits, dtype=jnp.uint32))
    weight = weight.reshape((bits,) + (1,) * (flags.ndim - axis - 2))
    # Distinct powers of two: their sum is their bitwise or.
    return jnp.sum(jnp.where(flags, weight, jnp.uint32(0)), axis=axis + 1, dtype=jnp.uint32)


def _position_exists(pos_pair, member, unique_ref, witness=None):
    """Existence answers of the position families. -> `[B, R, C, 3, 2]` int8.

    Args:
      pos_pair: `[B, O, R, 3]` int8 signs of "o <relation> r" for the position families.
      member: `[B, O, C]` bool, object o is a valid member of category c (a "no" needs every
        member other than r in the opposite relation).
      unique_ref: `[B, R]` bool, r may be asked about.
      witness: `[B, O, C]` bool, members that may answer "yes" (the askable ones; default
        `member`): a glimpse too small or hidden to ask about does not show a "yes".

    "Any o of c is +1" and "every o of c except r is -1" are set questions, answered on bit
    masks over o: per (r, f) the objects standing +1 / -1 to r, per c its members. That costs
    O(B N^2 F N/32) word operations, where counting through a one-hot matmul costs
    O(B N^3 F) multiply-adds and materialising `[B, O, R, C, F]` costs as much in memory.
    """
    N = member.shape[1]
    plus = _pack_bits(pos_pair == 1, axis=1)  # [B, W, R, 3]
    minus = _pack_bits(pos_pair == -1, axis=1)
    members = _pack_bits(member, axis=1)  # [B, W, C]
    witnesses = members if witness is None else _pack_bits(witness, axis=1)
    self_bit = _pack_bits(jnp.eye(N, dtype=bool), axis=0)  # [W, R]: the bit of r itself

    any_plus = any_minus = has_other = False
    all_plus = all_minus = True
    for w in range(members.shape[1]):  # words, not objects: 1..4 for the buckets
        p = plus[:, w, :, None, :]  # [B, R, 1, 3]
        m = minus[:, w, :, None, :]
        # Members of c other than r: [B, R, C, 1].
        others = (members[:, w, None, :] & ~self_bit[w, :, None])[..., None]
        seen = (witnesses[:, w, None, :] & ~self_bit[w, :, None])[..., None]
        any_plus = any_plus | ((p & seen) != 0)
        any_minus = any_minus | ((m & seen) != 0)
        all_plus = all_plus & ((p & others) == others)
        all_minus = all_minus & ((m & others) == others)
        has_other = has_other | (others != 0)
    # Direction 0 asks "is there a c <first word> r": yes when any member is +1 to r, no when
    # there are members and all of them are -1. Direction 1 mirrors it.
    ask0 = jnp.where(any_plus, 1, jnp.where(has_other & all_minus, -1, 0))
    ask1 = jnp.where(any_minus, 1, jnp.where(has_other & all_plus, -1, 0))
    exists = jnp.stack([ask0, ask1], axis=-1)  # [B, R, C, 3, 2]
    return jnp.where(unique_ref[:, :, None, None, None], exists, 0).astype(jnp.int8)


def _relative_kinds(pair, valid, askable, category, allowed):
    """Bit mask `[B, N]` int32 over `RELATIVE_KINDS` of the expressions naming each object.

    Args:
      pair: `[B, N, N, F]` int8 clear signs (0 on padding and the diagonal).
      valid, askable: `[B, N]` bool.
      category: `[B, N]` int32 frame-local category ids.
      allowed: `[B, N]` int32 bit mask of the kinds the data can support
        (`ObjectBatch.relative_allowed`).

    Kind (family f, sign s, rank k) holds for o when the other valid members m of its category
    number at least k, every one of them is clear to o in f, and exactly k - 1 of them stand
    on o's `s` side (`pair[o, m, f] == -s`: "m is left of o" for s = +1).
    """
    N = valid.shape[1]
    eye = jnp.eye(N, dtype=bool)
    same = (
        valid[:, None, :] & (category[:, :, None] == category[:, None, :]) & ~eye[None]
    )  # [B, o, m]
    n_others = jnp.sum(same, axis=-1, dtype=jnp.int32)
    ok_obj = valid & askable
    bits = jnp.zeros(valid.shape, jnp.int32)
    for k, (_, family, sign, rank) in enumerate(RELATIVE_KINDS):
        sign_f = pair[..., FAMILIES.index(family)]  # [B, o, m]
        toward = jnp.sum(same & (sign_f == -sign), axis=-1, dtype=jnp.int32)
        away = jnp.sum(same & (sign_f == sign), axis=-1, dtype=jnp.int32)
        holds = ok_obj & (n_others >= rank) & (toward == rank - 1) & (toward + away == n_others)
        bits = bits | (holds.astype(jnp.int32) << k)
    return bits & allowed


def _facts(batch: ObjectBatch, config: RelationConfig):
    """Every fact, with existence still compact: `exists_pos` `[B, R, C, 3, 2]`."""
    valid = batch.valid
    askable = valid if batch.askable is None else batch.askable & valid
    allowed = (
        jnp.full(valid.shape, (1 << len(RELATIVE_KINDS)) - 1, jnp.int32)
        if batch.relative_allowed is None
        else batch.relative_allowed
    )
    N = valid.shape[1]
    eye = jnp.eye(N, dtype=bool)
    pair_ok = valid[:, :, None] & valid[:, None, :] & ~eye  # [B, N, N]

    pos_value, pos_sign = _position_signs(batch, config)
    size_value, size_sign = _size_signs(batch, config)
    pair = jnp.where(pair_ok[..., None], jnp.concatenate([pos_sign, size_sign], -1), 0)
    pair = pair.astype(jnp.int8)
    pair_value = jnp.where(pair_ok[..., None], jnp.concatenate([pos_value, size_value], -1), 0.0)

    # Unique reference: the phrase id occurs once among the frame's valid objects; -1 marks a
    # bare category name other objects share (see `FrameObservation.ambiguous_reference`).
    # Glimpses are valid, so a phrase one of them shares is not unique.
    same_ref = (batch.reference[:, :, None] == batch.reference[:, None, :]) & valid[:, None, :]
    unique_ref = askable & (batch.reference >= 0) & (jnp.sum(same_ref, axis=-1) == 1)

    # member[b, o, c]: object o is a valid object of frame-local category c (C == N).
    member = valid[:, :, None] & (batch.category[:, :, None] == jnp.arange(N)[None, None, :])
    counts = jnp.sum(member, axis=1, dtype=jnp.int32)  # [B, C]
    count_ok = (counts > 0) & batch.exhaustive[:, None]

    exists_pos = _position_exists(
        pair[..., : len(_POSITION)], member, askable, member & askable[:, :, None]
    )
    relative = _relative_kinds(pair, valid, askable, batch.category, allowed)
    return pair, pair_value.astype(jnp.float32), unique_ref, exists_pos, counts, count_ok, relative


def _widen_exists(exists_pos):
    """`[B, R, C, 3, 2]` -> `[B, R, C, 6, 2]`: size families ask no existence questions."""
    B, R, C = exists_pos.shape[:3]
    n_size = len(FAMILIES) - len(_POSITION)
    # Appended on the flat (family, direction) axis: a plain strided copy.
    return jnp.concatenate(
        [exists_pos.reshape(B, R, C, -1), jnp.zeros((B, R, C, 2 * n_size), jnp.int8)], axis=-1
    ).reshape(B, R, C, len(FAMILIES), 2)


def compute_single_view_relations(
    batch: ObjectBatch, config: RelationConfig = RelationConfig()
) -> SingleViewRelations:
    """All single-view facts of a padded batch, traced as one function (jit it or not).

    Args:
      batch: `[B, N]` objects in view space.
      config: clarity margins.

    Returns:
      `SingleViewRelations` with `pair`/`pair_value` `[B, N, N, 6]`, `unique_ref` `[B, N]`,
      `exists` `[B, N, C=N, 6, 2]`, `counts`/`count_ok` `[B, C=N]`, `relative` `[B, N]`.
    """
    pair, pair_value, unique_ref, exists_pos, counts, count_ok, relative = _facts(batch, config)
    return SingleViewRelations(
        pair=pair,
        pair_value=pair_value,
        unique_ref=unique_ref,
        exists=_widen_exists(exists_pos),
        counts=counts,
        count_ok=count_ok,
        relative=relative,
    )


_facts_jit = jax.jit(_facts, static_argnames=("config",))
_widen_exists_jit = jax.jit(_widen_exists)


def single_view_relations(
    batch: ObjectBatch, config: RelationConfig = RelationConfig()
) -> SingleViewRelations:
    """All single-view facts of a padded batch, compiled; `config` is static (hashable), so
    each distinct config compiles once per batch shape.

    The same result as `compute_single_view_relations`, run as two compiled stages: the facts,
    then widening `exists` to the six-family layout. Inside one program XLA (CPU) fuses the
    existence logic into that widening copy and evaluates it per output byte, which costs
    about twice the whole existence pass; a second dispatch is far cheaper. Under an outer
    `jax.jit` the two stages simply fuse again.

    Args:
      batch: `[B, N]` objects in view space.
      config: clarity margins.

    Returns:
      `SingleViewRelations`: `pair` int8 / `pair_value` float32 `[B, N, N, 6]`, `unique_ref`
      bool `[B, N]`, `exists` int8 `[B, N, N, 6, 2]`, `counts` int32 / `count_ok` bool `[B, N]`.
    """
    pair, pair_value, unique_ref, exists_pos, counts, count_ok, relative = _facts_jit(batch, config)
    return SingleViewRelations(
        pair=pair,
        pair_value=pair_value,
        unique_ref=unique_ref,
        exists=_widen_exists_jit(exists_pos),
        counts=counts,
        count_ok=count_ok,
        relative=relative,
    )


__all__ = [
    "RelationConfig",
    "compute_single_view_relations",
    "single_view_relations",
]
