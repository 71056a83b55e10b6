"""radio layer (see docs/architecture.md)."""
