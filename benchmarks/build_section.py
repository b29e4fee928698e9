"""The build section: decomposing every conv of ResNet-50."""

from benchmarks.timing import median_seconds, peak_rss_mb


def build_worker(repeats):
    import keras

    import svf_tf

    model = keras.applications.ResNet50(weights=None, include_top=False,
                                        input_shape=(473, 473, 3))
    seconds = median_seconds(lambda: svf_tf.apply_svf(model), max(1, repeats // 2), warmup=0)
    return {"section": "build", "seconds": seconds, "convs": 53, "peak_rss_mb": peak_rss_mb()}
