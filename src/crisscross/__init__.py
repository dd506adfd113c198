"""crisscross: train, evaluate and benchmark spatio-temporal attention models of human motion.

Tensor shape letters used across the package:
    B batch, T frames, J joints, C channels (3 for xyz), D model width, H heads.

Conventions:
    * Poses live in millimetres in data and metrics; models see metres (positions / 1000),
      root-relative, on the predicted joint subset of the skeleton.
    * Importing any module has no side effects beyond filling the model registry.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
