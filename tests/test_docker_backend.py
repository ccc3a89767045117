"""The container runtime: isolation, limits and statuses, on a real engine with real containers.

Tests marked ``docker`` need an engine and the base image (see tests/docker_support.py);
the others (pure configuration, the local backend) run anywhere.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from harness.runtime import local_backend
from harness.runtime.docker_backend import (
    LABEL_MANAGED,
    classify,
    container_config,
    remove_leftovers,
    run_phase,
)
from harness.runtime.errors import ImageNotFoundError, LimitsError, MountError
from harness.runtime.images import build_image, image_digest, split_ref
from harness.runtime.limits import KiB, Limits, MiB
from harness.runtime.phase import Mount, PhaseResult, check_mounts, mount_env_name

# docker_support is also the plugin with the fixtures docker_client, base_image, run_labels;
# registered before the import below, so that its asserts are rewritten like a conftest's.
pytest.register_assert_rewrite("tests.docker_support")
pytest_plugins = ["tests.docker_support"]

from tests.docker_support import RUN_LABEL, no_managed_leftovers, script  # noqa: E402

SMALL = Limits(memory_bytes=256 * MiB, cpus=1.0, pids=64, timeout_s=60, tmpfs_bytes=32 * MiB)

PROBE = r"""
import json, os, socket

def attempt(action):
    try:
        action()
    except OSError as exc:
        return f"{type(exc).__name__} errno={exc.errno}"
    return "ok"

def write(path):
    with open(path, "w") as f:
        f.write("x")

def read_first(*paths):
    for path in paths:
        if os.path.exists(path):
            return open(path).read().strip()
    return None

