"""``testbed report``: one offline HTML page (and its PNGs) of a run directory.

``runs`` reads a run directory (``testbed compare``, ``testbed train`` or a BS state dir / ``testbed sim`` run)
into one shape, ``table`` summarises it against the target accuracy, ``figures`` draws, ``page`` writes the
page (``page.write_report``, the one entry point). Schemas read and figures drawn: docs/report.md.

Nothing is imported here, so ``table`` (which ``testbed compare`` uses) comes without matplotlib.
"""
