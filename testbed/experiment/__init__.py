"""experiment layer (see docs/architecture.md)."""
