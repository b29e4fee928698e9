"""TorchSGD against PyTorch's SGD (a NumPy version written here, and torch.optim.SGD itself)."""

import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.optim.lr_schedules import PolyDecay
from svf_tf.optim.sgd import TorchSGD
from tests.helpers import two_replica_strategy

MOMENTUM, WEIGHT_DECAY = 0.9, 1e-2  # a large wd so that its effect is visible in 4 steps
SHAPES = {"head/kernel": (3, 2), "head/bias": (2,), "layer3/svf_s": (4,), "late/kernel": (2, 2)}
MULTIPLIERS = {"head/kernel": 1.0, "head/bias": 1.0, "layer3/svf_s": 0.1, "late/kernel": 2.0}
RULES = {r"svf_s$": 0.1, (lambda v: v.path.startswith("late")): 2.0}
STEPS = 4
LEARNING_RATES = [0.5, 0.3, 0.3, 0.05]  # changes between steps


def initial_values():
    rng = np.random.default_rng(0)
    return {name: rng.normal(size=shape).astype(np.float32) for name, shape in SHAPES.items()}


def gradients():
    """Per step {name: grad or None}; "late/kernel" gets its first gradient at step 2."""
    rng = np.random.default_rng(1)
    steps = []
    for step in range(STEPS):
        grads = {name: rng.normal(size=shape).astype(np.float32)
                 for name, shape in SHAPES.items()}
        if step < 2:
            grads["late/kernel"] = None
        if step == 1:
            grads["head/bias"] = None  # skipped: no decay, buffer kept as is
        steps.append(grads)
    return steps


def numpy_torch_sgd(values, steps, learning_rates, momentum, weight_decay, multipliers):
    """PyTorch's SGD step, as documented for torch.optim.SGD (dampening 0, no Nesterov)."""
    values = {name: value.astype(np.float64) for name, value in values.items()}
    buffers = {}
    for grads, lr in zip(steps, learning_rates, strict=True):
        for name, grad in grads.items():
            if grad is None:
                continue
            d_p = grad + weight_decay * values[name]
            if name not in buffers:
                buffers[name] = d_p.copy()  # PyTorch clones d_p on the first step
            else:
                buffers[name] = momentum * buffers[name] + d_p
            values[name] = values[name] - lr * multipliers[name] * buffers[name]
    return values


def variable(path, value):
    """A keras.Variable whose `path` is "scope/name", like a layer's weight."""
    scope, name = path.split("/")
    with keras.name_scope(scope):
        result = keras.Variable(value, name=name)
    assert result.path == path
    return result


def make_variables(values):
    return {path: variable(path, value) for path, value in values.items()}


def run_keras(optimizer, variables, steps, learning_rates=None):
    names = list(variables)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Gradients do not exist")
        for step, grads in enumerate(steps):
            if learning_rates is not None:
                optimizer.learning_rate = learning_rates[step]
            optimizer.apply_gradients(
                [(None if grads[n] is None else tf.constant(grads[n]), variables[n])
                 for n in names])
    return {name: variables[name].numpy() for name in names}


