"""`make demo DURATION=20`, end to end: the summary it prints, and that it leaves nothing behind
(no worker or simulator process, no Redis key, no topic of its world)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from kafka import KafkaAdminClient

from tests.integration.harness import BOOTSTRAP, ROOT, redis_client, wait_until

CHANNELS = {"phone", "chat", "email", "messaging", "social", "web_form", "store", "video"}
NUMBER = r"[+-]\d+\.\d"
# the summary's NPS line (streams.demo.nps_line): `  channel:phone     NPS  +12.3  [ -1.5, +25.0]  n=118`
NPS_LINE = re.compile(rf"^  channel:([a-z_]+) +NPS +({NUMBER})  \[ *({NUMBER}), +({NUMBER})\]  n=(\d+)$", re.M)
ALERT_LINE = re.compile(r"^  effort\.high +total (\d+) \(warning (\d+), critical (\d+)\)$", re.M)


def _processes_of(app_id: str) -> list[int]:
    """Pids of live processes whose environment names this demo's app id (its worker and simulator)."""
    needle = f"EFFORTPULSE_APP_ID={app_id}\0".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_make_demo_prints_a_summary_and_leaves_nothing_behind() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DURATION")}
    t0 = time.monotonic()
    proc = subprocess.run(
        ["make", "demo", "DURATION=20"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    took = time.monotonic() - t0
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-4000:]}\n{proc.stderr[-4000:]}"

    found = re.search(r"^effortpulse demo (demo-([0-9a-f]{8})):", out, re.M)
    assert found, out[-4000:]
    app_id, short = found[1], found[2]
    # not a terminal: plain-text snapshots while live, then the summary
    assert re.search(rf"^--- {app_id}  live 00:1\d  \d+ events/s  \d+ events  DLQ \d+ ", out, re.M), out[-4000:]
    head = f"=== effortpulse demo summary ({app_id}) ==="
    assert head in out, out[-4000:]
    summary = out[out.index(head) :]

    processed = re.search(r"^events processed: (\d+) \((\d+\.\d)/s average\); invalid \(DLQ\): (\d+)", summary, re.M)
    assert processed and int(processed[1]) > 1000, summary

    alerts = ALERT_LINE.search(summary)
    assert alerts, summary
    total, warning, critical = map(int, alerts.groups())
    assert total > 0 and total == warning + critical, summary

    channels = NPS_LINE.findall(summary)
    assert channels, summary
    for channel, nps, low, high, n in channels:
        assert channel in CHANNELS
        assert int(n) > 0
        assert -100 <= float(low) <= float(high) <= 100
        assert -100 <= float(nps) <= 100
    assert re.search(r"^CES \(all, 7d\): mean \d\.\d\d, share 5–7 \d+\.\d%, n=\d+$", summary, re.M), summary
    assert re.search(r"^top open cases by effort:\n  1\. effort \d+ ", summary, re.M), summary
    assert re.search(r"^churn\.risk alerts: \d+$", summary, re.M), summary

    # nothing left behind
    assert not _processes_of(app_id), "a worker or simulator of the demo is still running"
    r = redis_client()
    try:
        assert not list(r.scan_iter(match=f"{app_id}:*", count=1000))
    finally:
        r.close()
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        wait_until(
            lambda: not [t for t in admin.list_topics() if t.startswith(f"demo.{short}.")],
            timeout=15,
            what=f"the topics demo.{short}.* to be deleted",
        )
    finally:
        admin.close()
    assert re.search(rf"^cleaned up: \d+ Redis keys \({app_id}:\*\), 4 topics", out, re.M), out[-2000:]
    assert took < 90, f"make demo DURATION=20 took {took:.0f} s"
