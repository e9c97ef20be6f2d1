"""The preview PNG: colours that stand out, slices through the click, click markers, legend, layout.

Results are built by hand on a small CT-like volume whose axes are permuted and flipped against
RAS (input axis 0 runs to Superior, 1 to patient Left, 2 to Anterior), so that a mistake in the
reorientation shows. The figure :func:`render_preview` saves is captured and read back: voxels
with unique intensities show which voxel a panel or a marker stands on, independently of how the
module maps input voxels to pictures.
"""

from __future__ import annotations

import colorsys
import itertools

import nibabel as nib
import numpy as np
import pytest
from segment_support import make_affine

from sammoe_core.io.preview import render_preview
from sammoe_core.io.volumes import Volume, apply_affine
from sammoe_core.segmentation.intensity import ModalityDecision
from sammoe_core.segmentation.pipeline import SegmentationResult, TargetResult
from sammoe_core.segmentation.prompts import ResolvedClick

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHAPE = (20, 40, 36)
DIRECTIONS = np.array([[0.0, -1, 0], [0, 0, 1], [1, 0, 0]])  # columns: axis 0 -> S, 1 -> L, 2 -> A
AFFINE = make_affine(DIRECTIONS, (2.5, 0.8, 0.9), (10, 20, 18))
ORNT = nib.orientations.io_orientation(AFFINE)


def _ct_like() -> np.ndarray:
    """Air, a soft-tissue body, a fat rim and a bone column (Hounsfield-like), no noise."""
    _, r, a = np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij")
    body = (r / 0.9) ** 2 + (a / 0.8) ** 2
    data = np.where(body < 1, 40.0, -1000.0)
    data[(body < 1) & (body > 0.8)] = -100.0
    data[r**2 + (a + 0.5) ** 2 < 0.04] = 900.0
    return data.astype(np.float32)


def _target(name: str, label: int, clicks=(), box=None) -> TargetResult:
    resolved = [
        ResolvedClick(np.asarray(v, dtype=np.float64), apply_affine(AFFINE, np.asarray(v, dtype=np.float64)), positive)
        for v, positive in clicks
    ]
    return TargetResult(name, label, resolved, box, None, [], False, {})


def _result(targets, label_map, array=None, modality="ct", source="case_0001.nii.gz") -> SegmentationResult:
    volume = Volume(_ct_like() if array is None else array, AFFINE, source=source)
    return SegmentationResult(volume, label_map, None, targets, ModalityDecision(modality, modality, "test"), {}, {})


def _canonical(array: np.ndarray) -> np.ndarray:
    return nib.orientations.apply_orientation(array, ORNT)


@pytest.fixture
def rendered(monkeypatch, tmp_path):
    """render_preview(result) to a PNG; returns the Figure it saved, drawn (Agg) for measuring."""
    from matplotlib.figure import Figure

    figures = []
    save = Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)

    def render(result):
        path = tmp_path / f"preview{len(figures)}.png"
        render_preview(result, path)
        assert path.read_bytes()[:8] == PNG_MAGIC
        figure = figures[-1]
        figure.canvas.draw()
        return figure

    return render


def _rows(figure):
    """The three panels (sagittal, coronal, axial) of each target row."""
    axes = figure.axes
    return [axes[i : i + 3] for i in range(0, len(axes), 3)]


def _legends(figure):
    from matplotlib.legend import Legend

    return figure.findobj(Legend)


def _saturation(rgb) -> float:
    return colorsys.rgb_to_hsv(*rgb[:3])[1]


def _value(rgb) -> float:
    return colorsys.rgb_to_hsv(*rgb[:3])[2]


def _eight_targets():
    labels = np.zeros(SHAPE, np.uint8)
    targets = []
    for k in range(8):
        labels[2 * k : 2 * k + 2, 10:30, 10:26] = k + 1
        targets.append(_target(f"organ {k + 1}", k + 1, [((2 * k, 20, 18), True)]))
    return targets, labels


