"""Fabrication and lab export of a chip design (height maps, GDSII, SLM bitmaps, sheet).

Main entry points: :func:`export_design` (one folder, written atomically) and
:func:`load_design` (read it back). See docs/export.md.
"""

from lightgen.export.bundle import (
    FORMATS,
    ExportReport,
    LoadedDesign,
    export_design,
    load_design,
    parse_formats,
)
from lightgen.export.gds import GdsReport, read_gds_levels, write_metasurface_gds
from lightgen.export.heightmap import read_map, write_map
from lightgen.export.lut import MetasurfaceLUT, default_lut, load_lut
from lightgen.export.slm import SlmLUT, read_slm_bitmap, write_slm_bitmap

__all__ = [
    "FORMATS",
    "ExportReport",
    "GdsReport",
    "LoadedDesign",
    "MetasurfaceLUT",
    "SlmLUT",
    "default_lut",
    "export_design",
    "load_design",
    "load_lut",
    "parse_formats",
    "read_gds_levels",
    "read_map",
    "read_slm_bitmap",
    "write_map",
    "write_metasurface_gds",
    "write_slm_bitmap",
]
