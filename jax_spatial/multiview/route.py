"""Route planning, VSI-Bench style: "go forward until the <object>" legs and turns between them,
planned on a free-space grid of the room and checked by replaying the instructions.

VSI-Bench's route questions read: "You are a robot beginning at the <A> facing the <B>. You
want to navigate to the <C>. You will perform the following actions: 1. Go forward until
the <L1>. 2. [turn left/right/back] 3. Go forward until the <L2> ..." Here the instructions
are executed, not only written, by `replay`, with these semantics:

* **Start** (`start_pose`): beside A on B's side (the free cell within `arrive_m` of A's
  footprint nearest to B), facing B's centre on the floor plane.
* **Turns**: `turn_left` / `turn_right` / `turn_back` rotate the heading by +90 / -90 / 180
  degrees (anticlockwise seen from above is left).
* **Go forward until L**: L's centre must lie ahead, less than 45 degrees either side of the
  heading (a turn is needed otherwise); the walker then goes straight towards L's centre and
  stops where it first comes within `arrive_m` of L's footprint. The leg fails if any cell
  the straight segment passes through is occupied. The heading becomes the walk's direction.
* **Success**: after the last instruction the walker is within `goal_radius_m` of the goal's
  footprint, and no leg failed.

The grid (`free_space_grid`) marks a cell free when its centre lies inside the room polygon
and at least `robot_radius_m` plus half a cell diagonal from every wall and object footprint,
so every point of a free cell keeps the robot's radius clear. The planner (`plan_route`)
first checks the goal is reachable at all on the 8-connected grid (Dijkstra from the goal
region, no corner cutting) and returns None when it is not; it then searches landmark legs
breadth-first (fewest legs first, then the shortest walk) with the same walk as `replay`,
keeping at each depth the states nearest the goal by grid distance (`beam`). Each leg's turn
must be clear: the landmark's bearing at least `turn_margin_deg` from the 45 and 135 degree
sector boundaries, so "turn left" cannot be mistaken for "go forward" or "turn back". A wrong
turn word therefore always fails replay: it leaves the landmark at least 45 + margin degrees
off the heading.
"""

from __future__ import annotations

import dataclasses
import heapq
import math

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from jax_spatial.multiview.room import points_in_polygon

TURNS = {"turn_left": 90.0, "turn_right": -90.0, "turn_back": 180.0}
FORWARD = "forward"
# Half-width of the forward sector: with 90-degree nominal turns, four sectors of 90 degrees.
_FORWARD_HALF_DEG = 45.0


@dataclasses.dataclass(frozen=True)
class RouteConfig:
    """Grid and planner settings.

    Attributes:
      resolution_m: grid cell side. 0.1 m: well below a person's or robot's width, so
        passages of a room survive rasterising; a 6 m x 5 m room is 3,000 cells.
      robot_radius_m: clearance the walker keeps from walls and objects. 0.25 m, half a
        person's shoulder width (and a small robot's radius).
      arrive_m: "go forward until L" stops this far from L's footprint. 0.5 m is arm's
        length, "at" the object; it must exceed the robot radius plus a cell diagonal so that
        the stop lies in free space (checked).
      goal_radius_m: replay succeeds within this of the goal's footprint. 0.6 m: at the goal,
        with room for the arrival distance (must be at least `arrive_m`).
      turn_margin_deg: a planned leg's landmark bearing keeps this from the sector boundaries
        (45 and 135 degrees). 10 degrees, so every turn word is clearly the right one.
      max_legs: most "go forward" legs in a route. VSI-Bench routes have two to five
        instructions with up to three turns; 4 legs covers them.
      beam: states kept per depth of the leg search, nearest the goal first.
    """

    resolution_m: float = 0.1
    robot_radius_m: float = 0.25
    arrive_m: float = 0.5
    goal_radius_m: float = 0.6
    turn_margin_deg: float = 10.0
    max_legs: int = 4
    beam: int = 64

    def __post_init__(self):
        half_diag = self.resolution_m * math.sqrt(0.5)
        if self.arrive_m <= self.robot_radius_m + 2 * half_diag:
            raise ValueError(
                f"arrive_m {self.arrive_m} must exceed robot_radius_m + a cell diagonal "
                f"({self.robot_radius_m + 2 * half_diag:.3f}), or a stop may be in an occupied cell"
            )
        if self.goal_radius_m < self.arrive_m:
            raise ValueError("goal_radius_m must be at least arrive_m")


