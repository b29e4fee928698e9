"""`--mode=analyze`: figures of finished runs (svf_tf/analysis/analyze.py)."""

from svf_tf.analysis.analyze import analyze_runs


def analyze_mode(config, log=print):
    """`--mode=analyze` (svf_tf/cli/main.py): the figures of --analysis_figures."""
    return analyze_runs(config, log)
