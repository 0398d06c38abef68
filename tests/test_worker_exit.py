"""Issue 8: a killed or interrupted parent leaves no worker tracebacks behind.

The workers share the parent's stderr; a script starts them (parser pool and embedded
executor), then is killed with SIGKILL or interrupted with SIGINT sent to its whole process
group (what Ctrl-C does) while the workers are busy.  Once every process has gone, stderr must
hold no traceback, and no worker may be left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from kgqa_validator import Settings, Validator
    from kgqa_validator.execution.embedded import EmbeddedExecutor
    from kgqa_validator.types import Form

    executor = EmbeddedExecutor(Path(sys.argv[1]), timeout_s=60)
    executor.run("ASK { ?s ?p ?o }", Form.ASK, 1)
    validator = Validator(Settings(parse_workers=2), autoload=False, block=["scoring"])
    validator.check(["SELECT * WHERE { ?s ?p ?o }"] * 4)
    print("ready", executor._worker.process.pid,
          *[w.process.pid for w in __import__("kgqa_validator.builtin.parse", fromlist=["x"])
            .pool_for(validator.settings).workers if w.process], flush=True)
    slow = "SELECT * WHERE { ?s ?p " + ", ".join(f"<http://e/o{i}>" for i in range(3000)) + " }"
    while True:
        validator.check([slow] * 8)
""")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals, /proc")


def _default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT
    # ignored: run from `cmd &` or nohup, the script would never see the Ctrl-C this test sends.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.parametrize("how", ["sigkill_parent", "sigint_group"])
def test_no_worker_traceback_when_the_parent_goes(how: str, tmp_path: Path):
    fixture = ROOT / "fixtures" / "wikidata_sample.ttl"
    err_path = tmp_path / "stderr.txt"
    with err_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(fixture)], stdout=subprocess.PIPE, stderr=err,
            cwd=ROOT, start_new_session=True, preexec_fn=_default_sigint,
            env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
        assert process.stdout is not None
        line = process.stdout.readline().decode().split()
        assert line and line[0] == "ready", err_path.read_text()
        workers = [int(pid) for pid in line[1:]]
        time.sleep(0.5)  # busy parsing
        if how == "sigkill_parent":
            process.kill()
        else:
            os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
    stderr = err_path.read_text()
    if how == "sigint_group":
        # The parent itself may print its KeyboardInterrupt (it is the caller's script);
        # the workers print nothing.
        stderr = stderr.split("KeyboardInterrupt")[-1] if "KeyboardInterrupt" in stderr else stderr
    for word in ("EOFError", "BrokenPipeError", "ConnectionResetError"):
        assert word not in stderr, stderr
