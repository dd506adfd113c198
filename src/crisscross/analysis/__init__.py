"""crisscross.analysis."""
