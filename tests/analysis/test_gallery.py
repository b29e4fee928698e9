"""The gallery's episode IoU (by hand) and its PNG."""

import matplotlib.image
import numpy as np

from svf_tf.analysis.gallery import episode_iou, plot_gallery


def test_episode_iou_ignores_255_and_counts_foreground():
    truth = np.array([[1, 1, 0], [0, 255, 255], [0, 0, 1]])
    prediction = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 1]])
    # foreground: predicted {(0,0), (0,2), (2,2)} ((1,1) ignored), true {(0,0), (0,1), (2,2)}
    assert episode_iou(prediction, truth) == (0.5, 2, 4)
    assert episode_iou(np.zeros((2, 2)), np.zeros((2, 2)))[0] == 1.0  # nothing to find


def test_gallery_png_has_a_column_per_run(tmp_path):
    rng = np.random.default_rng(0)
    episode = {"index": 0, "support": rng.random((9, 9, 3)), "query": rng.random((9, 9, 3)),
               "support_mask": (rng.random((9, 9)) > 0.5).astype(int),
               "truth": np.where(rng.random((12, 12)) > 0.9, 255, rng.random((12, 12)) > 0.5),
               "predictions": [np.ones((12, 12), int), np.zeros((12, 12), int)],
               "ious": [0.4, 0.0]}
    path = tmp_path / "gallery.png"
    figure = plot_gallery([episode, {**episode, "index": 1}], ["run a", "run b"], str(path))
    assert len([axis for axis in figure.axes if axis.get_visible()]) == 2 * 5
    assert figure.axes[3].get_xlabel() == "IoU 40.0%"
    width, height = figure.get_size_inches()
    assert matplotlib.image.imread(str(path)).shape[:2] == (round(height * 100),
                                                            round(width * 100))
