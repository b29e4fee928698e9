"""Few-shot episodes: sampling, saved test episodes, and loading an episode into arrays."""
