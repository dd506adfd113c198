"""Benchmarks of the models and the training step.

:mod:`.bench` runs the ``crisscross bench`` sweep and :mod:`.table` writes and prints its rows; :mod:`.timing` and
:mod:`.flops` measure time, memory and FLOPs; :mod:`.profile` splits one training step into phases; :mod:`.engine`
builds the training step's loss as the engine does, so every benchmark times the engine's own step.
"""
