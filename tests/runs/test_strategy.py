"""`make_strategy`: the `--strategy` names."""

import pytest
import tensorflow as tf

from svf_tf.config.experiment import ExperimentConfig
from svf_tf.runs.strategy import make_strategy


def test_auto_is_the_default_setting():
    assert ExperimentConfig.from_settings().run.strategy == "auto"


def test_auto_on_one_device_is_tensorflows_default_strategy():
    # conftest splits the CPU into two logical CPUs; "auto" mirrors over GPUs only.
    if len(tf.config.list_logical_devices("GPU")) > 1:
        pytest.skip("several GPUs: auto is MirroredStrategy here")
    strategy = make_strategy("auto")
    assert strategy is tf.distribute.get_strategy()
    assert not isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == 1


def test_unknown_name_is_a_one_line_error():
    with pytest.raises(ValueError, match="strategy='mirror' is not accepted: use one of"):
        make_strategy("mirror")
