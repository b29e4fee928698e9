"""Weight files: pretrained backbones by name or path, and BAM's stage-1 base learner."""
