"""A tiny experiment on the synthetic dataset, shared by the trainer tests."""

from svf_tf.config.experiment import ExperimentConfig

TINY = dict(synthetic=True, backbone="vgg16", vgg_batch_norm=True, train_size=33, test_size=33,
            epochs=2, steps_per_epoch=3, batch_size=2, test_episodes=6, eval_every=1,
            early_stop=0, svf_rank_multiple=1)


def tiny_config(cache_dir, work_dir, **overrides):
    """`TINY` with `overrides`, by setting name (the flags' names, e.g. `finetune="freeze"`).

    The SVF-only setting of `TINY` is dropped when `overrides` pick another
    fine-tuning mode.
    """
    settings = {**TINY, "cache_dir": cache_dir, "work_dir": str(work_dir), **overrides}
    if settings.get("finetune", "svf") != "svf" and "svf_rank_multiple" not in overrides:
        del settings["svf_rank_multiple"]
    return ExperimentConfig.from_settings(**settings)
