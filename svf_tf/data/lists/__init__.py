"""Dataset lists: class splits, list files, per-fold lists and support pools, base annotations."""
