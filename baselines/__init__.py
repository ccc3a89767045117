"""Reference entries run through the container contract (see README.md)."""
