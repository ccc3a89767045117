"""Running plans on a Ray cluster (``sarbench run --executor ray``).

- :mod:`harness.cluster.ray_executor`: the driver's side. It submits each run of a plan as
  a Ray task asking for the profile's resources, and writes each record the nodes send back
  into the home, atomically, never over an existing one.
- :mod:`harness.cluster.node`: what a task does on the node it lands on: probe the node's
  conditions, verify its copy of the data against the driver's committed manifest, run the
  same runner as on one machine in a scratch folder of its own, and send the record and the
  run folder's files back as data (a cluster may share no filesystem).
- :mod:`harness.cluster.resources`: what a run asks of the cluster (CPUs; one GPU of the
  profile's model, by Ray's accelerator type) and which GPU Ray gave it (by UUID).
- :mod:`harness.cluster.transfer`: a run folder as bytes and back, and how the driver
  installs one into the home.

Ray is imported only when the Ray executor runs (``pip install 'sarbench[cluster]'``).
How to run on KubeRay or Slurm, and where records, data and MLflow live: ``docs/scale.md``.
"""
