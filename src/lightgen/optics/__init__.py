"""Physics only, no training code: grids and fields, free-space propagation,
elements, materials, fabrication, devices (SLM, DMD, camera) and single-mode fibers."""

from lightgen.optics.grid import Field, Grid, as_field, intensity, power
from lightgen.optics.propagation import (
    FocalPlane,
    FreeSpace,
    fraunhofer_lens,
    plan_propagation,
    propagate,
)

__all__ = [
    "Field",
    "FocalPlane",
    "FreeSpace",
    "Grid",
    "as_field",
    "fraunhofer_lens",
    "intensity",
    "plan_propagation",
    "power",
    "propagate",
]
