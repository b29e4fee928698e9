"""The training loop and the run directory: checkpoints, run files, restore, strategies."""
