"""crisscross.training."""
