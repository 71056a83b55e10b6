"""Link layer: the PHY and a medium joined into a reliable, measured pipe (see docs/link.md).

Entry points: ``arq.broadcast`` / ``arq.uplink`` (``LinkConfig``, ``TransferReport``), the halves
``repeat.ObjectSender`` / ``repeat.Reassembler``, control structs in ``messages``, media in ``medium``,
``phylink`` and ``radiomedium``, gradient codecs in ``compress``, the PHY abstraction (PER table, EESM) of
the model medium in ``abstraction``.
"""
