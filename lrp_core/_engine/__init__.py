"""Internal machinery of the engine (hooks, captured operations, rule mechanics)."""
