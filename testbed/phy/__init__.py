"""phy layer (see docs/architecture.md)."""
