"""svf-tf command line: `python main.py --flagfile=configs/<setting>.cfg [--flags]`.

Every flag is defined in svf_tf/config/flags.py (`python main.py --helpfull`).
Without flags it runs the built-in demo on the synthetic dataset (frozen
backbone vs SVF, a few minutes on a CPU).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags, logging  # noqa: E402

from svf_tf.cli import errors as cli
from svf_tf.config.flags import MODES  # noqa: E402

FLAGS = flags.FLAGS


def config_from_flags(**overrides):
    """The run's `ExperimentConfig`, from the flags (and explicit overrides)."""
    from svf_tf.config.experiment import ExperimentConfig

    try:
        seeds = tuple(int(s) for s in FLAGS.eval_seeds)
        stages = tuple(int(s) for s in FLAGS.finetune_stages)
    except ValueError as error:
        raise ValueError(f"--eval_seeds and --finetune_stages take integers ({error}).") from None
    try:
        scale_range = tuple(float(s) for s in FLAGS.scale_range) or None
    except ValueError as error:
        raise ValueError(f"--scale_range takes two numbers min,max ({error}).") from None
    values = dict(
        work_dir=FLAGS.work_dir, seed=FLAGS.seed, dataset=FLAGS.dataset,
        data_root=FLAGS.data_root, synthetic=FLAGS.synthetic, train_list=FLAGS.train_list,
        val_list=FLAGS.val_list, fold=FLAGS.fold, shot=FLAGS.shot, coco_split=FLAGS.coco_split,
        filter_novel=FLAGS.filter_novel, cache_dir=FLAGS.cache_dir,
        train_size=FLAGS.train_size, test_size=FLAGS.test_size, scale_range=scale_range,
        test_episodes=FLAGS.test_episodes, val_images=FLAGS.val_images, eval_seeds=seeds,
        episodes_dir=FLAGS.episodes_dir,
        method=FLAGS.method, backbone=FLAGS.backbone, stem=FLAGS.stem, dilation=FLAGS.dilation,
        vgg_batch_norm=FLAGS.vgg_batch_norm, weights=FLAGS.weights,
        base_learner=FLAGS.base_learner, finetune=FLAGS.finetune,
        finetune_stages=stages, conv_kinds=tuple(FLAGS.conv_kinds), train_bn=FLAGS.train_bn,
        svf_factors=tuple(FLAGS.svf_factors), svf_rank_multiple=FLAGS.svf_rank_multiple,
        svf_parametrization=FLAGS.svf_parametrization, svf_compute=FLAGS.svf_compute,
        kshot_reduce=FLAGS.kshot_reduce, train_down_query=FLAGS.train_down_query,
        epochs=FLAGS.epochs, steps_per_epoch=FLAGS.steps_per_epoch, batch_size=FLAGS.batch_size,
        lr=FLAGS.lr, backbone_lr_ratio=FLAGS.backbone_lr_ratio, lr_schedule=FLAGS.lr_schedule,
        poly_multiplier=FLAGS.poly_multiplier, momentum=FLAGS.momentum,
        weight_decay=FLAGS.weight_decay, eval_every=FLAGS.eval_every,
        early_stop=FLAGS.early_stop, jit_compile=FLAGS.jit_compile,
        mixed_precision=FLAGS.mixed_precision)
    values.update(overrides)
    return ExperimentConfig(**values)


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    logging.set_verbosity(logging.WARNING)  # TensorFlow's export chatter
    import keras
    import tensorflow as tf

    from svf_tf.runs.run_files import write_flags

    tf.get_logger().setLevel("ERROR")
    if FLAGS.mixed_precision != "none":
        keras.mixed_precision.set_global_policy(FLAGS.mixed_precision)
    keras.utils.set_random_seed(FLAGS.seed)
    write_flags(os.path.join(FLAGS.work_dir, "flags.txt"), FLAGS)

    if FLAGS.mode == "demo":
        from svf_tf.cli.demo import run_demo
        from svf_tf.runs.strategy import make_strategy

        run_demo(config_from_flags(synthetic=True), make_strategy(FLAGS.strategy))
    elif FLAGS.mode == "train":
        from svf_tf.cli.train import train
        from svf_tf.runs.strategy import make_strategy

        summary = train(config_from_flags(), make_strategy(FLAGS.strategy))
        print(f"best validation mIoU {summary['best_miou']:.4f} "
              f"(checkpoint {summary['best_checkpoint']})")
    elif FLAGS.mode == "train_base":
        from svf_tf.cli.train import train_base
        from svf_tf.runs.strategy import make_strategy

        summary = train_base(config_from_flags(), make_strategy(FLAGS.strategy))
        print(f"best validation base-class mIoU {summary['best_miou']:.4f}; stage 2: "
              f"--weights={summary['backbone_weights']} "
              f"--base_learner={summary['base_learner_weights']}")
    elif FLAGS.mode == "eval":
        from svf_tf.cli.evaluate import evaluate_checkpoint

        evaluate_checkpoint(config_from_flags(), FLAGS.checkpoint)
    elif FLAGS.mode == "export":
        from svf_tf.cli.export import export_checkpoint

        export_checkpoint(config_from_flags(), FLAGS.checkpoint, FLAGS.export_dir)
    elif FLAGS.mode == "predict":
        from svf_tf.cli.predict import predict_episode

        if not FLAGS.query:
            raise ValueError("--mode=predict needs --query, --supports and --support_masks.")
        predict_episode(config_from_flags(), FLAGS.query, FLAGS.supports, FLAGS.support_masks,
                        class_id=FLAGS.class_id, checkpoint_path=FLAGS.checkpoint)
    else:
        raise ValueError(f"--mode={FLAGS.mode} is not handled; use one of "
                         f"{MODES}.")
    print(f"\nwork directory: {os.path.abspath(FLAGS.work_dir)}", file=sys.stderr)


if __name__ == "__main__":
    cli.run(main)
