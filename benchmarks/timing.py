"""Timing and memory helpers: medians of interleaved rounds, peak memory of an isolated process."""

import concurrent.futures
import multiprocessing
import resource
import statistics
import time


def isolated(function, *args):
    """`function(*args)` in a fresh Python process, so that its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def peak_rss_mb():
    """This process's peak resident memory in MiB.

    Linux's VmHWM: `ru_maxrss` would carry over the peak of the process that
    started this one (it survives `exec`).
    """
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status
                        if line.startswith("VmHWM:")) / 1024.0
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_seconds(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_rounds(functions, repeats, warmup=2, pause=0.2):
    """Times every function once per round, round after round, after `warmup` calls each.

    Ratios taken within a round see the same machine load on both sides. A
    `pause` (seconds) before each call lets the threads of the previous one
    (TensorFlow's and PyTorch's pools spin before they sleep) go idle.

    Returns:
        A list of `repeats` dicts {name: seconds}.
    """
    for function in functions.values():
        for _ in range(warmup):
            function()
    rounds = []
    for _ in range(repeats):
        timing = {}
        for name, function in functions.items():
            time.sleep(pause)
            start = time.perf_counter()
            function()
            timing[name] = time.perf_counter() - start
        rounds.append(timing)
    return rounds


def round_medians(rounds):
    """{name: median seconds} over `rounds`."""
    return {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}


def round_ratio(rounds, a, b):
    """The median over `rounds` of the per-round ratio a / b."""
    return statistics.median(r[a] / r[b] for r in rounds)
