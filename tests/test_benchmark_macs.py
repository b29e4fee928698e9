"""The benchmark's multiply-accumulate count of a training step, on a hand-computed model.

scripts/benchmark.py's model section counts the convs and matmuls of each
variant's traced training step, keeping only the ops the runtime runs (the
fan-in of the step's outputs and stateful ops): TensorFlow builds a conv's
kernel gradient and input gradient together, and drops the one nothing reads.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from benchmarks.macs import graph_macs, live_ops, op_macs
from benchmarks.svf_tf_side import random_batch

BATCH, SIDE = 2, 8
# Input 2x8x8x3 -> conv 3x3 3->4 ("first") -> conv 1x1 4->5 -> global mean -> Dense 5->3
# -> EinsumDense "ab,bc->ac" 3->2; the loss is the mean of the output.
FIRST_CONV = BATCH * SIDE * SIDE * 4 * (3 * 3 * 3)  # output values x (kh kw cin) = 13824
SECOND_CONV = BATCH * SIDE * SIDE * 5 * 4  # = 2560
DENSE = BATCH * 3 * 5  # forward, kernel gradient and input gradient alike: 30 each
EINSUM = BATCH * 3 * 2  # 12 each


def toy_step(first_trains):
    inputs = keras.Input((SIDE, SIDE, 3), batch_size=BATCH)
    x = keras.layers.Conv2D(4, 3, padding="same", trainable=first_trains)(inputs)
    x = keras.layers.Conv2D(5, 1)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(3)(x)
    outputs = keras.layers.EinsumDense("ab,bc->ac", output_shape=2)(x)
    model = keras.Model(inputs, outputs)
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(images):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(images, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    images = tf.constant(np.random.default_rng(0).normal(size=(BATCH, SIDE, SIDE, 3)),
                         tf.float32)
    return step.get_concrete_function(images).graph


@pytest.mark.parametrize("first_trains", [False, True])
def test_counts_the_convs_and_matmuls_that_run(first_trains):
    counts = graph_macs(toy_step(first_trains))
    assert counts["forward"] == FIRST_CONV + SECOND_CONV
    # The second conv's input gradient only matters if the first conv trains; its
    # kernel gradient always does. Nothing needs the first conv's input gradient.
    assert counts["input_grad"] == (SECOND_CONV if first_trains else 0)
    assert counts["kernel_grad"] == SECOND_CONV + (FIRST_CONV if first_trains else 0)
    assert counts["matmul"] == 3 * DENSE + 3 * EINSUM


def test_the_graph_holds_the_gradients_that_never_run():
    # Why the count keeps live ops only: with the first conv frozen, the traced graph still
    # has input gradients (at least the second conv's), which the runtime prunes.
    graph = toy_step(first_trains=False)
    built = sum(op_macs(op) for op in graph.get_operations()
                if op.type == "Conv2DBackpropInput")
    assert built >= SECOND_CONV and graph_macs(graph)["input_grad"] == 0


def test_no_backward_op_runs_in_the_stages_that_do_not_train(synthetic_cache, tmp_path):
    """The live gradient ops of the tiny VGG16-BN baseline's training step, by layer.

    Frozen backbone: every backward op is in the head. SVF (S of layer2-4): the
    backward reaches block3 (layer2) and no further: nothing runs for block1-2
    (layer0-1), whose activations are therefore not kept for a backward pass.
    """
    from svf_tf.tasks.few_shot import FewShotTask
    from tests.runs.trainer_helpers import tiny_config

    reached = {}
    for finetune in ("freeze", "svf"):
        task = FewShotTask(tiny_config(synthetic_cache, tmp_path / finetune, finetune=finetune),
                           log=lambda *_: None)
        model = task.build_model()
        step = task.make_train_step(model, task.build_optimizer(model, total_steps=10),
                                    tf.distribute.get_strategy())
        batch = {k: tf.constant(v) for k, v in random_batch(33, 2).items()}
        graph = step.get_concrete_function(batch).graph
        reached[finetune] = {op.name for op in live_ops(graph)
                             if op.type.startswith("Conv2DBackprop")}
    assert reached["freeze"] and not any("backbone" in name for name in reached["freeze"])
    blocks = {block for block in ("block1", "block2", "block3", "block4", "block5")
              if any(f"/{block}_conv" in name for name in reached["svf"])}
    assert blocks == {"block3", "block4", "block5"}
