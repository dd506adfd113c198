"""Run storage: run folders (layout, status, discovery) and self-describing checkpoints, and loading a model back."""