@pytest.mark.parametrize("momentum", [MOMENTUM, 0.0])
def test_matches_numpy_pytorch_sgd_with_changing_lr_multipliers_and_late_gradients(momentum):
    values, steps = initial_values(), gradients()
    optimizer = TorchSGD(0.5, momentum=momentum, weight_decay=WEIGHT_DECAY, lr_multipliers=RULES)
    result = run_keras(optimizer, make_variables(values), steps, LEARNING_RATES)
    expected = numpy_torch_sgd(values, steps, LEARNING_RATES, momentum, WEIGHT_DECAY,
                               MULTIPLIERS)
    for name in SHAPES:
        np.testing.assert_allclose(result[name], expected[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    # The Keras SGD rule (lr folded into the velocity) would differ once the lr changes.
    assert int(optimizer.iterations) == STEPS


def test_learning_rate_schedule_is_evaluated_at_the_step():
    values, steps = initial_values(), gradients()
    schedule = PolyDecay(0.05, total_steps=STEPS, scale=10.0)
    optimizer = TorchSGD(schedule, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    result = run_keras(optimizer, make_variables(values), steps)
    learning_rates = [0.5 * (1 - (k + 1) / STEPS) ** 0.9 for k in range(STEPS)]
    expected = numpy_torch_sgd(values, steps, learning_rates, MOMENTUM, WEIGHT_DECAY,
                               dict.fromkeys(SHAPES, 1.0))
    for name in SHAPES:
        np.testing.assert_allclose(result[name], expected[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


@pytest.mark.torch
def test_matches_torch_optim_sgd():
    torch = pytest.importorskip("torch")
    values, steps = initial_values(), gradients()
    optimizer = TorchSGD(0.5, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, lr_multipliers=RULES)
    result = run_keras(optimizer, make_variables(values), steps, LEARNING_RATES)

    params = {name: torch.nn.Parameter(torch.tensor(value)) for name, value in values.items()}
    groups = [{"params": [params[n] for n in SHAPES if MULTIPLIERS[n] == m], "multiplier": m}
              for m in sorted(set(MULTIPLIERS.values()))]
    torch_sgd = torch.optim.SGD(groups, lr=0.5, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    for grads, lr in zip(steps, LEARNING_RATES, strict=True):
        for group in torch_sgd.param_groups:
            group["lr"] = lr * group["multiplier"]
        for name, param in params.items():
            param.grad = None if grads[name] is None else torch.tensor(grads[name])
        torch_sgd.step()
    for name in SHAPES:
        np.testing.assert_allclose(result[name], params[name].detach().numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)


def test_variables_without_gradient_are_untouched():
    values = initial_values()
    variables = make_variables(values)
    optimizer = TorchSGD(0.1, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    grads = {name: np.ones(shape, np.float32) for name, shape in SHAPES.items()}
    grads["layer3/svf_s"] = None
    run_keras(optimizer, variables, [grads, grads])
    np.testing.assert_array_equal(variables["layer3/svf_s"].numpy(), values["layer3/svf_s"])
    buffer = optimizer.momentums[list(SHAPES).index("layer3/svf_s")]
    np.testing.assert_array_equal(buffer.numpy(), np.zeros(SHAPES["layer3/svf_s"]))
    assert not np.array_equal(variables["head/bias"].numpy(), values["head/bias"])


def test_exclude_from_weight_decay_is_honoured():
    values, steps = initial_values(), gradients()
    optimizer = TorchSGD(0.1, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    result = run_keras(optimizer, make_variables(values), steps)
    with_decay = numpy_torch_sgd(values, steps, [0.1] * STEPS, MOMENTUM, WEIGHT_DECAY,
                                 dict.fromkeys(SHAPES, 1.0))
    without_decay = numpy_torch_sgd(values, steps, [0.1] * STEPS, MOMENTUM, 0.0,
                                    dict.fromkeys(SHAPES, 1.0))
    np.testing.assert_allclose(result["head/bias"], without_decay["head/bias"], rtol=1e-5)
    np.testing.assert_allclose(result["head/kernel"], with_decay["head/kernel"], rtol=1e-5)
    assert not np.allclose(with_decay["head/bias"], without_decay["head/bias"], rtol=1e-5)


def test_sparse_gradient_is_densified_so_every_row_decays():
    table = variable("embedding/table", np.ones((5, 2), np.float32))
    optimizer = TorchSGD(0.1, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(table, [1, 3, 3]))
        grad = tape.gradient(loss, table)
        assert isinstance(grad, tf.IndexedSlices)
        optimizer.apply_gradients([(grad, table)])
    dense = np.zeros((5, 2), np.float32)
    dense[1], dense[3] = 1.0, 2.0
    expected = numpy_torch_sgd({"t": np.ones((5, 2), np.float32)}, [{"t": dense}] * 2,
                               [0.1, 0.1], MOMENTUM, WEIGHT_DECAY, {"t": 1.0})
    np.testing.assert_allclose(table.numpy(), expected["t"], rtol=1e-6)


def test_multiplier_rules_first_match_wins_and_are_reported():
    variables = make_variables(initial_values())
    optimizer = TorchSGD(0.1, lr_multipliers=[(r"svf_s$", 0.1), (r"^layer3", 5.0),
                                              (r"kernel", 3.0)])
    optimizer.build(list(variables.values()))
    assert {n: optimizer.lr_multiplier(v) for n, v in variables.items()} == {
        "head/kernel": 3.0, "head/bias": 1.0, "layer3/svf_s": 0.1, "late/kernel": 3.0}


def test_unmatched_pattern_warns():
    optimizer = TorchSGD(0.1, lr_multipliers={r"does_not_exist": 0.1})
    with pytest.warns(UserWarning, match="does_not_exist"):
        optimizer.build(list(make_variables(initial_values()).values()))


def test_two_replicas_match_one():
    """A data-parallel step (loss summed over the global batch) equals the single-device step."""
    rng = np.random.default_rng(2)
    inputs = rng.normal(size=(3, 8, 3)).astype(np.float32)  # 3 steps, global batch 8
    targets = rng.normal(size=(3, 8, 2)).astype(np.float32)

    def train(strategy):
        with strategy.scope():
            kernel = variable("head/kernel", np.full((3, 2), 0.5, np.float32))
            svf_s = variable("layer3/svf_s", np.ones((2,), np.float32))
            unused = variable("head/unused", np.full((2,), 3.0, np.float32))
            optimizer = TorchSGD(PolyDecay(0.02, total_steps=4, scale=10.0), momentum=MOMENTUM,
                                 weight_decay=WEIGHT_DECAY, lr_multipliers={r"svf_s$": 0.1})
            variables = [kernel, svf_s, unused]
            optimizer.build(variables)

        def step(x, y):
            with tf.GradientTape() as tape:
                error = tf.matmul(x, kernel) * svf_s - y
                loss = tf.reduce_sum(error**2) / 8.0  # global batch size
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))

        @tf.function
        def distributed_step(x, y):
            strategy.run(step, args=(x, y))

        dataset = tf.data.Dataset.from_tensor_slices(
            (inputs.reshape(24, 3), targets.reshape(24, 2))).batch(8)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Gradients do not exist")
            for x, y in strategy.experimental_distribute_dataset(dataset):
                distributed_step(x, y)
        return [v.numpy() for v in variables], int(optimizer.iterations.numpy())

    two = two_replica_strategy()
    assert two.num_replicas_in_sync == 2
    (kernel2, s2, unused2), iterations2 = train(two)
    (kernel1, s1, unused1), iterations1 = train(tf.distribute.get_strategy())
    assert iterations1 == iterations2 == 3
    np.testing.assert_allclose(kernel2, kernel1, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s2, s1, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(unused2, np.full((2,), 3.0))
    assert not np.allclose(kernel1, 0.5)


def test_building_inside_a_replica_function_is_refused_with_the_fix():
    strategy = two_replica_strategy()
    with strategy.scope():
        kernel = variable("head/kernel", np.ones((3, 2), np.float32))
        optimizer = TorchSGD(0.1)

    @tf.function
    def distributed_step():
        strategy.run(lambda: optimizer.apply_gradients([(tf.ones((3, 2)), kernel)]))

    with pytest.raises(ValueError, match=r"optimizer.build\(model.trainable_variables\)"):
        distributed_step()


def test_checkpoint_restores_momentum_and_iterations(tmp_path):
    values, steps = initial_values(), gradients()
    variables = make_variables(values)
    optimizer = TorchSGD(PolyDecay(0.05, total_steps=8), momentum=MOMENTUM,
                         weight_decay=WEIGHT_DECAY, lr_multipliers=RULES)
    run_keras(optimizer, variables, steps[:2])
    path = tf.train.Checkpoint(optimizer=optimizer, **{
        n.replace("/", "_"): v for n, v in variables.items()}).write(str(tmp_path / "ckpt"))
    uninterrupted = run_keras(optimizer, variables, steps[2:])

    restored_vars = make_variables({n: np.zeros_like(v) for n, v in values.items()})
    restored_opt = TorchSGD(PolyDecay(0.05, total_steps=8), momentum=MOMENTUM,
                            weight_decay=WEIGHT_DECAY, lr_multipliers=RULES)
    restored_opt.build(list(restored_vars.values()))
    tf.train.Checkpoint(optimizer=restored_opt, **{
        n.replace("/", "_"): v for n, v in restored_vars.items()}).read(path).assert_consumed()
    assert int(restored_opt.iterations) == 2
    resumed = run_keras(restored_opt, restored_vars, steps[2:])
    for name in SHAPES:
        np.testing.assert_array_equal(resumed[name], uninterrupted[name], err_msg=name)


def test_get_config_round_trip():
    optimizer = TorchSGD(PolyDecay(0.005, 100, scale=10.0), momentum=0.9, weight_decay=1e-4,
                         lr_multipliers={r"svf_s$": 0.1}, clipnorm=1.0)
    config = optimizer.get_config()
    assert config["weight_decay"] == 1e-4 and config["lr_multipliers"] == [["svf_s$", 0.1]]
    json.dumps(keras.saving.serialize_keras_object(optimizer))
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(optimizer))
    assert type(restored) is TorchSGD and restored.get_config() == config
    assert restored.weight_decay is None  # Keras' decoupled decay stays off
    with pytest.raises(ValueError, match="predicate"):
        TorchSGD(0.1, lr_multipliers={lambda v: True: 2.0}).get_config()


@pytest.mark.parametrize("kwargs, message", [
    (dict(momentum=1.0), "momentum=1.0"),
    (dict(weight_decay=-1e-4), "weight_decay=-0.0001"),
    (dict(lr_multipliers={3: 0.1}), "rule 3"),
    (dict(lr_multipliers={"x": -1.0}), "-1.0"),
    (dict(lr_multipliers=["x"]), "pair"),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TorchSGD(0.1, **kwargs)