def test_target_colours_are_saturated_and_distinct_and_follow_the_label(rendered):
    from sammoe_core.io.preview import target_colours

    targets, labels = _eight_targets()
    figure = rendered(_result(targets, labels))
    drawn = []
    for target, row in zip(targets, _rows(figure)):
        overlays = {tuple(np.round(image.cmap(0.5)[:3], 4)) for ax in row for image in ax.get_images()[1:]}
        assert len(overlays) == 1, f"{target.name}: one colour in its three panels"
        (colour,) = overlays
        assert _saturation(colour) >= 0.5 and _value(colour) >= 0.5, f"{target.name}: {colour} is greyish or dark"
        drawn.append(colour)
    assert len(set(drawn)) == 8, "two of the first eight targets share a colour"

    colours = target_colours(targets)
    assert [tuple(np.round(colours[t.label], 4)) for t in targets] == drawn
    # labels that fall on the same palette entry still get different colours
    clashing = [_target(f"t{label}", label, [((1, 1, 1), True)]) for label in (1, 11, 21, 31, 2, 12, 3, 13)]
    assert len(set(target_colours(clashing).values())) == 8
    assert all(_saturation(c) >= 0.5 and _value(c) >= 0.5 for c in target_colours(clashing).values())
    # a label value keeps its colour whatever the order of the targets and whichever others come along
    first, third = targets[0], targets[2]
    assert target_colours([third, first])[3] == target_colours([first, third])[3] == colours[3]
    assert target_colours([first])[1] == target_colours(targets)[1]


def _two_pieces():
    """Label 5 in two slabs along S; the centroid (S index 10) lies between them, outside the mask."""
    labels = np.zeros(SHAPE, np.uint8)
    labels[2:6, 14:22, 12:20] = 5
    labels[14:18, 14:22, 12:20] = 5
    centroid = np.argwhere(labels == 5).mean(axis=0)
    assert labels[tuple(np.round(centroid).astype(int))] == 0
    return labels


def test_slices_go_through_the_first_positive_click_not_the_mask_centroid(rendered):
    from sammoe_core.io.preview import slice_point

    labels = _two_pieces()
    array = _ct_like()
    click = (15, 17, 14)
    array[click] = 1111.5
    array[3, 30, 30] = 2222.5  # a negative click given before the positive one
    target = _target("split", 5, [((3, 30, 30), False), (click, True), ((4, 18, 16), True)])
    result = _result([target], labels, array)

    point = slice_point(result, target)
    assert _canonical(array)[tuple(point)] == 1111.5
    assert _canonical(labels)[tuple(point)] == 5

    (row,) = _rows(rendered(result))
    for ax in row:
        picture, overlay = ax.get_images()[:2]
        assert 1111.5 in np.asarray(picture.get_array()), f"{ax.get_title()}: the slice misses the click"
        assert np.ma.count(overlay.get_array()) > 0 and np.asarray(overlay.get_array()).any(), (
            f"{ax.get_title()}: the slice misses the mask"
        )
    # the panel titles give the slice's input voxel index on the axis it is cut across
    assert [ax.get_title() for ax in row] == ["sagittal j=17", "coronal k=14", "axial i=15"]


def test_slice_point_falls_back_to_box_centre_then_mask_then_volume_centre():
    from sammoe_core.io.preview import slice_point

    labels = _two_pieces()
    array = _ct_like()
    array[12, 20, 15] = 3333.5  # the box centre
    boxed = _target("boxed", 5, [], {"voxel": [[8.0, 16.0, 10.0], [16.0, 24.0, 20.0]]})
    point = slice_point(_result([boxed], labels, array), boxed)
    assert _canonical(array)[tuple(point)] == 3333.5

    unprompted = _target("unprompted", 5, [((3, 30, 30), False)])  # no positive click, no box: the mask
    point = slice_point(_result([unprompted], labels), unprompted)
    assert _canonical(labels)[tuple(point)] == 5

    missing = _target("missing", 7, [((3, 30, 30), False)])  # an empty mask: the volume centre
    point = slice_point(_result([missing], labels), missing)
    ras_shape = np.asarray(_canonical(labels).shape)
    assert np.all(np.abs(point - (ras_shape - 1) / 2) <= 0.5)


def _key(figure):
    """Marker of each entry of the legend that explains the markers: {'positive click': 'P', ...}."""
    found = {}
    for legend in _legends(figure):
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            if "click" in text.get_text():
                found[text.get_text()] = handle
    return found


