"""The backup job's metrics: what Prometheus reads about the last run and the archive disk."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from components.images.backup import archives as job_file
from components.rendering import backup as render
from config.models import BackupSettings
from tests.program import ROOT
from tests.rendered.debian_tools import ToolUnavailable, debian_tool
from tests.rendered.processes import free_port

IMAGE_DIR = ROOT / "components" / "images" / "backup"
sys.path.insert(0, str(IMAGE_DIR))

import backupctl  # noqa: E402  (the image's module, imported as the image imports it)

STARTED = datetime(2026, 6, 1, 0, 0, tzinfo=timezone.utc)
AT = datetime(2026, 6, 1, 1, 30, tzinfo=timezone.utc)


def _job(tmp_path: Path) -> backupctl.Job:
    targets = render.JobTargets(postgres=None, mysql=None, bucket=None, synapse_data=False, configs=False, services=[])
    document = json.loads(render.render_job("selfhosted", "test", BackupSettings(enabled=True, schedule="0 * * * *"), targets))
    document["archive_dir"] = str(tmp_path)
    (tmp_path / "backup.json").write_text(json.dumps(document))
    return backupctl.Job.load(str(tmp_path / "backup.json"))


def _metrics(text: str) -> dict[str, float]:
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and not line.startswith("#")}


def test_the_job_serves_metrics_on_the_port_monitoring_scrapes(tmp_path: Path) -> None:
    assert _job(tmp_path).metrics_port == job_file.METRICS_PORT


def test_a_job_that_never_ran_reports_its_start_and_interval_but_no_result(tmp_path: Path) -> None:
    metrics = _metrics(backupctl.metrics_text(_job(tmp_path), {}, STARTED, AT))
    assert "backup_last_run_success" not in metrics and "backup_last_success_timestamp_seconds" not in metrics
    assert metrics["backup_started_timestamp_seconds"] == STARTED.timestamp()
    assert metrics["backup_interval_seconds"] == 3600
    assert metrics["backup_next_run_timestamp_seconds"] == datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc).timestamp()


def test_a_failed_run_reports_zero_and_when_it_failed(tmp_path: Path) -> None:
    status = {"last_result": "failed", "last_run": "2026-06-01T01:00:00Z", "last_failure": "2026-06-01T01:00:00Z",
              "last_success": "2026-06-01T00:00:00Z"}
    metrics = _metrics(backupctl.metrics_text(_job(tmp_path), status, STARTED, AT))
    assert metrics["backup_last_run_success"] == 0
    assert metrics["backup_last_failure_timestamp_seconds"] == datetime(2026, 6, 1, 1, tzinfo=timezone.utc).timestamp()
    assert metrics["backup_last_success_timestamp_seconds"] == STARTED.timestamp()


def test_a_successful_run_reports_one_its_size_and_the_free_space(tmp_path: Path) -> None:
    status = {"last_result": "ok", "last_run": "2026-06-01T01:00:00Z", "last_success": "2026-06-01T01:00:00Z",
              "last_size_bytes": 123456, "last_duration_seconds": 4.5}
    metrics = _metrics(backupctl.metrics_text(_job(tmp_path), status, STARTED, AT))
    assert (metrics["backup_last_run_success"], metrics["backup_last_size_bytes"]) == (1, 123456)
    assert metrics["backup_archive_free_bytes"] > 0


def test_the_archives_size_now_and_at_retention_are_reported(tmp_path: Path) -> None:
    (tmp_path / "backup-20260601T000000Z.tar").write_bytes(bytes(1000))
    (tmp_path / "notes.txt").write_bytes(bytes(50))
    status = {"last_result": "ok", "last_run": "2026-06-01T01:00:00Z", "last_success": "2026-06-01T01:00:00Z",
              "projected_bytes": 5000}
    metrics = _metrics(backupctl.metrics_text(_job(tmp_path), status, STARTED, AT))
    assert (metrics["backup_archives_bytes"], metrics["backup_retention_projected_bytes"]) == (1000, 5000)


def test_promtool_accepts_the_metrics(tmp_path: Path) -> None:
    try:
        promtool = debian_tool("promtool")
    except ToolUnavailable as error:
        pytest.skip(str(error))
    status = {"last_result": "ok", "last_run": "2026-06-01T01:00:00Z", "last_success": "2026-06-01T01:00:00Z", "last_size_bytes": 1,
              "projected_bytes": 2}
    text = backupctl.metrics_text(_job(tmp_path), status, STARTED, AT)
    result = subprocess.run([str(promtool), "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_metrics_are_served_over_http(tmp_path: Path) -> None:
    port = free_port()
    server = backupctl.serve_metrics(_job(tmp_path), port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert "backup_interval_seconds 3600" in response.read().decode()
    finally:
        server.shutdown()
