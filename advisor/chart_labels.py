"""Point labels that do not collide. Each label tries offsets around its point (right, left, above, below, the
diagonals, then the same further out) and keeps the one that overlaps least with the labels already placed, every
point and its error bar, and the texts the chart asks it to avoid, and that stays inside the axes. Overlaps are
measured in display coordinates from matplotlib's own text extents, after the figure's layout has settled, so
the labels are placed where they will be drawn."""

from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

GAP_POINTS = 6.0  # from the point's edge to the label's nearest edge
CLEARANCE_PIXELS = 4.0  # between a label and any point but its own
PAD_PIXELS = 2.0  # around each label, so that two never touch (a browser's font is a little wider than matplotlib's)
OUTSIDE_PENALTY = 1e6  # per pixel² outside the axes: only when nothing inside is left
# (dx, dy) directions in units of the gap; the label's alignment follows the direction
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))
DISTANCES = (1.0, 2.5, 4.5)
DISTANCE_COST = 400.0  # pixels² of overlap a label would rather accept than move one step further out
# a label beside its point but nearer another point reads as that point's: worse than moving out a step, where it
# gets a leader line to its own point
AMBIGUITY_COST = 3 * DISTANCE_COST
LEADER_COLOUR = "#57606a"
LINE_PIXELS = 3.0  # half the height of the band a horizontal line (a goal) keeps free
LINE_WEIGHT = 0.1  # crossing a line is far better than covering a point (the label has a white background)


@dataclass(frozen=True)
class LabelledPoint:
    """A point to label, with its error bar (data coordinates) and marker size (points)."""

    x: float
    y: float
    text: str
    low: float | None = None
    high: float | None = None
    marker_points: float = 6.0


def renderer(figure: Figure) -> RendererBase:
    """The figure's renderer after its layout has settled (constrained layout moves the axes once drawn)."""
    if not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure)
    figure.draw_without_rendering()
    canvas = figure.canvas
    assert isinstance(canvas, FigureCanvasAgg)
    return canvas.get_renderer()


