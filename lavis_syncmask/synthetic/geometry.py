"""Geometry of the synthetic renderer: drawable parts in a canonical 256 x 256 garment frame
(collected in a :class:`Drawing`), the view transform (pose jitter, side-view foreshortening,
detail zoom) that maps them into the image, and small shape primitives (ellipses, stars, strips
along a polyline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from lavis_syncmask.synthetic.labels import LABEL_ID as L
from lavis_syncmask.synthetic.taxonomy import Pose

SIZE = 256
CENTRE = SIZE / 2.0
SIDE_SQUEEZE = 0.55  # a side view shows the garment about half as wide

Face = Literal["front", "back", "side"]


@dataclass(frozen=True)
class Part:
    """One thing to draw, in canonical coordinates ``(k, 2)`` as ``(x, y)``.

    ``shape="poly"`` fills the polygon (and draws its outline with ``outline`` when given);
    ``shape="line"`` strokes the polyline ``width`` canonical pixels wide. ``hem`` marks parts
    whose geometry follows the ``length`` attribute.
    """

    label: int
    points: np.ndarray
    shape: Literal["poly", "line"] = "poly"
    outline: int | None = None
    width: float = 1.0
    hem: bool = False


@dataclass(frozen=True)
class ViewSpec:
    """One photographed view of a product: pose, jitter and background.

    ``focus`` is the canonical point a detail crop is centred on, ``zoom`` its magnification
    (1 for whole-garment views).
    """

    pose: Pose
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    angle: float = 0.0  # degrees
    mirror: bool = False
    zoom: float = 1.0
    focus: tuple[float, float] = (CENTRE, CENTRE)
    texture: int = 0
    background: tuple[int, int, int] = (242, 242, 240)
    texture_amplitude: int = 6  # grey levels
    detail_face: Literal["front", "back"] = "front"  # which side a detail crop shows

    @property
    def face(self) -> Face:
        """The side of the garment the camera sees."""
        return self.detail_face if self.pose == "detail" else self.pose  # type: ignore[return-value]


def view_matrix(view: ViewSpec) -> np.ndarray:
    """``(3, 3)`` affine map from canonical ``(x, y, 1)`` to image pixel coordinates."""
    sx = view.scale * view.zoom * (SIDE_SQUEEZE if view.pose == "side" else 1.0)
    sx = -sx if view.mirror else sx
    sy = view.scale * view.zoom
    theta = math.radians(view.angle)
    cos, sin = math.cos(theta), math.sin(theta)
    to_origin = np.array([[1, 0, -view.focus[0]], [0, 1, -view.focus[1]], [0, 0, 1]], float)
    stretch = np.diag([sx, sy, 1.0])
    rotate = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], float)
    place = np.array([[1, 0, CENTRE + view.dx], [0, 1, CENTRE + view.dy], [0, 0, 1]], float)
    return place @ rotate @ stretch @ to_origin


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(k, 2)`` points mapped by a ``(3, 3)`` affine matrix."""
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def linear_scale(matrix: np.ndarray) -> float:
    """How much the map stretches lengths on average (for stroke widths)."""
    return math.sqrt(abs(float(np.linalg.det(matrix[:2, :2]))))


def pts(*xy: tuple[float, float]) -> np.ndarray:
    return np.asarray(xy, dtype=np.float64)


def ellipse(
    cx: float, cy: float, rx: float, ry: float, start: float = 0.0, stop: float = 360.0, n: int = 20
) -> np.ndarray:
    """Points of an ellipse arc (degrees, y down: 0 deg = right, 90 deg = down)."""
    angles = np.radians(np.linspace(start, stop, n, endpoint=stop - start < 360.0))
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1)


def star(cx: float, cy: float, outer: float, inner: float, spikes: int = 5) -> np.ndarray:
    angles = np.radians(-90.0 + np.arange(2 * spikes) * 180.0 / spikes)
    radii = np.where(np.arange(2 * spikes) % 2 == 0, outer, inner)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return pts((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def mirror_x(points: np.ndarray, cx: float = CENTRE) -> np.ndarray:
    """The shape reflected about the vertical line ``x = cx`` (left part -> right part)."""
    out = points.copy()
    out[:, 0] = 2 * cx - out[:, 0]
    return out


def quad_strip(start: np.ndarray, end: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """A quadrilateral along ``start -> end``, ``w0`` wide at the start and ``w1`` at the end."""
    direction = (end - start) / max(float(np.linalg.norm(end - start)), 1e-9)
    normal = np.array([-direction[1], direction[0]])
    return np.stack(
        [
            start + normal * w0 / 2,
            end + normal * w1 / 2,
            end - normal * w1 / 2,
            start - normal * w0 / 2,
        ]
    )


@dataclass
class Drawing:
    """Parts back to front, and canonical points a detail crop may centre on, per attribute."""

    parts: list[Part] = field(default_factory=list)
    anchors: dict[str, tuple[float, float]] = field(default_factory=dict)

    def add(
        self,
        label: str,
        points: np.ndarray,
        outline: str | None = None,
        *,
        hem: bool = False,
        mirrored: bool = False,
    ) -> None:
        out = L[outline] if outline else None
        self.parts.append(Part(L[label], points, outline=out, hem=hem))
        if mirrored:
            self.parts.append(Part(L[label], mirror_x(points), outline=out, hem=hem))

    def line(self, label: str, points: np.ndarray, width: float, *, hem: bool = False) -> None:
        self.parts.append(Part(L[label], points, shape="line", width=width, hem=hem))