@dataclasses.dataclass(frozen=True)
class Instruction:
    """One step: `action` is "forward" (with `landmark`, an object index) or a key of TURNS."""

    action: str
    landmark: int | None = None

    def text(self, names) -> str:
        if self.action == FORWARD:
            return f"Go forward until the {names[self.landmark]}."
        return f"Turn {self.action.removeprefix('turn_')}."


# --- geometry on the floor plane ------------------------------------------------------------


def box_footprints(centre, extent, rotation) -> np.ndarray:
    """Floor-plan footprints of boxes: the convex hull of each box's corners seen from above.

    Args:
      centre, extent: `[n, 3]`; rotation: `[n, 3, 3]` world_from_box (z up).

    Returns:
      `[n, 8, 2]` convex polygons, anticlockwise, padded by repeating the last vertex (a
      yawed box has 4 hull vertices, a tilted one up to 6).
    """
    centre = np.asarray(centre, np.float64).reshape(-1, 3)
    extent = np.asarray(extent, np.float64).reshape(-1, 3)
    rotation = np.asarray(rotation, np.float64).reshape(-1, 3, 3)
    signs = np.array([[(k >> 2) & 1, (k >> 1) & 1, k & 1] for k in range(8)], float) * 2 - 1
    out = np.zeros((len(centre), 8, 2))
    for o in range(len(centre)):
        corners = centre[o] + (signs * (0.5 * extent[o])) @ rotation[o].T
        hull = _convex_hull(corners[:, :2])
        out[o, : len(hull)] = hull
        out[o, len(hull) :] = hull[-1]
    return out


def _convex_hull(points) -> np.ndarray:
    """Andrew's monotone chain; anticlockwise, no repeated or collinear vertices."""
    pts = sorted(set(map(tuple, np.round(points, 12))))
    if len(pts) <= 2:
        return np.array(pts if pts else [(0.0, 0.0)])

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    upper: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def _segment_distance(points, a, b):
    """`[M, 2]` points to `[S, 2]`-`[S, 2]` segments -> `[M, S]` metres."""
    d = b - a
    length2 = np.maximum(np.sum(d * d, -1), 1e-24)
    t = np.clip(np.einsum("msk,sk->ms", points[:, None] - a[None], d) / length2, 0.0, 1.0)
    return np.linalg.norm(points[:, None] - (a[None] + t[..., None] * d[None]), axis=-1)


def polygon_distance(points, polygon) -> np.ndarray:
    """Distance from `[..., 2]` points to a convex polygon `[K, 2]` (0 inside). -> `[...]`."""
    shape = np.shape(points)[:-1]
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    a = np.asarray(polygon, np.float64)
    b = np.roll(a, -1, axis=0)
    edge = _segment_distance(pts, a, b).min(axis=1)
    e = b - a
    rel = pts[:, None, :] - a[None]
    cross = e[None, :, 0] * rel[..., 1] - e[None, :, 1] * rel[..., 0]
    inside = np.all(cross >= 0, axis=1) | np.all(cross <= 0, axis=1)
    return np.where(inside, 0.0, edge).reshape(shape)


def wall_distance(points, polygon) -> np.ndarray:
    """Distance from `[..., 2]` points to the nearest edge of a room polygon. -> `[...]`."""
    shape = np.shape(points)[:-1]
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    a = np.asarray(polygon, np.float64)
    return _segment_distance(pts, a, np.roll(a, -1, 0)).min(1).reshape(shape)


def _ray_entry(p, u, polygon, radius) -> float:
    """First `t >= 0` with `dist(p + t u, polygon) <= radius` (u a unit vector), inf if none.

    The region within `radius` of a convex polygon is bounded by its edges pushed out by
    `radius` and circles around its vertices; the ray's first hit on any of those pieces is
    the entry. Edges pushed inwards lie inside the region, so both sides can be tried
    without knowing the polygon's orientation.
    """
    v = np.asarray(polygon, np.float64)
    hits = [np.inf]
    # Vertex circles: |p + t u - v|^2 = r^2.
    w = v - p
    b = w @ u
    disc = b * b - (np.sum(w * w, -1) - radius * radius)
    ok = disc >= 0
    root = b[ok] - np.sqrt(disc[ok])
    hits.extend(root[root >= 0])
    # Offset edges.
    a, c = v, np.roll(v, -1, axis=0)
    e = c - a
    length = np.linalg.norm(e, axis=-1)
    good = length > 1e-12
    a, e, length = a[good], e[good], length[good]
    normal = np.stack([e[:, 1], -e[:, 0]], -1) / length[:, None]
    for sign in (1.0, -1.0):
        a0 = a + sign * radius * normal
        # p + t u = a0 + s e  ->  [u, -e] [t, s]^T = a0 - p
        det = -u[0] * e[:, 1] + u[1] * e[:, 0]
        par = np.abs(det) < 1e-12
        safe = np.where(par, 1.0, det)
        r = a0 - p
        t = (-r[:, 0] * e[:, 1] + r[:, 1] * e[:, 0]) / safe
        s = (u[0] * r[:, 1] - u[1] * r[:, 0]) / safe
        valid = ~par & (t >= 0) & (s >= -1e-12) & (s <= 1 + 1e-12)
        hits.extend(t[valid])
    return float(min(hits))


