"""State the code location is built from, refreshed on purpose rather than at every load."""
