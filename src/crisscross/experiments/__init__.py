"""crisscross.experiments."""
