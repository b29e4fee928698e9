"""One SVF run's singular-value figures and cue maps, written into `<run>/analysis/`.

Files: singular_values.json (every SVF layer's record,
`svf_tf.analysis.singular_value_change`), sv_<layer>.png per chosen layer,
sv_grid_layer<N>_3x3.png and sv_grid_layer<N>_1x1.png (stage N's convs,
when it has SVF layers of that kind), sv_overview.png; cue_maps.json and
cue_maps_<layer>.png per chosen layer (`svf_tf.analysis.cue_maps`).
"""

import os

import numpy as np

from svf_tf.analysis import cue_maps as cues
from svf_tf.analysis.singular_value_change import growth_and_reduction, singular_value_change
from svf_tf.analysis.singular_value_figures import (
    plot_layer_change,
    plot_overview,
    plot_stage_grid,
    short_name,
)
from svf_tf.analysis.svf_layers import (
    SVFLayerInfo,
    default_layers,
    resolve_layer,
    singular_values,
    stage_layers,
)
from svf_tf.data.transforms.presets import IMAGENET_MEAN, IMAGENET_STD
from svf_tf.runs.run_files import write_json


def _json(path, data):
    write_json(path, data)
    return path


def chosen_layers(infos, names):
    """The paths of `names` (default: the paper's two layers); unknown names raise ValueError."""
    paths = [info.path for info in infos]
    return [resolve_layer(name, paths) for name in names] if names else default_layers(infos)


def write_singular_value_figures(change, layers, stage, out_dir):
    """The charts of the module docstring from a `singular_value_change` result; their paths."""
    records = {record["path"]: record for record in change["layers"]}
    written = [_json(os.path.join(out_dir, "singular_values.json"), change)]
    for path in layers:
        png = os.path.join(out_dir, f"sv_{short_name(path)}.png")
        plot_layer_change(records[path], png)
        written.append(png)
    infos = [SVFLayerInfo(r["path"], r["stage"], r["kind"], None) for r in change["layers"]]
    for kind in ("3x3", "1x1"):
        paths = stage_layers(infos, stage, kind)
        if paths:
            png = os.path.join(out_dir, f"sv_grid_layer{stage}_{kind}.png")
            plot_stage_grid([records[p] for p in paths],
                            f"change of the initial top-{change['top']} singular values, "
                            f"{kind} convs of layer{stage}", png)
            written.append(png)
    png = os.path.join(out_dir, "sv_overview.png")
    plot_overview(change["layers"], png)
    written.append(png)
    return written


def display_images(normalized):
    """Normalised images [N, H, W, 3] back to 0..1 RGB for display."""
    image = np.asarray(normalized) * np.asarray(IMAGENET_STD) + np.asarray(IMAGENET_MEAN)
    return np.clip(image / 255.0, 0.0, 1.0)


def test_queries(task, count):
    """The first `count` query images of the run's test episodes (first eval seed)."""
    dataset, _ = task.test_dataset(task.config.data.eval_seeds[0])
    images = [element["query_image"][0].numpy() for element in dataset.take(count)]
    return np.stack(images)


def write_cue_maps(model, infos, change, layers, images, out_dir):
    """cue_maps_<layer>.png per layer and cue_maps.json; returns the paths written."""
    records = {record["path"]: record for record in change["layers"]}
    by_path = {info.path: info for info in infos}
    data, written = {"quantity": "|u_k . (y - b)| (svf_tf/analysis/cue_maps.py)",
                     "layers": []}, []
    pictures = display_images(images)
    for path in layers:
        record = records[path]
        growth, reduction = growth_and_reduction(record)
        responses, maps = cues.compute_cue_maps(model, by_path[path], images,
                                                [reduction, growth])
        png = os.path.join(out_dir, f"cue_maps_{short_name(path)}.png")
        cues.plot_cue_maps(pictures, maps, cues.direction_labels(record, growth, reduction),
                           cues.cue_title(record), png)
        written.append(png)
        data["layers"].append({"path": path, "reduction_direction": reduction,
                               "growth_direction": growth,
                               "responses": {"reduction": responses[..., 0].tolist(),
                                             "growth": responses[..., 1].tolist()}})
    written.insert(0, _json(os.path.join(out_dir, "cue_maps.json"), data))
    return written


def svf_run_figures(source, figures, analysis, log=print):
    """The singular-value figures and cue maps among `figures` for one run.

    Args:
        source: the run (`svf_tf.analysis.run_source.RunSource`).
        figures: the figure names asked for (others are ignored here).
        analysis: the `AnalysisConfig` (layers, stage, number of images).
        log: callable taking one line of text.

    Returns:
        The paths written; [] with one line when the run is not SVF.
    """
    wanted = [f for f in ("singular_values", "cue_maps") if f in figures]
    if not wanted:
        return []
    if not source.is_svf:
        log(f"skipped {' and '.join(wanted)} of {source.name}: it fine-tunes with "
            f"--finetune={source.config.finetune.mode}, which has no singular values to chart "
            "(only --finetune=svf runs do).")
        return []
    model, checkpoint, infos, initial = source.model()
    layers = chosen_layers(infos, analysis.analysis_layers)
    change = singular_value_change(infos, initial, singular_values(infos))
    change["checkpoint"] = checkpoint
    os.makedirs(source.analysis_dir, exist_ok=True)
    written = []
    if "singular_values" in wanted:
        written += write_singular_value_figures(change, layers, analysis.analysis_stage,
                                                source.analysis_dir)
    if "cue_maps" in wanted:
        images = test_queries(source.task(), analysis.analysis_images)
        written += write_cue_maps(model, infos, change, layers, images, source.analysis_dir)
    return written
