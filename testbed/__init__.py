"""Software-defined radio testbed for hybrid (distributed + centralized) training of a semantic codec."""

__version__ = "0.1.0"
