"""crisscross.evaluation."""
