"""Per-stage figure functions on small synthetic inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np

from satclip.reporting import plots


def test_retrieval_map_spans_the_figure_below_the_patches():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (3, 8, 8), dtype=np.uint8) for _ in range(6)]
    true_points = np.array([[10.0 * i - 30, 5.0 * i] for i in range(6)])
    top_points = true_points[:, None, :] + rng.normal(0, 5, (6, 5, 2))
    fig = plots.retrieval_examples(images, true_points, top_points, caption="c")
    fig.canvas.draw()
    *patches, world = fig.axes
    assert len(patches) == 6 and world.get_title().startswith("true location")
    map_box = world.get_window_extent()
    fig_w, fig_h = fig.get_size_inches() * fig.dpi
    assert map_box.width > 0.6 * fig_w and map_box.height > 0.4 * fig_h   # a map, not a thumbnail
    assert all(p.get_window_extent().y0 > map_box.y1 for p in patches)   # the patches sit above it
    assert len(world.collections) == 12   # 6 x (top-5 crosses, true star)
