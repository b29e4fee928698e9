"""Few-shot mIoU on episodes of the BASE classes: how well a model fits what it trains on.

The papers score a few-shot model on test episodes of the novel classes. To
see over-fitting (SVF paper Sec. 3 and Figures 2, 3 and 7: fine-tuning the
backbone raises the training curve while the novel-class curve stalls or
drops), the same model is also scored on episodes drawn the same way from the
fold's training list, whose classes are the base classes.

The episodes are those of `svf_tf.data.episodes.sampling.make_test_episodes`
applied to the train `FoldLists`: the train list in order, cycled, one base
class present in the query drawn uniformly, supports from that class's train
pool, all from `(seed, index)`, so every model and every epoch sees the same
episodes. They are evaluated exactly as the test episodes are (the test
resize, `evaluate_episodes`: class mIoU over the base-class slots at the
labels' original resolution, and FB-IoU), so the two numbers are comparable.
"""

from svf_tf.data.episodes.sampling import DEFAULT_TEST_SEED, make_test_episodes
from svf_tf.data.pipeline import make_test_dataset
from svf_tf.metrics.evaluation import evaluate_episodes


def make_base_class_evaluation(predict_fn, train_lists, shot, augment, *,
                               seed=DEFAULT_TEST_SEED, num_episodes=100):
    """`fn() -> report` scoring `predict_fn` on fixed episodes of the base classes.

    Args:
        predict_fn: as `evaluate_episodes` takes it (a few-shot model's
            `FewShotTask.make_predict_fn`).
        train_lists: the fold's train `FoldLists` (its classes are the base
            classes; with the dagger filter no novel-class pixel is in them).
        shot: supports per episode.
        augment: the `AugmentConfig` (or preset name) whose `test_size` the
            episodes are resized to, the validation's own.
        seed: the episodes' seed.
        num_episodes: how many episodes (the train list cycled, in order).

    Returns:
        A function returning `evaluate_episodes`' report (`miou` over the
        base-class slots, `fb_iou`, per-class IoU, ...); the episodes are
        drawn once, here.
    """
    if train_lists.split != "train":
        raise ValueError(f"make_base_class_evaluation takes the train lists (base classes); "
                         f"got the {train_lists.split!r} lists.")
    episodes = make_test_episodes(train_lists, shot, seed, num_episodes)
    dataset = make_test_dataset(episodes, augment)
    num_classes = len(train_lists.classes)
    return lambda: evaluate_episodes(predict_fn, dataset, num_classes, verbose=0)
