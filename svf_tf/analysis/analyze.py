"""`--mode=analyze`: the figures of one or more finished runs, and the JSON they are drawn from.

The first run is `--work_dir` (its checkpoint: `--checkpoint` or its best),
the others `--analysis_runs` (their best checkpoints). Each SVF run gets its
own singular-value figures and cue maps in `<run>/analysis/`
(`svf_tf.analysis.svf_figures`); the figures that compare runs, curves.png
and gallery.png (with curves.json and gallery.json), go to the first run's
`analysis/`. A figure that cannot be drawn for a run (not SVF, no history,
no dataset, other episodes) is skipped with one line saying why.
"""

import os

from svf_tf.analysis.gallery import episode_iou, plot_gallery, predicted_labels
from svf_tf.analysis.run_curves import plot_run_curves, read_history, run_curve_row
from svf_tf.analysis.run_source import RunSource, recorded_config
from svf_tf.analysis.svf_figures import display_images, svf_run_figures
from svf_tf.runs.run_files import write_json

#: Settings that must agree for runs to be shown on the same test episodes.
_EPISODE_SETTINGS = (("data", "dataset"), ("data", "synthetic"), ("data", "fold"),
                     ("data", "shot"))


def dataset_missing(config):
    """Why the run's test episodes cannot be read (one line), or None."""
    data = config.data
    if data.synthetic:
        return None
    if not data.data_root or not os.path.isdir(data.data_root):
        return (f"the dataset is not there (--data_root={data.data_root!r}); give "
                "--data_root, or ask only for --analysis_figures=singular_values,curves")
    return None


def other_episodes(sources):
    """Why the runs cannot share test episodes (one line), or None."""
    first = sources[0].config
    for source in sources[1:]:
        for group, field in _EPISODE_SETTINGS:
            mine, theirs = (getattr(getattr(c, group), field) for c in (first, source.config))
            if mine != theirs:
                return (f"{source.name} has --{field}={theirs}, {sources[0].name} "
                        f"--{field}={mine}: not the same test episodes")
    return None


def write_curves(sources, out_dir, log):
    """curves.png and curves.json of every run that has a history; their paths."""
    rows = []
    for source in sources:
        try:
            history = read_history(source.run_dir)
        except FileNotFoundError as error:
            log(f"skipped the curves of {source.name}: {error}")
            continue
        row = run_curve_row(source.name, source.label, history)
        if row["train_key"] is None:
            log(f"{source.name} recorded no training mIoU (a run of an older svf-tf): only its "
                "validation curve is drawn.")
        rows.append(row)
    if not rows:
        return []
    json_path, png = os.path.join(out_dir, "curves.json"), os.path.join(out_dir, "curves.png")
    write_json(json_path, {"runs": [{"run_dir": s.run_dir} for s in sources], "rows": rows})
    plot_run_curves(rows, png)
    return [json_path, png]


def gallery_episodes(sources, count):
    """The first `count` test episodes of the first run, segmented by every run."""
    config = sources[0].config
    dataset, episode_file = sources[0].task().test_dataset(config.data.eval_seeds[0])
    predicts = [source.task().make_predict_fn(source.model()[0]) for source in sources]
    episodes = []
    for index, element in enumerate(dataset.take(count)):
        truth = element["original_mask"].numpy()
        predictions = [predicted_labels(predict(element["query_image"],
                                                element["support_images"],
                                                element["support_masks"]), truth)
                       for predict in predicts]
        scores = [episode_iou(p, truth[0]) for p in predictions]
        episodes.append({
            "index": index, "query_path": element["query_path"].numpy()[0].decode(),
            "support": display_images(element["support_images"][0, 0].numpy()),
            "support_mask": element["support_masks"][0, 0].numpy(),
            "query": display_images(element["query_image"][0].numpy()),
            "truth": truth[0], "predictions": predictions,
            "ious": [score[0] for score in scores],
            "counts": [{"intersection": s[1], "union": s[2]} for s in scores]})
    return episodes, episode_file


def write_gallery(sources, count, out_dir):
    """gallery.png and gallery.json; their paths."""
    episodes, episode_file = gallery_episodes(sources, count)
    json_path, png = os.path.join(out_dir, "gallery.json"), os.path.join(out_dir, "gallery.png")
    write_json(json_path, {
        "episode_file": episode_file,
        "runs": [{"run_dir": s.run_dir, "label": s.label,
                  "checkpoint": s.model()[1]} for s in sources],
        "episodes": [{"index": e["index"], "query": e["query_path"],
                      "iou": e["ious"], "counts": e["counts"]} for e in episodes]})
    plot_gallery(episodes, [f"{s.label}\n({s.name})" for s in sources], png)
    return [json_path, png]


def analyze_runs(config, log=print):
    """Writes the figures of `config.analysis` (module docstring); returns the paths written."""
    analysis = config.analysis
    sources = [RunSource(config, config.checkpoint.checkpoint, log)]
    sources += [RunSource(recorded_config(path), None, log) for path in analysis.analysis_runs]
    figures = analysis.analysis_figures
    written = []
    for source in sources:
        own = figures
        if "cue_maps" in figures and source.is_svf and dataset_missing(source.config):
            log(f"skipped the cue maps of {source.name}: {dataset_missing(source.config)}.")
            own = tuple(f for f in figures if f != "cue_maps")
        written += svf_run_figures(source, own, analysis, log)
    out_dir = sources[0].analysis_dir
    os.makedirs(out_dir, exist_ok=True)
    if "curves" in figures:
        written += write_curves(sources, out_dir, log)
    if "gallery" in figures:
        reason = dataset_missing(config) or other_episodes(sources)
        if reason:
            log(f"skipped the gallery: {reason}.")
        else:
            written += write_gallery(sources, analysis.analysis_episodes, out_dir)
    for path in written:
        log(f"wrote {path}")
    return written