def test_clicks_are_marked_on_the_slices_that_hold_them(rendered):
    from matplotlib.colors import to_rgb

    labels = np.zeros(SHAPE, np.uint8)
    labels[8:14, 14:22, 10:20] = 2
    array = _ct_like()
    positive, same_sagittal, elsewhere = (10, 18, 15), (4, 18, 30), (2, 35, 3)
    for voxel, value in ((positive, 1111.5), (same_sagittal, 2222.5), (elsewhere, 3333.5)):
        array[voxel] = value
    target = _target("core", 2, [(positive, True), (same_sagittal, False), (elsewhere, False)])
    figure = rendered(_result([target], labels, array))

    key = _key(figure)
    assert set(key) == {"positive click", "negative click"}
    kinds = {key["positive click"].get_marker(): "positive", key["negative click"].get_marker(): "negative"}
    assert len(kinds) == 2, "positive and negative clicks need different markers"
    for handle in key.values():  # a light face in a dark edge or the reverse: seen on black and on bone
        face, edge = to_rgb(handle.get_markerfacecolor()), to_rgb(handle.get_markeredgecolor())
        assert abs(_value(face) - _value(edge)) >= 0.5

    (row,) = _rows(figure)
    expected = ({1111.5: "positive", 2222.5: "negative"}, {1111.5: "positive"}, {1111.5: "positive"})
    for ax, wanted in zip(row, expected):
        picture = np.asarray(ax.get_images()[0].get_array())
        marked = {}
        for line in ax.get_lines():
            if line.get_marker() in kinds:
                (x,), (y,) = line.get_xdata(), line.get_ydata()
                marked[float(picture[int(round(y)), int(round(x))])] = kinds[line.get_marker()]
        assert marked == wanted, ax.get_title()


def test_legend_names_each_target_with_its_label_and_colour(rendered):
    from matplotlib.colors import to_rgb

    from sammoe_core.io.preview import target_colours

    labels = _two_pieces().astype(np.uint16)
    labels[8:12, 2:8, 2:8] = 300
    targets = [_target("split", 5, [((15, 17, 14), True)]), _target(r"cost $\notacommand$", 300, [((10, 5, 5), True)])]
    figure = rendered(_result(targets, labels, modality="mr"))
    entries = {}
    for legend in _legends(figure):
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            entries[text.get_text()] = handle
    colours = target_colours(targets)
    for target, shown in zip(targets, ("split (label 5)", r"cost \$\notacommand\$ (label 300)")):
        assert shown in entries, sorted(entries)
        assert to_rgb(entries[shown].get_facecolor()) == pytest.approx(colours[target.label])
    assert {"positive click", "negative click"} <= set(entries)


def _boxes(figure):
    """Window extents of every title (figure, row and panel) and legend, by a readable name."""
    renderer = figure.canvas.get_renderer()
    texts = [("figure title", getattr(figure, "_suptitle", None))]
    texts += [(f"row title {i}", getattr(sub, "_suptitle", None)) for i, sub in enumerate(figure.subfigs)]
    texts += [(f"panel {i} title", ax.title) for i, ax in enumerate(figure.axes)]
    boxes = [(name, t.get_window_extent(renderer)) for name, t in texts if t is not None and t.get_text()]
    boxes += [(f"legend {i}", legend.get_window_extent(renderer)) for i, legend in enumerate(_legends(figure))]
    return boxes


def _overlap(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, width) * max(0.0, height)


@pytest.mark.parametrize("count", [3, 9])
def test_titles_and_legends_do_not_overlap(rendered, count):
    labels = np.zeros(SHAPE, np.uint8)
    targets = []
    for k in range(count):
        labels[2 * k : 2 * k + 2, 10:30, 10:26] = k + 1
        targets.append(_target(f"inferior vena cava thrombus part {k + 1}", k + 1, [((2 * k, 20, 18), True)]))
    figure = rendered(_result(targets, labels, source="/data/a rather long case name 0001.nii.gz"))
    assert len(_rows(figure)) == min(count, 8)
    boxes = _boxes(figure)
    assert any(name.startswith("legend") for name, _ in boxes)
    page = figure.bbox
    for name, box in boxes:
        assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, (
            f"{name} runs off the figure"
        )
    for (name_a, a), (name_b, b) in itertools.combinations(boxes, 2):
        assert _overlap(a, b) < 1.0, f"{name_a} overlaps {name_b}"
    renderer = figure.canvas.get_renderer()
    for name, box in boxes:  # nor does any title or legend cover a picture
        for ax in figure.axes:
            assert _overlap(box, ax.get_window_extent(renderer)) < 1.0, f"{name} overlaps the panel {ax.get_title()!r}"
