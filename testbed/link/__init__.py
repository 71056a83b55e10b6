"""Link layer: the PHY and a medium joined into a reliable, measured pipe (see docs/link.md).

The one link engine: ``endpoints.Outbound`` / ``endpoints.Inbound`` (no I/O, clock passed in) with
``placement.BurstPlanner``; the daemons drive them over radios and the control plane, ``arq.run_transfer``
(``broadcast`` / ``uplink``, ``LinkConfig``, ``TransferReport``) over a ``framelink.FrameLink`` in one
process. Control structs in ``messages``, media in ``medium``, ``phylink`` and ``radiomedium``, gradient
codecs in ``compress``, the PHY abstraction (PER table, EESM) of the model medium in ``abstraction``.
"""
