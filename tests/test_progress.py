"""Live progress (issue 18): ``sarbench run`` in a terminal shows a phase's log lines while
the phase runs, with its elapsed time and limit.

The test runs the CLI in a pseudo-terminal. The entry (the template's code behind a
handshake) prints a line at the start of train and then waits for a file that the test
writes only once it has read that line on the terminal: the run can only end well if the
line reached the terminal while the phase was running.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main
from harness.record import load_records
from harness.settings import REPO_ROOT, Settings
from tests.data.folder.make import make as make_folder

TEMPLATE = REPO_ROOT / "submissions" / "template" / "entry.py"
WRAPPER = f"""
import os, runpy, sys, time
if sys.argv[1] == "train":
    print("first line of train", flush=True)
    release = os.path.join(os.path.dirname(os.path.abspath(__file__)), "release")
    for _ in range(600):  # 60 s at most
        if os.path.exists(release):
            break
        time.sleep(0.1)
    else:
        print("never released", flush=True)
        sys.exit(1)
sys.argv[0] = {str(TEMPLATE)!r}
runpy.run_path({str(TEMPLATE)!r}, run_name="__main__")
"""
ENTRY = f"""
name = "handshake"
team = "tests"
contact = "tests"
tasks = ["flood"]
requires_roles = ["pre", "post"]
phases = ["train", "predict"]

[image]
ref = "sha256:{"0" * 64}"

[local]
command = ["{{python}}", "wrapper.py"]

[variants.default]
"""


def _read(fd: int, until: str, deadline: float) -> str:
    """What the terminal shows, until ``until`` appears or the process closes it."""
    out = b""
    while time.monotonic() < deadline and until.encode() not in out:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other end closed: the process ended
            break
        if not chunk:
            break
        out += chunk
    return out.decode("utf-8", errors="replace")


def _with_floods(tmp_path: Path) -> list[str]:
    """A work folder under ``tmp_path`` with a small flood folder imported as ``floods``:
    the CLI's arguments that name it."""
    home, data = tmp_path / "home", tmp_path / "data"
    args = ["--home", str(home), "--data-root", str(data)]
    floods = make_folder(tmp_path / "src" / "floods", task="flood", size=32)
    result = CliRunner().invoke(
        main, [*args, "datasets", "import", "folder", str(floods.root), "--task", "flood"]
    )
    assert result.exit_code == 0, result.output
    return args


def test_a_phase_shows_its_log_lines_in_a_terminal_before_it_ends(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    args = _with_floods(tmp_path)
    entry = tmp_path / "entries" / "handshake.toml"
    entry.parent.mkdir()
    entry.write_text(ENTRY)
    (entry.parent / "wrapper.py").write_text(WRAPPER)

    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "harness.cli", *args, "run", str(entry)]
    command += ["--dataset", "floods", "--backend", "local"]
    proc = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    try:
        seen = _read(leader, "first line of train", time.monotonic() + 120)
        assert "first line of train" in seen, seen
        assert proc.poll() is None  # the phase is still running
        (entry.parent / "release").write_text("go")
        rest = _read(leader, "\x00never", time.monotonic() + 120)
        assert proc.wait(timeout=60) == 0, seen + rest
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    # the status line: the phase, its elapsed time and its limit, then the line
    status = seen[seen.rfind("\r") :]
    assert status.startswith("\r\x1b[K  handshake/default s0 train ")
    assert " / 15 min | first line of train" in status
    (record,) = load_records(Settings.load(home=home, data_root=data).runs_dir)
    assert record.ok, record.detail
    log = (Settings.load(home=home).runs_dir / record.run_id / "logs" / "train.log").read_text()
    assert "first line of train" in log


_STATUS = re.compile(r"\x1b\[K  unet/default s0 (train|predict) (.+?) / (.+?) \| ")


def test_sarbench_run_unet_shows_its_training_as_it_goes(tmp_path: Path) -> None:
    """The real UNet baseline (local backend, a small folder dataset): its train log lines
    reach the terminal with the time they came at, all before its predict phase starts."""
    args = _with_floods(tmp_path)
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "harness.cli", *args, "run", "unet"]
    command += ["--dataset", "floods", "--backend", "local"]
    proc = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    try:
        seen = _read(leader, "\x00never", time.monotonic() + 300)
        assert proc.wait(timeout=60) == 0, seen
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    shown = [(m.group(1), m.group(2)) for m in _STATUS.finditer(seen)]
    phases = [phase for phase, _ in shown]
    assert "train" in phases and "predict" in phases, seen
    first_predict = phases.index("predict")
    assert "predict" not in phases[: phases.index("train")]
    trained = [elapsed for phase, elapsed in shown[:first_predict] if phase == "train"]
    # shown one by one while training ran: at several elapsed times, not all at its end
    assert len(set(trained)) >= 2, trained
    assert "train" not in phases[first_predict:]  # none after train ended
