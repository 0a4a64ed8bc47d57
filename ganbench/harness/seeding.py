"""Seeding and capturing every RNG: :mod:`ganbench.seeding`, re-exported for the harness."""

from ganbench.seeding import capture_rng, restore_rng, seed_everything

__all__ = ["capture_rng", "restore_rng", "seed_everything"]
