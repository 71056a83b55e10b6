"""learning layer (see docs/architecture.md)."""
