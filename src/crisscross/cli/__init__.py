"""crisscross.cli."""
