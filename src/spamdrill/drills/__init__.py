"""Drills: scenarios as data, faults (the nemesis), protocol-level fakes, and the runner."""