status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
mounts = {line.split()[1]: line.split()[3].split(",") for line in open("/proc/self/mounts")}
port = int(os.environ["PROBE_PORT"])
shm = os.statvfs("/dev/shm")
tmp = os.statvfs("/tmp")
print(json.dumps({
    "uid": os.getuid(),
    "gid": os.getgid(),
    "cap_eff": status["CapEff"].strip(),
    "cap_prm": status["CapPrm"].strip(),
    "no_new_privs": status["NoNewPrivs"].strip(),
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "connect_host_listener": attempt(lambda: socket.create_connection(("127.0.0.1", port), 2)),
    "connect_outside": attempt(lambda: socket.create_connection(("192.0.2.1", 80), 2)),
    "resolve": attempt(lambda: socket.getaddrinfo("deb.debian.org", 80)),
    "root_options": mounts["/"],
    "write_etc": attempt(lambda: write("/etc/probe")),
    "write_root": attempt(lambda: write("/probe")),
    "write_tmp": attempt(lambda: write("/tmp/probe")),
    "write_out": attempt(lambda: write("/out/probe.txt")),
    "write_app": attempt(lambda: write("/app/probe.txt")),
    "tmp_bytes": tmp.f_blocks * tmp.f_frsize,
    "shm_bytes": shm.f_blocks * shm.f_frsize,
    "memory_limit": read_first(
        "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"
    ),
    "memsw_limit": read_first(
        "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", "/sys/fs/cgroup/memory.swap.max"
    ),
    "pids_limit": read_first("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"),
    "env_out": os.environ.get("SARBENCH_OUT"),
    "env_app": os.environ.get("SARBENCH_APP"),
    "home": os.environ.get("HOME"),
}))
"""


# ---------------------------------------------------------------- pure: no engine needed


def test_container_config_has_every_isolation_setting() -> None:
    mounts = [
        Mount(Path("/srv/in"), "/data/train", "ro"),
        Mount(Path("/srv/model"), "/model", "rw"),
    ]
    limits = Limits(memory_bytes=2 * 1024 * MiB, cpus=1.5, cpuset="0-1", pids=99, shm_bytes=MiB)
    config = container_config(
        "img", ["python3", "x.py"], mounts, limits, {RUN_LABEL: "r1"}, {"SEED": "3"}
    )
    assert config["network_mode"] == "none"
    assert config["read_only"] is True
    assert config["cap_drop"] == ["ALL"]
    assert config["security_opt"] == ["no-new-privileges"]
    assert config["user"] == "65532:65532"
    assert config["mem_limit"] == config["memswap_limit"] == limits.memory_bytes
    assert config["nano_cpus"] == 1_500_000_000 and config["cpuset_cpus"] == "0-1"
    assert config["pids_limit"] == 99 and config["shm_size"] == MiB
    assert "size=" in config["tmpfs"]["/tmp"]
    assert config["labels"] == {LABEL_MANAGED: "1", RUN_LABEL: "r1"}
    assert config["log_config"]["Type"] == "json-file"
    assert "device_requests" not in config
    binds = {m["Target"]: (m["Source"], m["ReadOnly"]) for m in config["mounts"]}
    assert binds == {"/data/train": ("/srv/in", True), "/model": ("/srv/model", False)}
    env = config["environment"]
    assert env["SARBENCH_DATA_TRAIN"] == "/data/train" and env["SEED"] == "3"


def test_gpu_is_requested_by_uuid_only_when_asked() -> None:
    uuid = "GPU-6d1a3a2e-0c1b-4e43-9d1a-1d2c3b4a5f60"
    config = container_config("img", ["true"], [], Limits(gpu_uuid=uuid), {})
    (request,) = config["device_requests"]
    assert request["DeviceIDs"] == [uuid] and request["Capabilities"] == [["gpu"]]
    assert "Count" not in request or request["Count"] in (None, 0)


@pytest.mark.parametrize(
    "changes",
    [
        {"memory_bytes": 0},
        {"cpus": 0},
        {"pids": 0},
        {"timeout_s": -1},
        {"cpuset": "0-"},
        {"gpu_uuid": "0"},
        {"log_cap_bytes": 10},
    ],
)
def test_bad_limits_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(LimitsError, match=next(iter(changes))):
        Limits(**changes)


@pytest.mark.parametrize(
    ("exit_code", "oom_killed", "peak", "status"),
    [
        (137, True, None, "oom"),
        (137, False, 250 * MiB, "oom"),  # SIGKILL that we did not send, memory at the limit
        (137, False, 10 * MiB, "crash"),  # SIGKILL from elsewhere
        (1, True, None, "oom"),  # the kernel killed a child; the parent gave up
        (0, False, None, "ok"),
        (3, False, None, "crash"),
    ],
)
def test_classify(exit_code: int, oom_killed: bool, peak: int | None, status: str) -> None:
    got, reason = classify(
        exit_code=exit_code,
        oom_killed=oom_killed,
        timed_out=False,
        output_exceeded=False,
        peak=peak,
        limits=SMALL,
        output_bytes=0,
    )
    assert got == status and reason


def test_timeout_and_output_limit_come_first() -> None:
    common = {"exit_code": 137, "oom_killed": True, "peak": None, "limits": SMALL}
    timed = classify(timed_out=True, output_exceeded=True, output_bytes=0, **common)
    assert timed[0] == "timeout"
    over = classify(timed_out=False, output_exceeded=True, output_bytes=9, **common)
    assert over[0] == "output_limit"


def test_mounts_are_checked(tmp_path: Path) -> None:
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(MountError, match="does not exist"):
        check_mounts({tmp_path / "missing": ("/data", "ro")})
    with pytest.raises(MountError, match="absolute"):
        check_mounts({tmp_path: ("data", "ro")})
    with pytest.raises(MountError, match="belongs to the runtime"):
        check_mounts({tmp_path: ("/tmp/x", "ro")})
    with pytest.raises(MountError, match="must be a folder"):
        check_mounts({tmp_path / "f.json": ("/config/run.json", "rw")})
    with pytest.raises(MountError, match="'ro' or 'rw'"):
        check_mounts({tmp_path: ("/data", "w")})
    (checked,) = check_mounts({tmp_path / "f.json": ("/config/run.json", "ro")})
    assert checked.env_name == "SARBENCH_CONFIG_RUN_JSON"
    assert mount_env_name("/data/test/inputs") == "SARBENCH_DATA_TEST_INPUTS"


def test_image_refs_split() -> None:
    assert split_ref("sarbench-base:bookworm") == ("sarbench-base", "bookworm")
    assert split_ref("entry") == ("entry", "latest")
    assert split_ref("host:5000/entry") == ("host:5000/entry", "latest")


# ---------------------------------------------------------------- docker: isolation


@pytest.fixture(scope="module")
def probe(
    docker_client: docker.DockerClient, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One container that reports what it can and cannot do, as JSON."""
    tmp = tmp_path_factory.mktemp("probe")
    out = tmp / "out"
    out.mkdir()
    mounts, command = script(tmp, PROBE)
    labels = {RUN_LABEL: "test-probe"}
    listener = socket.create_server(("127.0.0.1", 0))  # reachable from the host only
    try:
        port = listener.getsockname()[1]
        result = run_phase(
            docker_client,
            base_image,
            command,
            {**mounts, out: ("/out", "rw")},
            SMALL.replace(shm_bytes=16 * MiB),
            labels,
            {"PROBE_PORT": str(port)},
        )
    finally:
        listener.close()
    assert result.status == "ok", result.log_tail
    assert no_managed_leftovers(docker_client, labels)
    facts = json.loads(result.log_tail.splitlines()[-1])
    facts["result"] = result
    facts["out"] = out
    return facts


