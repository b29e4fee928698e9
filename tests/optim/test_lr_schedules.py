"""Learning-rate schedules against their NumPy formulas (BAM/PFENet `poly_learning_rate`)."""

import json
import math

import keras
import numpy as np
import pytest

from svf_tf.optim.lr_schedules import (
    ConstantLearningRate,
    CosineAnnealing,
    PolyDecay,
    make_lr_schedule,
)

TOTAL = 10
STEPS = [0, 1, 4, 5, TOTAL - 2, TOTAL - 1, TOTAL, TOTAL + 3]


def values(schedule, steps=STEPS):
    return np.array([float(schedule(step)) for step in steps])


def test_constant():
    np.testing.assert_allclose(values(make_lr_schedule("constant", 0.015)), 0.015, rtol=1e-7)


def test_cosine_matches_formula_and_reaches_zero_after_the_last_step():
    expected = [0.5 * 0.015 * (1 + math.cos(math.pi * min(t, TOTAL) / TOTAL)) for t in STEPS]
    actual = values(make_lr_schedule("cosine", 0.015, TOTAL))
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-9)
    assert actual[0] == pytest.approx(0.015) and actual[-1] == pytest.approx(0.0, abs=1e-9)
    assert actual[STEPS.index(TOTAL - 1)] > 0  # the last update still moves


def test_poly_counts_iterations_from_one_and_ends_at_zero():
    expected = [10 * 0.005 * (1 - min(t + 1, TOTAL) / TOTAL) ** 0.9 for t in STEPS]
    actual = values(make_lr_schedule("poly", 0.005, TOTAL, scale=10.0))
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-9)
    assert actual[0] == pytest.approx(0.05 * 0.9**0.9)  # not the peak 0.05: it starts at 1
    assert actual[STEPS.index(TOTAL - 1)] == 0.0
    # Without scale it is the bare formula (the references' x10 must be asked for).
    np.testing.assert_allclose(values(PolyDecay(0.005, TOTAL)), actual / 10, rtol=1e-6)


def test_poly_power():
    actual = values(PolyDecay(0.1, TOTAL, power=2.0), [3])
    np.testing.assert_allclose(actual, [0.1 * (1 - 4 / TOTAL) ** 2], rtol=1e-6)


@pytest.mark.torch
def test_cosine_matches_torch_cosine_annealing_lr():
    torch = pytest.importorskip("torch")
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.015)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=TOTAL)
    torch_lrs = []
    for _ in range(TOTAL):  # the rate each update uses, then step the scheduler
        torch_lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(values(CosineAnnealing(0.015, TOTAL), range(TOTAL)), torch_lrs,
                               rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("schedule", [ConstantLearningRate(0.015), CosineAnnealing(0.015, 100),
                                      PolyDecay(0.005, 100, power=0.8, scale=10.0)])
def test_get_config_round_trip(schedule):
    serialized = keras.optimizers.schedules.serialize(schedule)
    json.dumps(serialized)
    restored = keras.optimizers.schedules.deserialize(serialized)
    assert type(restored) is type(schedule) and restored.get_config() == schedule.get_config()
    np.testing.assert_array_equal(values(restored), values(schedule))


@pytest.mark.parametrize("call, message", [
    (lambda: make_lr_schedule("step", 0.1, 10), "'step' is not one of"),
    (lambda: make_lr_schedule("cosine", 0.1), "needs total_steps"),
    (lambda: make_lr_schedule("constant", 0.1, scale=10), "no extra arguments"),
    (lambda: PolyDecay(0.1, 0), "total_steps=0"),
    (lambda: CosineAnnealing(-0.1, 10), "initial_learning_rate=-0.1"),
])
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
