"""link layer (see docs/architecture.md)."""