@pytest.mark.docker
def test_no_network(probe: dict[str, Any]) -> None:
    assert probe["interfaces"] == ["lo"]
    assert probe["connect_host_listener"] != "ok"  # the host's loopback is not ours
    assert probe["connect_outside"] != "ok"
    assert probe["resolve"] != "ok"


@pytest.mark.docker
def test_root_filesystem_is_read_only_but_tmp_and_writable_mount_work(
    probe: dict[str, Any],
) -> None:
    assert "ro" in probe["root_options"]
    assert probe["write_etc"] != "ok" and probe["write_root"] != "ok"
    assert probe["write_tmp"] == "ok"
    assert probe["write_out"] == "ok"
    assert (probe["out"] / "probe.txt").read_text() == "x"
    if os.geteuid() == 0:  # the harness chowns writable folders to the container's user
        assert probe["out"].stat().st_uid == 65532
    assert probe["tmp_bytes"] == SMALL.tmpfs_bytes


@pytest.mark.docker
def test_read_only_mount_cannot_be_written(probe: dict[str, Any]) -> None:
    assert "errno=30" in probe["write_app"]  # EROFS


@pytest.mark.docker
def test_not_root_and_no_capabilities(probe: dict[str, Any]) -> None:
    assert probe["uid"] == 65532 and probe["gid"] == 65532
    assert int(probe["cap_eff"], 16) == 0 and int(probe["cap_prm"], 16) == 0
    assert probe["no_new_privs"] == "1"


@pytest.mark.docker
def test_limits_are_applied_inside(probe: dict[str, Any]) -> None:
    assert probe["shm_bytes"] == 16 * MiB
    assert probe["pids_limit"] == str(SMALL.pids)
    assert probe["memory_limit"] == str(SMALL.memory_bytes)
    if probe["memsw_limit"] is not None and probe["memsw_limit"].isdigit():
        # cgroup v1 reports memory+swap; v2 reports swap alone, which must be 0
        assert int(probe["memsw_limit"]) in (SMALL.memory_bytes, 0)