# --- the free-space grid ----------------------------------------------------------------------


@dataclasses.dataclass
class FreeSpaceGrid:
    """Occupancy of a room's floor.

    Attributes:
      origin: `[2]` world xy of the lower-left corner of cell `[0, 0]`.
      resolution: cell side, metres.
      free: `[ny, nx]` bool (row = y index, column = x index).
    """

    origin: np.ndarray
    resolution: float
    free: np.ndarray

    def cell_of(self, xy) -> tuple[int, int]:
        """`(row, col)` of the cell holding a point (possibly outside the grid)."""
        x, y = (np.asarray(xy, np.float64) - self.origin) / self.resolution
        return int(math.floor(y)), int(math.floor(x))

    def is_free_cell(self, row: int, col: int) -> bool:
        ny, nx = self.free.shape
        return 0 <= row < ny and 0 <= col < nx and bool(self.free[row, col])

    def centre_of(self, row: int, col: int) -> np.ndarray:
        return self.origin + self.resolution * (np.array([col, row], np.float64) + 0.5)

    def centres(self) -> np.ndarray:
        """`[ny, nx, 2]` world xy of every cell centre."""
        ny, nx = self.free.shape
        xs = self.origin[0] + self.resolution * (np.arange(nx) + 0.5)
        ys = self.origin[1] + self.resolution * (np.arange(ny) + 0.5)
        return np.stack(np.meshgrid(xs, ys), axis=-1)

    def segment_free(self, p, q) -> bool:
        """Every cell the segment p-q passes through is free (Amanatides-Woo traversal; where
        the segment crosses a cell corner exactly, both cells beside the corner must be free)."""
        p = (np.asarray(p, np.float64) - self.origin) / self.resolution
        q = (np.asarray(q, np.float64) - self.origin) / self.resolution
        col, row = int(math.floor(p[0])), int(math.floor(p[1]))
        end_col, end_row = int(math.floor(q[0])), int(math.floor(q[1]))
        if not self.is_free_cell(row, col):
            return False
        d = q - p
        step_c = 1 if d[0] > 0 else -1
        step_r = 1 if d[1] > 0 else -1
        inf = math.inf
        t_max_c = ((col + (step_c > 0)) - p[0]) / d[0] if d[0] != 0 else inf
        t_max_r = ((row + (step_r > 0)) - p[1]) / d[1] if d[1] != 0 else inf
        t_delta_c = abs(1.0 / d[0]) if d[0] != 0 else inf
        t_delta_r = abs(1.0 / d[1]) if d[1] != 0 else inf
        while (col, row) != (end_col, end_row):
            if min(t_max_c, t_max_r) > 1.0:
                break  # rounding: q's cell reached within the segment's length
            if abs(t_max_c - t_max_r) < 1e-12:
                if not (
                    self.is_free_cell(row, col + step_c) and self.is_free_cell(row + step_r, col)
                ):
                    return False
                col, row = col + step_c, row + step_r
                t_max_c += t_delta_c
                t_max_r += t_delta_r
            elif t_max_c < t_max_r:
                col += step_c
                t_max_c += t_delta_c
            else:
                row += step_r
                t_max_r += t_delta_r
            if not self.is_free_cell(row, col):
                return False
        return self.is_free_cell(end_row, end_col)


