"""Hostile entries that attack the harness while their image is prepared (issue 11, classes
1-4 and 8): requirements that would run code or fetch URLs on the host, build contexts that
reach the data, images that borrow another entry's, builds that fetch from the network, and
entries posing as baselines. Each is refused before anything runs, naming the file and the
line, through the real `sarbench run` against a real engine; no run folder, no request to
the local HTTP server, no file outside the entry's folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from harness.entries import get_entry
from harness.runner.run import run_one
from harness.runtime.builds import _unprivileged, download_wheels
from harness.runtime.errors import ImageBuildError
from harness.settings import REPO_ROOT, Settings
from tests.http_recorder import recording_server
from tests.runner_support import cli, make_bench, make_ctx

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.docker_support"]

ENTRY = """
name = "{name}"
team = "red team"
contact = "nobody@example.org"
tasks = ["flood"]
datasets = ["tiny"]
[image]
{image}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[str]]]:
    with recording_server() as recorded:
        yield recorded


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Settings:
    return make_bench(tmp_path_factory.mktemp("hostile-build"))


def _entry(bench: Settings, name: str, image: str, files: dict[str, str]) -> None:
    folder = bench.submissions_dir / name
    folder.mkdir(exist_ok=True)
    for rel, text in files.items():
        (folder / rel).write_text(text)
    (bench.submissions_dir / f"{name}.toml").write_text(ENTRY.format(name=name, image=image))


def _refused(bench: Settings, name: str, *phrases: str) -> str:
    before = sorted(bench.runs_dir.iterdir()) if bench.runs_dir.exists() else []
    result = cli(bench, "run", name, "--dataset", "tiny", "--profile", "test")
    assert result.exit_code == 2, result.output
    for phrase in phrases:
        assert phrase in result.output, result.output
    after = sorted(bench.runs_dir.iterdir()) if bench.runs_dir.exists() else []
    assert after == before  # nothing recorded, nothing started
    return result.output


DOCKERFILE = 'FROM sarbench-base:bookworm\nCOPY . /app\nENTRYPOINT ["python3"]\n'


# -- 1: nothing an entry controls executes on the host ----------------------------------


def test_requirement_options_urls_and_paths_are_refused(bench: Settings, server) -> None:
    url, hits = server
    marker = bench.submissions_dir / "pwned"
    _entry(
        bench,
        "pipopts",
        'context = "pipopts"\nrequirements = "requirements.txt"',
        {
            "Dockerfile": DOCKERFILE,
            "requirements.txt": (
                "numpy>=2\n"
                f"--index-url {url}/simple\n"
                "--no-binary :all:\n"
                f"--find-links {url}/links\n"
                "evil @ file:///tmp/evil.tar.gz\n"
                "./evil-sdist\n"
            ),
        },
    )
    out = _refused(
        bench,
        "pipopts",
        "requirements.txt",
        "line 2",
        "pip options are not allowed",
        "line 5",
        "line 6",
        "URLs and local paths are not allowed",
    )
    assert "line 1" not in out  # the plain requirement is fine
    assert hits == [] and not marker.exists()


