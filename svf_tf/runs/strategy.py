"""The `tf.distribute` strategy of a run, by name.

A multi-worker strategy starts by registering every worker of `TF_CONFIG`
with TensorFlow's coordination service (hosted by the chief). TensorFlow
2.21 waits for a missing worker up to an hour by default and, on the chief,
has no deadline at all unless registration is a barrier; `join_cluster`
configures the service (the configuration `MultiWorkerMirroredStrategy`
itself would make) with the registration barrier and `--worker_timeout`,
so a worker that cannot reach the others stops with one line
(`WorkerTimeoutError`) instead of hanging. No public API sets these
(`tf.distribute.experimental.CommunicationOptions.timeout_seconds` bounds
collectives, which start only after registration), hence TensorFlow's
`context.configure_coordination_service`. A worker that dies later is
detected by the same service's heartbeats (TensorFlow's 10 s default).
"""

import contextlib
import json
import os
import re

import tensorflow as tf

from svf_tf.constants import DISTRIBUTION_STRATEGIES as STRATEGIES


class WorkerTimeoutError(ValueError):
    """A worker of the job did not join the cluster within the timeout."""


def make_strategy(name, worker_timeout=600):
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
    `MultiWorkerMirroredStrategy` configured by `TF_CONFIG`, whose workers
    must all start within `worker_timeout` seconds (`join_cluster`).
    "default": no distribution (easiest to debug).
    """
    if name == "auto":
        several_gpus = len(tf.config.list_logical_devices("GPU")) > 1
        return tf.distribute.MirroredStrategy() if several_gpus else tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        check_tf_config(os.environ.get("TF_CONFIG"))
        return join_cluster(worker_timeout)
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"strategy={name!r} is not accepted: use one of {STRATEGIES}.")


def run_strategy(config):
    """`make_strategy` of an `ExperimentConfig`'s --strategy and --worker_timeout."""
    return make_strategy(config.run.strategy, config.run.worker_timeout)


def in_scope(strategy):
    """`strategy.scope()`, or no scope for None (variables made there are the strategy's)."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()


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


def join_cluster(timeout):
    """`MultiWorkerMirroredStrategy()` whose start-up gives up after `timeout` seconds.

    Raises:
        WorkerTimeoutError: (one line) a worker of `TF_CONFIG` did not register
            in time: the chief names the missing workers and their addresses,
            another worker names the chief it could not reach.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster = resolver.cluster_spec().as_dict()
    if not resolver.task_type:  # no TF_CONFIG: a single worker, nothing to wait for
        return tf.distribute.MultiWorkerMirroredStrategy()
    leader = multi_worker_util.coordination_leader(resolver.cluster_spec())
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=leader,
        cluster_register_timeout_in_ms=int(timeout * 1000),
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=job,
                                                                 num_tasks=len(cluster[job]))
                          for job in ("chief", "worker") if job in cluster])
    # Registration waits for every worker (on the chief too), then fails together.
    context.context().coordination_service.cluster_register_with_barrier = True
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError) as error:
        raise WorkerTimeoutError(_unreachable_message(error.message, cluster, leader,
                                                      timeout)) from None


_TASK = re.compile(r"/job:(\w+)/replica:0/task:(\d+)")


def _unreachable_message(text, cluster, leader, timeout):
    """One line naming the workers that did not register (the leader's view) or the leader."""
    stragglers = text.split("timed out task names:", 1)[1].split("\n\n", 1)[0] \
        if "timed out task names:" in text else leader
    missing = _TASK.findall(stragglers)
    names = ", ".join(f"{job} {index} ({cluster[job][int(index)]})" for job, index in missing
                      if job in cluster and int(index) < len(cluster[job]))
    return (f"TF_CONFIG's {names or leader} did not join this multi-worker job within "
            f"--worker_timeout={timeout:g} s: start every worker of TF_CONFIG with the same "
            "flags (only the task index differs), check its address and port are reachable "
            "from this host, or raise --worker_timeout.")