def free_space_grid(room_polygon, footprints, config: RouteConfig = RouteConfig()) -> FreeSpaceGrid:
    """Rasterises a room's free floor (module doc).

    Args:
      room_polygon: `[P, 2]` floor polygon, world metres, either orientation.
      footprints: `[n, K, 2]` convex object footprints (`box_footprints`), every object an
        obstacle whatever its height: a table is walked around, not under.
      config: resolution and robot radius.
    """
    poly = np.asarray(room_polygon, np.float64).reshape(-1, 2)
    res = config.resolution_m
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    nx = max(1, int(math.ceil((hi[0] - lo[0]) / res)))
    ny = max(1, int(math.ceil((hi[1] - lo[1]) / res)))
    grid = FreeSpaceGrid(lo.copy(), float(res), np.zeros((ny, nx), bool))
    centres = grid.centres().reshape(-1, 2)
    clearance = config.robot_radius_m + res * math.sqrt(0.5)
    free = points_in_polygon(centres, poly) & (wall_distance(centres, poly) >= clearance)
    for fp in np.asarray(footprints, np.float64):
        free &= polygon_distance(centres, fp) >= clearance
    grid.free = free.reshape(ny, nx)
    return grid


def grid_distance_to(grid: FreeSpaceGrid, goal_cells: np.ndarray) -> np.ndarray:
    """Shortest 8-connected grid distance, metres, from every cell to the nearest goal cell.

    Dijkstra over free cells; a diagonal step needs both cells beside it free (no cutting
    corners past an obstacle). -> `[ny, nx]` float, inf where unreachable or occupied.
    """
    ny, nx = grid.free.shape
    idx = np.arange(ny * nx).reshape(ny, nx)
    rows, cols, costs = [], [], []
    free = grid.free
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        r0, r1 = max(0, -dr), ny - max(0, dr)
        c0, c1 = max(0, -dc), nx - max(0, dc)
        a = free[r0:r1, c0:c1]
        b = free[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
        ok = a & b
        if dr and dc:
            ok &= free[r0 + dr : r1 + dr, c0:c1] & free[r0:r1, c0 + dc : c1 + dc]
        rows.append(idx[r0:r1, c0:c1][ok])
        cols.append(idx[r0 + dr : r1 + dr, c0 + dc : c1 + dc][ok])
        costs.append(np.full(int(ok.sum()), math.hypot(dr, dc) * grid.resolution))
    graph = coo_matrix(
        (np.concatenate(costs), (np.concatenate(rows), np.concatenate(cols))), shape=(ny * nx,) * 2
    ).tocsr()
    goals = np.flatnonzero(goal_cells.reshape(-1) & free.reshape(-1))
    if not len(goals):
        return np.full((ny, nx), np.inf)
    dist = dijkstra(graph, directed=False, indices=goals, min_only=True)
    return np.where(free.reshape(-1), dist, np.inf).reshape(ny, nx)


# --- scene, start, legs, replay ------------------------------------------------------------


@dataclasses.dataclass
class RouteScene:
    """What routes are planned in: the grid, and each object's floor centre and footprint.

    Attributes:
      grid: the free-space grid.
      centre_xy: `[n, 2]` object centres on the floor plane.
      footprints: `[n, K, 2]` convex footprints.
    """

    grid: FreeSpaceGrid
    centre_xy: np.ndarray
    footprints: np.ndarray

    @classmethod
    def from_boxes(
        cls, room_polygon, centre, extent, rotation, config: RouteConfig = RouteConfig()
    ):
        """From world boxes (`[n, 3]`, `[n, 3]`, `[n, 3, 3]`, z up) and the room polygon."""
        footprints = box_footprints(centre, extent, rotation)
        grid = free_space_grid(room_polygon, footprints, config)
        return cls(grid, np.asarray(centre, np.float64)[:, :2].copy(), footprints)

    @classmethod
    def from_footprints(cls, room_polygon, footprints, config: RouteConfig = RouteConfig()):
        """From `[n, K, 2]` convex footprints (e.g. a clip's); centres are their vertex means
        (the box centre for a rectangle)."""
        fps = np.asarray(footprints, np.float64)
        return cls(free_space_grid(room_polygon, fps, config), fps.mean(axis=1), fps)

    @property
    def num_objects(self) -> int:
        return len(self.centre_xy)


def _rotate(v, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _signed_angle(h, u) -> float:
    """Degrees from heading h to direction u, (-180, 180], anticlockwise (left) positive."""
    return math.degrees(math.atan2(h[0] * u[1] - h[1] * u[0], h[0] * u[0] + h[1] * u[1]))


def start_pose(
    scene: RouteScene, start_object: int, face_object: int, config: RouteConfig = RouteConfig()
):
    """Where a route begins: "at A, facing B".

    The position is the centre of the free cell within `arrive_m` of A's footprint (where a
    leg towards A would stop) that is nearest to B's centre, i.e. beside A on B's side; when
    no free cell is that close, the free cell nearest to A's footprint, if within a metre.
    The heading points at B's centre.

    Returns:
      `(position [2], unit heading [2])`, or None (A enclosed, or B's centre on the start).
    """
    grid = scene.grid
    centres = grid.centres().reshape(-1, 2)[grid.free.reshape(-1)]
    if not len(centres):
        return None
    gap = polygon_distance(centres, scene.footprints[start_object])
    near = gap <= config.arrive_m
    if near.any():
        to_face = np.linalg.norm(centres - scene.centre_xy[face_object], axis=-1)
        position = centres[near][int(np.argmin(to_face[near]))]
    elif gap.min() <= 1.0:
        position = centres[int(np.argmin(gap))]
    else:
        return None
    facing = scene.centre_xy[face_object] - position
    norm = float(np.linalg.norm(facing))
    if norm < 1e-6:
        return None
    return position, facing / norm


def walk(scene: RouteScene, position, landmark: int, config: RouteConfig):
    """Go straight towards `landmark`'s centre until within `arrive_m` of its footprint.

    Returns `(stop [2], direction [2])`, or None when the segment enters an occupied cell.
    A walker already within `arrive_m` stays put.
    """
    target = scene.centre_xy[landmark] - position
    norm = float(np.linalg.norm(target))
    if norm < 1e-9:
        return None
    u = target / norm
    if (
        polygon_distance(np.asarray(position)[None], scene.footprints[landmark])[0]
        <= config.arrive_m
    ):
        return np.asarray(position, np.float64), u
    t = _ray_entry(np.asarray(position, np.float64), u, scene.footprints[landmark], config.arrive_m)
    if not math.isfinite(t):
        return None
    stop = position + t * u
    if not scene.grid.segment_free(position, stop):
        return None
    return stop, u


@dataclasses.dataclass
class ReplayResult:
    """Outcome of executing instructions: `success`, the `reason` for a failure, and the
    positions after each forward leg (`waypoints`, starting with the start)."""

    success: bool
    reason: str
    waypoints: list


def replay(
    scene: RouteScene,
    start_object: int,
    face_object: int,
    goal_object: int,
    instructions,
    config: RouteConfig = RouteConfig(),
) -> ReplayResult:
    """Executes an instruction sequence from the start pose (module doc for the semantics).

    It uses only the scene, the three objects and the instructions, none of the planner's
    state, so it checks any route, planned or written by hand.
    """
    pose = start_pose(scene, start_object, face_object, config)
    if pose is None:
        return ReplayResult(False, "no start pose", [])
    position, heading = pose
    waypoints = [position]
    for k, ins in enumerate(instructions):
        if ins.action in TURNS:
            heading = _rotate(heading, TURNS[ins.action])
            continue
        if ins.action != FORWARD or ins.landmark is None:
            return ReplayResult(False, f"step {k}: unknown action {ins.action!r}", waypoints)
        if not 0 <= ins.landmark < scene.num_objects:
            return ReplayResult(False, f"step {k}: no object {ins.landmark}", waypoints)
        bearing = scene.centre_xy[ins.landmark] - position
        if np.linalg.norm(bearing) < 1e-9:
            return ReplayResult(False, f"step {k}: standing on the landmark", waypoints)
        if abs(_signed_angle(heading, bearing)) >= _FORWARD_HALF_DEG:
            return ReplayResult(False, f"step {k}: object {ins.landmark} is not ahead", waypoints)
        leg = walk(scene, position, ins.landmark, config)
        if leg is None:
            return ReplayResult(
                False, f"step {k}: the way to object {ins.landmark} is blocked", waypoints
            )
        position, heading = leg
        waypoints.append(position)
    gap = float(polygon_distance(position[None], scene.footprints[goal_object])[0])
    if gap > config.goal_radius_m:
        return ReplayResult(False, f"ended {gap:.2f} m from the goal", waypoints)
    return ReplayResult(True, "", waypoints)


def _turn_for(angle: float, margin: float) -> str | None:
    """The turn that brings a bearing `angle` degrees off the heading clearly ahead:
    "" for none, a TURNS key, or None when the bearing is near a sector boundary."""
    a = abs(angle)
    if a <= _FORWARD_HALF_DEG - margin:
        return ""
    if _FORWARD_HALF_DEG + margin <= a <= 180.0 - _FORWARD_HALF_DEG - margin:
        return "turn_left" if angle > 0 else "turn_right"
    if a >= 180.0 - _FORWARD_HALF_DEG + margin:
        return "turn_back"
    return None


@dataclasses.dataclass
class Route:
    """A planned route.

    Attributes:
      instructions: the steps, turns and forward legs.
      waypoints: `[legs + 1, 2]` start and the stop of each leg.
      length_m: walked length.
      grid_distance_m: 8-connected grid distance from the start to the goal region.
    """

    instructions: list[Instruction]
    waypoints: np.ndarray
    length_m: float
    grid_distance_m: float

    @property
    def landmarks(self) -> list[int]:
        return [ins.landmark for ins in self.instructions if ins.action == FORWARD]

    def text(self, names) -> list[str]:
        return [ins.text(names) for ins in self.instructions]


def plan_route(
    scene: RouteScene,
    start_object: int,
    face_object: int,
    goal_object: int,
    landmarks=None,
    config: RouteConfig = RouteConfig(),
) -> Route | None:
    """Plans the route with the fewest legs (then shortest walk), or None (module doc).

    Args:
      scene: grid and objects.
      start_object, face_object, goal_object: object indices (A, B, C).
      landmarks: `[n]` bool objects a leg may head for (e.g. the uniquely named ones); the
        goal always may. Default: every object.
      config: settings.

    Returns:
      A `Route` whose `replay` succeeds, or None when the goal is unreachable on the grid, the
      start has no pose or is already at the goal, or no route of at most `max_legs` clear
      legs was found.
    """
    n = scene.num_objects
    allowed = np.ones(n, bool) if landmarks is None else np.asarray(landmarks, bool).copy()
    allowed[goal_object] = True
    pose = start_pose(scene, start_object, face_object, config)
    if pose is None:
        return None
    grid = scene.grid
    centres = grid.centres().reshape(-1, 2)
    goal_cells = polygon_distance(centres, scene.footprints[goal_object]) <= config.goal_radius_m
    field = grid_distance_to(grid, goal_cells.reshape(grid.free.shape))
    start_cell = grid.cell_of(pose[0])
    reach = field[start_cell] if grid.is_free_cell(*start_cell) else np.inf
    if not math.isfinite(reach):
        return None
    if polygon_distance(pose[0][None], scene.footprints[goal_object])[0] <= config.goal_radius_m:
        return None  # already at the goal: nothing to ask

    def to_go(xy) -> float:
        cell = grid.cell_of(xy)
        return float(field[cell]) if grid.is_free_cell(*cell) else math.inf

    # A state: (walked length, position, heading, instructions, waypoints).
    frontier = [(0.0, pose[0], pose[1], [], [pose[0]])]
    for _ in range(config.max_legs):
        grown, done = [], []
        for length, position, heading, steps, points in frontier:
            for target in np.flatnonzero(allowed):
                bearing = scene.centre_xy[target] - position
                if np.linalg.norm(bearing) < 1e-9:
                    continue
                turn = _turn_for(_signed_angle(heading, bearing), config.turn_margin_deg)
                if turn is None:
                    continue
                leg = walk(scene, position, int(target), config)
                if leg is None or np.linalg.norm(leg[0] - position) < 1e-6:
                    continue
                stop, direction = leg
                new_steps = steps + ([Instruction(turn)] if turn else [])
                new_steps = new_steps + [Instruction(FORWARD, int(target))]
                state = (length + float(np.linalg.norm(stop - position)), stop, direction,
                         new_steps, points + [stop])  # fmt: skip
                if target == goal_object:
                    done.append(state)
                else:
                    grown.append(state)
        if done:
            best = min(done, key=lambda s: s[0])
            return Route(best[3], np.array(best[4]), best[0], float(reach))
        # Keep one state per (cell, heading in 15-degree bins), nearest the goal first.
        seen: dict = {}
        for state in grown:
            key = grid.cell_of(state[1]) + (
                round(math.degrees(math.atan2(state[2][1], state[2][0])) / 15),
            )
            if key not in seen or state[0] < seen[key][0]:
                seen[key] = state
        frontier = heapq.nsmallest(config.beam, seen.values(), key=lambda s: (to_go(s[1]), s[0]))
        if not frontier:
            break
    return None


__all__ = [
    "FORWARD",
    "TURNS",
    "FreeSpaceGrid",
    "Instruction",
    "ReplayResult",
    "Route",
    "RouteConfig",
    "RouteScene",
    "box_footprints",
    "free_space_grid",
    "grid_distance_to",
    "plan_route",
    "polygon_distance",
    "replay",
    "start_pose",
    "walk",
    "wall_distance",
]
