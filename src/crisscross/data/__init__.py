"""crisscross.data."""
