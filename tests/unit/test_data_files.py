"""The profiles and environment defaults are data files (config/profiles.yaml, config/environments.yaml):
a mistake in one stops the program with the file, the entry and the field, before anything is declared."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config.environments import ENVIRONMENTS_FILE, load_environments
from config.profiles import PROFILES_FILE, load_profiles


def _edited(tmp_path: Path, source: Path, edit: str, replacement: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert text.count(edit) >= 1, edit
    path = tmp_path / source.name
    path.write_text(text.replace(edit, replacement, 1), encoding="utf-8")
    return path


def test_the_files_load_every_profile_and_environment() -> None:
    assert list(load_profiles()) == ["small", "medium", "large"]
    assert list(load_environments()) == ["dev", "test", "staging", "prod"]


@pytest.mark.parametrize(
    ("source", "edit", "replacement", "message"),
    [
        (PROFILES_FILE, "postgres: {memory_mb: 384, reservation_mb: 256}", "postgres: {memory_mb: 384, reserved_mb: 256}",
         r"profiles.yaml: profiles.small.limits.postgres: unknown fields \['reserved_mb'\], missing fields \['reservation_mb'\]"),
        (PROFILES_FILE, "work_mem: 4MB, ", "work_mem: [4MB], ", r"profiles.yaml: profiles.small.postgres: work_mem: .*\(got \['4MB'\]\)"),
        (PROFILES_FILE, "    monitoring_scale: 2\n", "", r"profiles.yaml: profiles.medium: a profile has exactly the fields"),
        (PROFILES_FILE, "  large:\n", "  huge:\n", r"profiles.yaml must hold `monitoring` and `profiles` with exactly"),
        (ENVIRONMENTS_FILE, 'tls: "off"', "tls: off", r"environments.yaml: dev: tls: Input should be 'off', .* \(got False\)"),
        (ENVIRONMENTS_FILE, "  metrics_retention: 7d\n", "",
         r"environments.yaml: test: unknown fields \[\], missing fields \['metrics_retention'\]"),
        (ENVIRONMENTS_FILE, "staging:\n", "stage:\n", r"environments.yaml must define exactly the environments"),
    ],
)
def test_a_mistake_in_a_data_file_names_the_file_the_entry_and_the_field(
    tmp_path: Path, source: Path, edit: str, replacement: str, message: str
) -> None:
    load = load_profiles if source == PROFILES_FILE else load_environments
    with pytest.raises(ValueError, match=message):
        load(_edited(tmp_path, source, edit, replacement))


def test_environments_share_their_backup_plans_through_anchors_not_copies() -> None:
    """test and staging keep dev's plans by reference: a change to the daily plan changes all three."""
    text = ENVIRONMENTS_FILE.read_text(encoding="utf-8")
    assert text.count("*daily_backups") == 2 and text.count("*weekly_bulk") == 2
    document = yaml.safe_load(text)
    assert document["test"]["backup_retention"] == document["staging"]["backup_retention"] == document["dev"]["backup_retention"]
