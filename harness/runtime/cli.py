"""``sarbench images ...``: a click group for the main CLI to register (``main.add_command``).

A thin edge: it parses options, connects to the engine and calls :mod:`harness.runtime.images`.
"""

from __future__ import annotations

from pathlib import Path

import click

from harness.runtime.images import BASE_IMAGE, DEFAULT_MIRROR


@click.group()
def images() -> None:
    """Build and inspect the container images (offline: nothing is pulled)."""


@images.command("base")
@click.option("--name", default=BASE_IMAGE, show_default=True, help="Image name and tag.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the temporary root filesystem goes (about 400 MB) [default: system temp].",
)
@click.option("--mirror", default=DEFAULT_MIRROR, show_default=True, help="Debian mirror.")
@click.option("--rebuild", is_flag=True, help="Build again even if the image exists.")
@click.option(
    "--docker-host",
    metavar="URL",
    help="Engine address, like unix:///var/run/docker.sock [default: $DOCKER_HOST or that].",
)
def images_base(
    name: str, workdir: Path | None, mirror: str, rebuild: bool, docker_host: str | None
) -> None:
    """Build the Debian bookworm base image with debootstrap (needs root; about a minute).

    Does nothing when the engine already has the image. Prints the name and image ID.
    """
    from harness.runtime.docker_backend import connect
    from harness.runtime.images import build_base_image

    client = connect(docker_host)
    try:
        image_id = build_base_image(
            client,
            name,
            workdir=workdir,
            progress=lambda message: click.echo(message, err=True),
            mirror=mirror,
            rebuild=rebuild,
        )
    finally:
        client.close()
    click.echo(f"{name} {image_id}")


@images.command("torch")
@click.option("--rebuild", is_flag=True, help="Build again even if the image exists.")
@click.option("--docker-host", metavar="URL", help="Engine address.")
def images_torch(rebuild: bool, docker_host: str | None) -> None:
    """Build sarbench-torch:bookworm: the base image plus a CPU PyTorch (offline).

    The baselines' image builds on it where no registry is reachable; on a GPU machine, pass
    a CUDA PyTorch image as BASE_IMAGE instead (see the README).
    """
    from harness.runtime.builds import TORCH_IMAGE, build_torch_image
    from harness.runtime.docker_backend import connect

    client = connect(docker_host)
    try:
        image_id = build_torch_image(
            client, progress=lambda m: click.echo(m, err=True), rebuild=rebuild
        )
    finally:
        client.close()
    click.echo(f"{TORCH_IMAGE} {image_id}")


@images.command("build")
@click.argument("entry")
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY=VALUE")
@click.option("--docker-host", metavar="URL", help="Engine address.")
@click.pass_obj
def images_build(obj: object, entry: str, build_args: tuple[str, ...], docker_host: str | None):
    """Build ENTRY's image (a name in submissions/ or an entry file) with the network off."""
    from harness.entries import get_entry
    from harness.runtime.builds import ensure_entry_image, parse_build_args
    from harness.runtime.docker_backend import connect
    from harness.settings import Settings

    settings = obj if isinstance(obj, Settings) else Settings.load()
    chosen = get_entry(settings.submissions_dir, entry)
    args = parse_build_args(build_args)
    client = connect(docker_host)
    try:
        image_id = ensure_entry_image(
            client,
            chosen,
            build_args=args,
            progress=lambda m: click.echo(m, err=True),
            settings=settings,
        )
    finally:
        client.close()
    name = chosen.image.ref or f"{chosen.image.name}:{image_id.removeprefix('sha256:')[:12]}"
    click.echo(f"{name} {image_id}")


if __name__ == "__main__":  # python -m harness.runtime.cli base
    images()
