# The baseline image: every baseline (threshold, UNet, Prithvi, pix2pix) in one image, run as
# `python -m baselines train|predict` under the container contract (docs/contract.md).
#
# BASE_IMAGE must provide Python 3 with PyTorch on PATH as `python`:
# - on a GPU machine with a registry: a CUDA PyTorch image (the default below), with
#   `--build-arg PIP_OPTS=` so that pip may fetch numpy/rasterio from PyPI;
# - offline (CI, the demo): `sarbench-torch:bookworm`, which `sarbench images torch` builds;
#   the wheels of baselines/requirements-image.txt are downloaded into wheels/ on the host.
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE_IMAGE}
ARG PIP_OPTS="--no-index --find-links /wheels"
COPY wheels/ /wheels/
COPY baselines/requirements-image.txt /tmp/requirements-image.txt
RUN python -m pip install --no-cache-dir ${PIP_OPTS} -r /tmp/requirements-image.txt \
 && rm -rf /wheels /tmp/requirements-image.txt
# sarbench_io: the dataset layout, GeoTIFFs and the contract's mounts (numpy + rasterio
# only), the same code the harness reads the data with. Nothing else of the harness.
COPY sarbench_io/ /app/sarbench_io/
COPY baselines/ /app/baselines/
ENV PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1 USER=sarbench
WORKDIR /app
ENTRYPOINT ["python", "-m", "baselines"]
