"""SARBench harness: trusted code that freezes data, runs entries and scores them."""

__version__ = "0.1.0"