@pytest.mark.docker
def test_mounts_are_announced_and_home_is_tmp(probe: dict[str, Any]) -> None:
    assert probe["env_out"] == "/out" and probe["env_app"] == "/app"
    assert probe["home"] == "/tmp"
    result = probe["result"]
    assert result.image_id.startswith("sha256:") and result.isolated
    # one 1-byte file: counted as the blocks it takes (reserved space counts too)
    assert 1 <= result.output_bytes <= 3 * 4096


# ---------------------------------------------------------------- docker: statuses


@pytest.mark.docker
def test_sleeper_is_killed_at_its_limit_and_labelled_while_running(
    docker_client: docker.DockerClient, base_image: str, run_labels: dict[str, str]
) -> None:
    seen: list[dict[str, str]] = []
    selector = {"label": [f"{k}={v}" for k, v in run_labels.items()]}

    def watch() -> None:
        for _ in range(100):
            running = docker_client.containers.list(filters=selector)
            if running:
                seen.append(running[0].labels)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = run_phase(
        docker_client,
        base_image,
        ["python3", "-c", "import time; time.sleep(120)"],
        {},
        SMALL.replace(timeout_s=2),
        run_labels,
    )
    watcher.join()
    assert result.status == "timeout", result
    assert 2 <= result.wall_s < 10
    assert seen and seen[0][RUN_LABEL] == run_labels[RUN_LABEL] and seen[0][LABEL_MANAGED] == "1"
    assert no_managed_leftovers(docker_client, run_labels)


@pytest.mark.docker
def test_memory_hog_is_oom(
    docker_client: docker.DockerClient, base_image: str, run_labels: dict[str, str]
) -> None:
    limit = 64 * MiB
    hog = "held = []\nfor _ in range(4 * 64):\n    held.append(b'x' * 2**20)\nprint('survived')"
    result = run_phase(
        docker_client,
        base_image,
        ["python3", "-c", hog],
        {},
        SMALL.replace(memory_bytes=limit),
        run_labels,
    )
    assert result.status == "oom", result
    assert "survived" not in result.log_tail


@pytest.mark.docker
def test_crash_keeps_the_log_tail(
    docker_client: docker.DockerClient, base_image: str, run_labels: dict[str, str]
) -> None:
    code = "import sys\nfor i in range(100):\n    print('line', i)\nsys.exit(3)"
    result = run_phase(
        docker_client, base_image, ["python3", "-c", code], {}, SMALL, run_labels, tail=20
    )
    assert result.status == "crash" and result.exit_code == 3
    lines = result.log_tail.splitlines()
    assert lines[-1] == "line 99" and len(lines) == 20


@pytest.mark.docker
def test_log_cap_holds_under_a_flood(
    docker_client: docker.DockerClient,
    base_image: str,
    run_labels: dict[str, str],
    tmp_path: Path,
) -> None:
    cap = 64 * KiB
    flood = "import sys\nfor i in range(100_000):\n    print(f'{i:08d}', 'y' * 60)"
    log_path = tmp_path / "phase.log"
    result = run_phase(
        docker_client,
        base_image,
        ["python3", "-c", flood],
        {},
        SMALL.replace(log_cap_bytes=cap),
        run_labels,
        log_path=log_path,
    )
    assert result.status == "ok"
    assert 0 < log_path.stat().st_size <= cap  # about 6.5 MB were printed
    assert result.log_tail.splitlines()[-1].startswith("00099999")


