"""crisscross.config."""
