"""svf-tf: Singular Value Fine-tuning (SVF) for few-shot segmentation in Keras."""

__version__ = "0.1.0"