@pytest.mark.docker
def test_output_over_the_cap_is_stopped(
    docker_client: docker.DockerClient,
    base_image: str,
    run_labels: dict[str, str],
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    writer = "import time\nopen('/out/big', 'wb').write(b'0' * 3 * 2**20)\ntime.sleep(60)"
    result = run_phase(
        docker_client,
        base_image,
        ["python3", "-c", writer],
        {out: ("/out", "rw")},
        SMALL.replace(output_cap_bytes=MiB, output_check_s=0.5),
        run_labels,
    )
    assert result.status == "output_limit", result
    assert result.wall_s < 30


@pytest.mark.docker
def test_peak_memory_is_measured(
    docker_client: docker.DockerClient, base_image: str, run_labels: dict[str, str]
) -> None:
    code = "import time\nheld = b'x' * (100 * 2**20)\ntime.sleep(1.5)"
    result = run_phase(docker_client, base_image, ["python3", "-c", code], {}, SMALL, run_labels)
    assert result.status == "ok"
    assert result.peak_memory_bytes is not None and result.peak_memory_bytes >= 100 * MiB


@pytest.mark.docker
def test_command_that_cannot_start_is_an_error(
    docker_client: docker.DockerClient, base_image: str, run_labels: dict[str, str]
) -> None:
    result = run_phase(docker_client, base_image, ["/no/such/entrypoint"], {}, SMALL, run_labels)
    assert result.status == "error" and result.exit_code is None
    assert "/no/such/entrypoint" in result.log_tail


@pytest.mark.docker
def test_harness_mistakes_raise(docker_client: docker.DockerClient, base_image: str) -> None:
    with pytest.raises(ImageNotFoundError, match="nothing is pulled"):
        run_phase(docker_client, "sarbench-no-such:image", ["true"], {}, SMALL, {})
    with pytest.raises(LimitsError, match="cannot give"):
        run_phase(docker_client, base_image, ["true"], {}, SMALL.replace(cpus=4096.0), {})


@pytest.mark.docker
def test_remove_leftovers_finds_by_label(
    docker_client: docker.DockerClient, base_image: str, run_labels: dict[str, str]
) -> None:
    docker_client.containers.create(
        base_image,
        ["sleep", "60"],
        labels={LABEL_MANAGED: "1", **run_labels},
        network_mode="none",
    )
    removed = remove_leftovers(docker_client, run_labels)
    assert len(removed) == 1
    assert no_managed_leftovers(docker_client, run_labels)


@pytest.mark.docker
def test_derived_image_builds_without_network(
    docker_client: docker.DockerClient,
    base_image: str,
    run_labels: dict[str, str],
    tmp_path: Path,
) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "entry.py").write_text("print('entry ran')\n")
    no_net = "import socket; assert [n for _, n in socket.if_nameindex()] == ['lo']"
    (context / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        f'RUN python3 -c "{no_net}"\n'
        "COPY entry.py /app/entry.py\n"
        'ENTRYPOINT ["python3", "/app/entry.py"]\n'
    )
    tag = "sarbench-test-entry:latest"
    steps: list[str] = []
    image_id = build_image(
        docker_client, context, tag, buildargs={"BASE_IMAGE": base_image}, on_step=steps.append
    )
    try:
        # each step was told as the engine started it
        assert [s.split(" : ")[0] for s in steps] == [f"Step {i}/5" for i in range(1, 6)]
        assert steps[2].endswith(f'RUN python3 -c "{no_net}"')
        assert image_digest(docker_client, tag) == image_id
        result = run_phase(docker_client, tag, [], {}, SMALL, run_labels)
        assert result.status == "ok" and result.log_tail == "entry ran"
        assert result.image_id == image_id
    finally:
        docker_client.images.remove(image_id, force=True)


# ---------------------------------------------------------------- local backend


def _local(tmp_path: Path, code: str, limits: Limits = SMALL) -> PhaseResult:
    (tmp_path / "main.py").write_text(code)
    command = [sys.executable, str(tmp_path / "main.py")]
    return local_backend.run_phase(None, "ignored", command, {}, limits, {})


def test_local_ok_and_mount_variables(tmp_path: Path) -> None:
    data = tmp_path / "train"
    data.mkdir()
    code = "import os\nprint(os.environ['SARBENCH_DATA_TRAIN'])\nprint(os.environ['TMPDIR'])"
    result = local_backend.run_phase(
        None,
        "ignored",
        [sys.executable, "-c", code],
        {data: ("/data/train", "ro")},
        SMALL,
        {},
    )
    assert result.status == "ok" and not result.isolated and result.image_id is None
    assert result.log_tail.splitlines()[0] == str(data)
    assert result.peak_memory_bytes and result.peak_memory_bytes > MiB