def test_wheels_are_downloaded_by_an_unprivileged_user(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    prefix = _unprivileged(tmp_path, folder)
    if os.geteuid() != 0:
        assert prefix == []
        return
    import subprocess

    out = subprocess.run([*prefix, "id", "-u"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "65534"
    caps = subprocess.run(
        [*prefix, "grep", "CapEff", "/proc/self/status"], capture_output=True, text=True
    )
    assert caps.stdout.split()[1] == "0000000000000004"  # CAP_DAC_READ_SEARCH alone


def test_a_symlinked_wheels_folder_is_refused(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("numpy\n")
    (tmp_path / "wheels").symlink_to("/etc")
    with pytest.raises(ImageBuildError, match="must be a folder"):
        download_wheels(req, tmp_path / "wheels")


# -- 2: a build cannot read the hidden test targets -------------------------------------


def test_a_context_reaching_the_data_is_refused(bench: Settings) -> None:
    data = bench.data_root / "tiny"
    before = sorted(p.name for p in data.rglob("*"))
    # the entry's folder is a link to the data root
    (bench.submissions_dir / "peek").symlink_to(bench.data_root)
    (bench.submissions_dir / "peek.toml").write_text(
        ENTRY.format(name="peek", image='context = "peek"')
    )
    _refused(bench, "peek", "peek.toml", "outside the entry's folder")
    # a context outside its folder, by an absolute path
    _entry(bench, "abs", f'context = "{data}"', {})
    _refused(bench, "abs", "abs.toml", "outside the entry's folder")
    # a Dockerfile that is a link out of the context
    _entry(bench, "dflink", 'context = "dflink"', {"entry.py": "print(1)\n"})
    (bench.submissions_dir / "dflink" / "Dockerfile").symlink_to(
        REPO_ROOT / "submissions" / "template" / "Dockerfile"
    )
    _refused(bench, "dflink", "outside the build context")
    assert sorted(p.name for p in data.rglob("*")) == before


def test_a_context_holding_the_work_folder_is_refused(tmp_path: Path, base_image: str) -> None:
    settings = make_bench(tmp_path)
    # the work folder lies inside the entry's own folder
    inner = Settings(
        home=settings.submissions_dir / "nest" / "home",
        data_root=settings.data_root,
        manifests_dir=settings.manifests_dir,
        submissions_dir=settings.submissions_dir,
        profiles_dir=settings.profiles_dir,
    )
    _entry(inner, "nest", 'context = "nest"', {"Dockerfile": DOCKERFILE})
    result = cli(inner, "run", "nest", "--dataset", "tiny", "--profile", "test")
    assert result.exit_code == 2, result.output
    assert "overlaps the work folder" in result.output


# -- 3: images are tied to entries -------------------------------------------------------


def test_an_entry_cannot_name_or_borrow_images(
    bench: Settings, docker_client: docker.DockerClient
) -> None:
    template = run_one(
        make_ctx(bench, docker_client),
        get_entry(bench.submissions_dir, "template"),
        "default",
        0,
        "tiny",
    )
    image_id = template.record.image_digest
    assert image_id is not None
    tag = f"sarbench-entry/template:{image_id.removeprefix('sha256:')[:12]}"
    assert docker_client.images.get(tag).id == image_id  # named by the harness
    assert docker_client.images.get(image_id).labels["sarbench.entry"] == "template"
    # a tag of its own choosing (over the base image, say)
    _entry(bench, "tagger", 'context = "tagger"\ntag = "sarbench-base:bookworm"', {
        "Dockerfile": DOCKERFILE})  # fmt: skip
    _refused(bench, "tagger", "`image.tag` is no longer accepted")
    # FROM and COPY --from another entry's image
    _entry(bench, "thief", 'context = "thief"', {
        "Dockerfile": f"FROM {tag}\nCOPY --from={tag} /app /stolen\n"})  # fmt: skip
    _refused(bench, "thief", "Dockerfile:1: FROM", "not an allowed base image",
             "Dockerfile:2: COPY --from")  # fmt: skip
    # another entry's image as a prebuilt ref: by tag (unpinned) and by ID (owned)
    _entry(bench, "borrow", f'ref = "{tag}"', {})
    _refused(bench, "borrow", "must be pinned by digest")
    _entry(bench, "borrow", f'ref = "{image_id}"', {})
    _refused(bench, "borrow", "belongs to entry 'template'")
    assert docker_client.images.get("sarbench-base:bookworm").attrs["RepoTags"]


# -- 4: builds do not reach the network --------------------------------------------------


def test_add_of_a_url_is_refused(bench: Settings, server) -> None:
    url, hits = server
    _entry(bench, "fetcher", 'context = "fetcher"', {
        "Dockerfile": f"FROM sarbench-base:bookworm\nADD {url}/payload /payload\n"
                      "# syntax is a directive only at the top\n"})  # fmt: skip
    _refused(bench, "fetcher", "Dockerfile:2: ADD of a URL")
    assert hits == []


# -- 8: anyone can be a baseline? --------------------------------------------------------


def test_baseline_names_and_flag_are_reserved(bench: Settings) -> None:
    shutil.copytree(bench.submissions_dir / "template", bench.submissions_dir / "threshold")
    toml = (bench.submissions_dir / "template.toml").read_text()
    (bench.submissions_dir / "threshold.toml").write_text(
        toml.replace('name = "template"', 'name = "threshold"')
        .replace("baseline = false", "baseline = true")
        .replace('context = "template"', 'context = "threshold"')
    )
    _refused(bench, "threshold", "the name 'threshold' is reserved")
    (bench.submissions_dir / "champion.toml").write_text(
        toml.replace('name = "template"', 'name = "champion"').replace(
            "baseline = false", "baseline = true"
        )
    )
    _refused(bench, "champion", "`baseline = true` is reserved")
