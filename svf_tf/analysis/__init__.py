"""Figures of finished runs (`--mode=analyze`, scripts/analyze_run.py): what SVF did.

- `svf_layers`: the SVF layers of a model by path, stage and conv kind; S.
- `singular_value_change`: S0 vs S per layer (the JSON of the charts).
- `singular_value_figures`: one layer (paper Fig. 4), a stage's grid
  (Figs. 8-11), the overview across the backbone.
- `cue_maps`: U-subspace cue maps of the most grown and shrunk directions
  (Figs. 5-6).
- `run_curves`: per-epoch mIoU of several runs (Figs. 2, 3, 7).
- `gallery`: the same test episodes segmented by several runs.
- `figure_style`: the Agg canvas, the colour-blind-safe palette, saving.
- `run_source`, `svf_figures`, `analyze`: reading runs and writing the
  files into `<run>/analysis/`.
"""