def test_local_crash_keeps_the_log_tail(tmp_path: Path) -> None:
    result = _local(tmp_path, "import sys\nfor i in range(100):\n    print('line', i)\nsys.exit(3)")
    assert result.status == "crash" and result.exit_code == 3
    assert result.log_tail.splitlines()[-1] == "line 99"


def test_local_sleeper_times_out(tmp_path: Path) -> None:
    result = _local(tmp_path, "import time\ntime.sleep(60)", SMALL.replace(timeout_s=1))
    assert result.status == "timeout" and result.exit_code == 137
    assert 1 <= result.wall_s < 10


def test_local_log_cap_holds(tmp_path: Path) -> None:
    log_path = tmp_path / "phase.log"
    flood = "for i in range(100_000):\n    print(f'{i:08d}', 'y' * 60)"
    (tmp_path / "main.py").write_text(flood)
    result = local_backend.run_phase(
        None,
        "ignored",
        [sys.executable, str(tmp_path / "main.py")],
        {},
        SMALL.replace(log_cap_bytes=64 * KiB),
        {},
        log_path=log_path,
    )
    assert result.status == "ok"
    assert log_path.stat().st_size == 64 * KiB
    assert result.log_tail.splitlines()[-1].startswith("00099999")


def test_local_missing_command_is_an_error() -> None:
    result = local_backend.run_phase(None, "ignored", ["/no/such/entrypoint"], {}, SMALL, {})
    assert result.status == "error" and result.exit_code is None


# --- the log as it comes --------------------------------------------------------------

HANDSHAKE = r"""
import os, sys, time
print("first \x1b[2J line", flush=True)
release = os.path.join(sys.argv[1], "release")
for _ in range(300):  # 30 s at most: the harness answers as soon as it reads "first"
    if os.path.exists(release):
        print("released", flush=True)
        sys.exit(0)
    time.sleep(0.1)
print("never released", flush=True)
sys.exit(1)
"""


class _Handshake:
    """Answers the phase's first line by writing the file it waits for: the phase can only
    end well if its lines reach the harness while it runs."""

    def __init__(self, gate: Path, log_path: Path) -> None:
        self.gate, self.log_path, self.lines = gate, log_path, []

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if line.startswith("first"):
            assert "first" in self.log_path.read_text()  # the log file fills as it comes
            (self.gate / "release").write_text("go")


@pytest.mark.docker
def test_log_lines_reach_the_harness_and_the_file_while_the_phase_runs(
    docker_client: docker.DockerClient,
    base_image: str,
    run_labels: dict[str, str],
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    mounts, command = script(tmp_path, HANDSHAKE)
    mounts[gate] = ("/gate", "ro")
    log_path = tmp_path / "phase.log"
    answer = _Handshake(gate, log_path)
    result = run_phase(
        docker_client,
        base_image,
        [*command, "/gate"],
        mounts,
        SMALL,
        run_labels,
        log_path=log_path,
        on_line=answer,
    )
    assert result.status == "ok", result.log_tail
    assert answer.lines == ["first \\x1b[2J line", "released"]  # escaped for the terminal
    assert log_path.read_text().splitlines()[-1] == "released"


def test_local_log_lines_reach_the_harness_while_the_phase_runs(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(HANDSHAKE)
    log_path = tmp_path / "phase.log"
    answer = _Handshake(tmp_path, log_path)
    result = local_backend.run_phase(
        None,
        "ignored",
        [sys.executable, str(tmp_path / "main.py"), str(tmp_path)],
        {},
        SMALL,
        {},
        log_path=log_path,
        on_line=answer,
    )
    assert result.status == "ok", result.log_tail
    assert answer.lines == ["first \\x1b[2J line", "released"]
