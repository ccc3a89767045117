"""Identical conditions: conditions profiles (:mod:`.profiles`) and the machine probe
(:mod:`.probe`) that records what a run saw and refuses a mismatch."""
