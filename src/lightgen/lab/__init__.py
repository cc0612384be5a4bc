"""From simulation to the lab: a lab interface (simulated and folder backends), twin
calibration from measured frames, and physics-aware training (docs/lab.md)."""
