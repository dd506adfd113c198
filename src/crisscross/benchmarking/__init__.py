"""crisscross.benchmarking."""
