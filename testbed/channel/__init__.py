"""channel layer (see docs/architecture.md)."""
