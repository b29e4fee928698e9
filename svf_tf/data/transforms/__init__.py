"""Image and label transforms with the references' semantics: training chain, test resize."""
