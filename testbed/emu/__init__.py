"""emu layer (see docs/architecture.md)."""
