"""The `tf.distribute` strategy of a run, by name."""

import json
import os

import tensorflow as tf

from svf_tf.constants import DISTRIBUTION_STRATEGIES as STRATEGIES


def make_strategy(name):
    """The strategy named `name` (`--strategy`).

    "auto" (the default): `MirroredStrategy` over the local GPUs when there
    are two or more, otherwise TensorFlow's default strategy. With one
    device the two give the same numbers (the step's loss and gradients do
    not depend on the replica count, `Task.make_train_step`), but
    `MirroredStrategy` adds per-step work for its single replica (the
    replica function, cross-replica reductions, mirrored variables and
    distributed input) that one device does not need.
    "mirrored": `MirroredStrategy` always, every local GPU or the CPU when
    there is none (one replica on the CPU). "multi_worker":
    `MultiWorkerMirroredStrategy` configured by `TF_CONFIG`. "default": no
    distribution (easiest to debug).
    """
    if name == "auto":
        several_gpus = len(tf.config.list_logical_devices("GPU")) > 1
        return tf.distribute.MirroredStrategy() if several_gpus else tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        check_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"strategy={name!r} is not accepted: use one of {STRATEGIES}.")


def is_chief(strategy):
    """Whether this process writes the run directory: always, except on a non-chief worker.

    MultiWorkerMirroredStrategy: the "chief" task, or worker 0 when the
    cluster has no chief (TensorFlow's convention).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


_TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                      '"task": {"type": "worker", "index": 0}}')


def check_tf_config(text):
    """Raises ValueError (one line) unless `text` is a usable multi-worker TF_CONFIG.

    Unset means a single worker (TensorFlow's default). Otherwise: JSON with a
    "cluster" of "chief"/"worker" address lists and this process's "task"
    (type and index) in it.
    """
    if not text:
        return
    fix = f"set TF_CONFIG to JSON such as {_TF_CONFIG_EXAMPLE}, with this worker's index"
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ValueError(f"TF_CONFIG is not JSON ({error}): {fix}.") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not any(
            isinstance(cluster.get(job), list) and cluster[job] for job in ("chief", "worker")):
        raise ValueError(f"TF_CONFIG has no \"cluster\" with \"worker\" addresses: {fix}.")
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError(f"TF_CONFIG has no \"task\" with \"type\" and \"index\": {fix}.")
    addresses = cluster.get(task["type"])
    index = task["index"]
    if not isinstance(addresses, list) or not isinstance(index, int) or not (
            0 <= index < len(addresses)):
        raise ValueError(
            f"TF_CONFIG's task {task['type']!r} {index!r} is not in its cluster "
            f"({ {job: len(a) for job, a in cluster.items() if isinstance(a, list)} } tasks): "
            "give each worker its own index, 0 to the number of workers - 1.")
