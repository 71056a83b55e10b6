"""The PHY laboratory: the real receiver measured on simulated links (``testbed phy ber|loss|bench|table``).

``link`` puts one frame through the channel models and the receiver; ``ber`` sweeps PER/BER against SNR and
finds the 10% crossings with ``crossing``'s paired fit, against ``genie``'s perfect-CSI reference; ``sync``
measures detection, false alarms, CFO and clock offset; ``bench`` times the modem on one core; ``targets``
checks the figures against issue 2's targets; ``plot`` draws the figure; ``table`` measures the PER table and
EESM betas of the PHY abstraction (testbed/link/abstraction.py). See docs/phy.md, docs/channel.md, docs/link.md.
"""
