"""Recordings as other tools write them (the sigmf library, no testbed metadata)."""

import numpy as np
import sigmf


def write_foreign(stem, iq, datatype, rate=2.5e6, freq=2.4e9, peak=0.9):
    """Write ``iq`` as another tool would: the sigmf library, the datatype's own full scale, no testbed:scale.
    Integer datatypes get the samples scaled to ``peak`` of full scale; returns the values the file holds
    in full-scale units."""
    kind, _, order = datatype.partition("_")
    end = ">" if order == "be" else "<"
    if kind == "cf32":
        data, held = iq.astype(f"{end}c8"), iq.astype(np.complex64)
    else:
        bits = 16 if kind == "ci16" else 8
        full = 2.0 ** (bits - 1)
        gain = peak / max(np.abs(iq.real).max(), np.abs(iq.imag).max())
        parts = np.clip(np.round(np.stack([iq.real, iq.imag], -1) * gain * full), -full, full - 1)
        data = parts.astype(f"{end}i{bits // 8}")
        held = (parts[:, 0] + 1j * parts[:, 1]) / full
    data.tofile(f"{stem}.sigmf-data")
    meta = sigmf.SigMFFile(
        data_file=f"{stem}.sigmf-data", global_info={"core:datatype": datatype, "core:sample_rate": rate}
    )
    meta.add_capture(0, metadata={"core:frequency": freq})
    meta.tofile(f"{stem}.sigmf-meta")
    return held
