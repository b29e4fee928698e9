"""The data section: the input pipeline's episodes/s against the SVF step's consumption."""

from benchmarks.svf_tf_side import svf_tf_functions
from benchmarks.timing import median_seconds


def data_worker(size, repeats, backbone, strategy):
    """Input pipeline throughput against the SVF step's consumption."""
    from svf_tf.data import build_fold_lists, ensure_synthetic_dataset
    from svf_tf.data.pipeline import make_train_dataset, measure_episodes_per_second
    from svf_tf.data.transforms.presets import augment_config

    root = ensure_synthetic_dataset()
    train = build_fold_lists("pascal", root, 0, "train", progress=False)
    config = augment_config("pascal", crop_size=size, test_size=size)
    result = {"size": size}
    for shot in (1, 5):
        dataset = make_train_dataset(train, shot, config, seed=321, epoch=0, batch_size=8)
        result[f"pipeline_{shot}shot_episodes_per_s"] = measure_episodes_per_second(
            dataset, num_batches=max(4, repeats))
    batch = 2
    step, _ = svf_tf_functions("svf", size, batch, backbone, strategy)
    seconds = median_seconds(step, max(2, repeats // 2), warmup=2)
    result["svf_step_seconds"] = seconds
    result["svf_step_episodes_per_s"] = batch / seconds
    result["pipeline_over_consumption_1shot"] = (result["pipeline_1shot_episodes_per_s"]
                                                 / result["svf_step_episodes_per_s"])
    return result
