"""svf-tf's side of the whole-model sections: the baseline's training step and eval forward."""

# "svf" is the package default (S of layer2-4 in the factored form, the
# decomposed but frozen layer0-1 as one conv each); "svf_paper" runs every
# decomposed layer in the factored form, as Algorithm 1 / the authors' code;
# "svf_kernel" composes the kernel in every layer (Keras' LoRA pattern).
MODEL_VARIANTS = {
    "freeze": {"finetune": "freeze"},
    "svf": {"finetune": "svf", "svf_compute": "factored", "svf_rank_multiple": 1},
    "svf_paper": {"finetune": "svf", "svf_compute": "factored", "svf_rank_multiple": 1},
    "svf_kernel": {"finetune": "svf", "svf_compute": "kernel", "svf_rank_multiple": 1},
    "part": {"finetune": "part"},
    "full": {"finetune": "full", "finetune_stages": (0, 1, 2, 3, 4), "train_bn": False},
}


def random_batch(size, batch, shot=1):
    import numpy as np

    rng = np.random.default_rng(0)
    return {"query_image": rng.normal(size=(batch, size, size, 3)).astype("float32"),
            "support_images": rng.normal(size=(batch, shot, size, size, 3)).astype("float32"),
            "support_masks": rng.integers(0, 2, (batch, shot, size, size)).astype("int32"),
            "query_mask": rng.integers(0, 2, (batch, size, size)).astype("int32"),
            "class_slot": np.zeros((batch,), "int32")}


def svf_tf_functions(variant, size, batch, backbone, strategy="auto", jit=False):
    """(train step, eval forward) of svf-tf's baseline, the real `FewShotTask` ones.

    Both run on a fixed random batch and block until their result is on the
    host. `evaluate.merged()`: the eval forward of the same model with its
    SVF layers merged (`merge_svf`, as `main.py --mode=eval` scores it).
    """
    import tensorflow as tf

    import svf_tf
    from svf_tf.config.experiment import ExperimentConfig
    from svf_tf.layers import SVFConv2D
    from svf_tf.runs.strategy import make_strategy
    from svf_tf.surgery.layer_paths import iter_layers
    from svf_tf.tasks.few_shot import FewShotTask

    config = ExperimentConfig.from_settings(
        synthetic=True, backbone=backbone, train_size=size, test_size=size, batch_size=batch,
        jit_compile=jit, strategy=strategy, **MODEL_VARIANTS[variant])
    task = FewShotTask(config, log=lambda *_: None)
    distribution = make_strategy(strategy)
    with distribution.scope():
        model = task.build_model()
        if variant == "svf_paper":
            for _, layer in iter_layers(model):
                if isinstance(layer, SVFConv2D):
                    layer.compute = "factored"
        optimizer = task.build_optimizer(model, total_steps=100)
    step = task.make_train_step(model, optimizer, distribution)
    data = {k: tf.constant(v) for k, v in random_batch(size, batch).items()}
    inputs = [data[k] for k in ("query_image", "support_images", "support_masks")]

    def train():
        return step(data)["loss"].numpy()

    def eval_forward(eval_model):
        predict = task.make_predict_fn(eval_model)

        def evaluate():
            return predict(*inputs).numpy()

        evaluate.graph = lambda: predict.get_concrete_function(*inputs).graph
        return evaluate

    train.graph = lambda: step.get_concrete_function(data).graph  # the traced functions
    evaluate = eval_forward(model)
    evaluate.merged = lambda: eval_forward(svf_tf.merge_svf(model))
    return train, evaluate
