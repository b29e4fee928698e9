"""The eval section: svf-tf's evaluation against the references' test loop, same episodes."""

import multiprocessing
import os

from benchmarks.reference_test_loop import TorchTestEpisodes, torch_test_loop
from benchmarks.svf_tf_side import MODEL_VARIANTS
from benchmarks.torch_side import torch_model


def eval_worker(num_episodes, size, threads):
    """svf-tf's evaluation and the references' test loop on the same episodes, in this process."""
    import tempfile

    import torch

    from svf_tf.cli.evaluate import evaluation_model
    from svf_tf.config.experiment import ExperimentConfig
    from svf_tf.data import build_fold_lists, ensure_synthetic_dataset
    from svf_tf.data.episodes.episode_files import load_or_create_test_episodes
    from svf_tf.data.pipeline import make_test_dataset
    from svf_tf.data.transforms.presets import augment_config
    from svf_tf.metrics.evaluation import evaluate_episodes
    from svf_tf.tasks.few_shot import FewShotTask

    val = build_fold_lists("pascal", ensure_synthetic_dataset(), 0, "val", progress=False)
    with tempfile.TemporaryDirectory() as directory:
        episodes = load_or_create_test_episodes(os.path.join(directory, "episodes.jsonl"), val,
                                                shot=1, seed=321, num_episodes=num_episodes)
    config = augment_config("pascal", crop_size=size, test_size=size)
    task = FewShotTask(ExperimentConfig.from_settings(
        synthetic=True, backbone="resnet50", test_size=size, **MODEL_VARIANTS["svf"]),
        log=lambda *_: None)
    predict = task.make_predict_fn(evaluation_model(task.build_model()))  # SVF merged
    net, _ = torch_model("svf", threads)

    def svf_tf_loop(subset):  # what main.py --mode=eval runs
        report = evaluate_episodes(predict, make_test_dataset(subset, config), num_classes=5,
                                   verbose=0)
        return {"episodes": report["episodes"], "seconds": report["seconds"],
                "episodes_per_s": report["episodes_per_second"], "miou": report["miou"],
                "fb_iou": report["fb_iou"]}

    # The references' loader workers are forked (Linux' default); in this spawned
    # process the default is spawn, whose workers would first import this script.
    fork = "fork" in multiprocessing.get_all_start_methods()

    def torch_loop(subset):
        loader = torch.utils.data.DataLoader(
            TorchTestEpisodes(subset, size), batch_size=1, shuffle=False,
            num_workers=min(2, os.cpu_count() or 1), pin_memory=False,
            multiprocessing_context="fork" if fork else None)
        return torch_test_loop(net, loader, num_classes=5)

    svf_tf_loop(episodes[:2])  # warm-up: traces, thread pools, first allocations
    torch_loop(episodes[:2])
    result = {"episodes": num_episodes, "size": size, "torch_threads": threads,
              "svf_tf": svf_tf_loop(episodes), "torch": torch_loop(episodes)}
    result["ratio"] = result["svf_tf"]["episodes_per_s"] / result["torch"]["episodes_per_s"]
    return result