def overlap(a: Bbox, b: Bbox) -> float:
    """Area (pixels²) two boxes share."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def outside(box: Bbox, frame: Bbox) -> float:
    """Area (pixels²) of a box that lies outside the frame."""
    return box.width * box.height - overlap(box, frame)


def point_boxes(ax: Axes, point: LabelledPoint) -> list[Bbox]:
    """The marker and the error bar of a point, in display coordinates."""
    to_display = ax.transData.transform
    x, y = to_display((point.x, point.y))
    half = point.marker_points / 2 * ax.figure.dpi / 72
    boxes = [Bbox.from_extents(x - half, y - half, x + half, y + half)]
    if point.low is not None and point.high is not None:
        _, low = to_display((point.x, point.low))
        _, high = to_display((point.x, point.high))
        cap = 2.5 * ax.figure.dpi / 72  # the caps' half-width
        boxes.append(Bbox.from_extents(x - cap, min(low, high), x + cap, max(low, high)))
    return boxes


def _annotation(ax: Axes, point: LabelledPoint, dx: float, dy: float, fontsize: float) -> Annotation:
    gap = GAP_POINTS + point.marker_points / 2
    far = max(abs(dx), abs(dy)) > DISTANCES[0]  # a label away from its point gets a thin line to it
    text = ax.annotate(
        point.text,
        (point.x, point.y),
        xytext=(dx * gap, dy * gap),
        textcoords="offset points",
        fontsize=fontsize,
        ha="left" if dx > 0 else "right" if dx < 0 else "center",
        va="bottom" if dy > 0 else "top" if dy < 0 else "center",
        annotation_clip=False,
        arrowprops={"arrowstyle": "-", "color": LEADER_COLOUR, "linewidth": 0.7, "shrinkA": 1, "shrinkB": 4}
        if far
        else None,
        bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
    )
    text.set_in_layout(False)  # placed inside the axes: the layout must not move the axes after placement
    return text


def gap_to(box: Bbox, x: float, y: float) -> float:
    """Pixels from a point to the nearest edge of a box (0 inside it)."""
    return math.hypot(max(box.x0 - x, 0.0, x - box.x1), max(box.y0 - y, 0.0, y - box.y1))


def label_box(text: Text, renderer: RendererBase, pad: float = PAD_PIXELS) -> Bbox:
    """The text's own box (an annotation's leader line left out), padded."""
    if isinstance(text, Annotation):
        text.update_positions(renderer)  # where its offset puts it (Annotation.get_window_extent would add the line)
    return Text.get_window_extent(text, renderer).padded(pad)


def place_labels(
    ax: Axes,
    points: list[LabelledPoint],
    *,
    avoid: tuple[Text, ...] = (),
    hlines: tuple[float, ...] = (),
    fontsize: float = 8,
) -> list[Annotation]:
    """Label each point where it collides least (in ``points``' order: put the one that matters most first), away
    from the texts in ``avoid`` and, less strictly, the horizontal lines at ``hlines`` (data y); returns the
    labels, in the same order. Call it once the axes' limits and scales are final."""
    figure = ax.get_figure()
    assert isinstance(figure, Figure)
    draw = renderer(figure)
    frame = ax.get_window_extent(draw)
    # each point's marker and error bar, kept clear by a margin from any other point's label: a label beside
    # another point would read as that point's
    markers = [(i, box) for i, point in enumerate(points) for box in point_boxes(ax, point)]
    texts = [label_box(text, draw) for text in avoid]
    lines = []
    for y in hlines:
        _, line_y = ax.get_yaxis_transform().transform((0, y))  # x in axes fraction: fine on a log axis
        lines.append(Bbox.from_extents(frame.x0, line_y - LINE_PIXELS, frame.x1, line_y + LINE_PIXELS))
    centres = [tuple(ax.transData.transform((point.x, point.y))) for point in points]
    placed: list[Bbox] = []
    labels: list[Annotation] = []
    for i, point in enumerate(points):
        obstacles = texts + [box if owner == i else box.padded(CLEARANCE_PIXELS) for owner, box in markers]
        best: tuple[float, float, float] | None = None
        for step, distance in enumerate(DISTANCES):
            for rank, (dx, dy) in enumerate(DIRECTIONS):
                candidate = _annotation(ax, point, dx * distance, dy * distance, fontsize)
                box = label_box(candidate, draw)
                candidate.remove()
                own = gap_to(box, *centres[i])
                # beside its point and nearer another one: read as that one's (further out, a leader line says whose)
                nearer = 0 if step else sum(gap_to(box, *c) < own for j, c in enumerate(centres) if j != i)
                cost = (
                    nearer * AMBIGUITY_COST
                    + sum(overlap(box, other) for other in placed) * 10  # over another label: unreadable
                    + sum(overlap(box, other) for other in obstacles)  # over a point or its error bar
                    + sum(overlap(box, line) for line in lines) * LINE_WEIGHT
                    + outside(box, frame) * OUTSIDE_PENALTY
                    + step * DISTANCE_COST  # near its point, so that it reads as its label
                    + rank  # then right, left, above, below, the diagonals
                )
                if math.isfinite(cost) and (best is None or cost < best[0]):
                    best = (cost, dx * distance, dy * distance)
        assert best is not None
        label = _annotation(ax, point, best[1], best[2], fontsize)
        placed.append(label_box(label, draw))
        labels.append(label)
    return labels


def collisions(labels: list[Text], figure: Figure) -> list[tuple[str, str]]:
    """Pairs of labels whose boxes overlap (without the padding) once drawn: what a test checks is empty."""
    draw = renderer(figure)
    boxes = [(label.get_text(), label_box(label, draw, pad=0)) for label in labels]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1 :] if overlap(box_a, box_b) > 0]
