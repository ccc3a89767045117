"""Frozen datasets: sources (generators and importers), manifests, verification, loading."""
