"""Running entries in containers: the container contract of docs/contract.md.

- :mod:`~harness.runtime.limits`: the resource limits of one phase.
- :mod:`~harness.runtime.phase`: mounts, their ``SARBENCH_*`` variables, the phase result.
- :mod:`~harness.runtime.docker_backend`: one phase as one locked-down container.
- :mod:`~harness.runtime.local_backend`: one phase as a subprocess (debugging, unisolated).
- :mod:`~harness.runtime.images`: the offline base image, derived images, image IDs.
- :mod:`~harness.runtime.cli`: the ``sarbench images`` commands.

Importing this package imports neither the Docker SDK nor anything that talks to an engine.
"""
