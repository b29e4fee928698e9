"""The built-in synthetic dataset in Pascal layout: generator, scenes and shortcut baselines."""
