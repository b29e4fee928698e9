"""The SVF paper's fine-tuning comparison, replicated on the built-in synthetic dataset.

Tables 5, 6 and 8 of the SVF paper compare, on its baseline, a frozen
backbone, fine-tuning whole stages or one kind of convolution, and SVF of
different stages; Figures 2, 3 and 7 show why with training and test mIoU
curves. `scripts/replicate_finetuning.py` runs those settings here over
several seeds:

- `settings_table`: the rows (each tied to its flagfile in `configs/`) and
  the experiment of one run;
- `runner`: one resumable training run per (setting, seed);
- `results`: per-run numbers, mean and standard deviation over seeds, the
  table;
- `curves`: the figure of per-epoch base- and novel-class mIoU.
"""
