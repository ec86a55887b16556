"""The settings reference in docs/ is generated from the models and stays so: every key, its
default as the program fills it in, its description in English (the field's) and in Chinese
(config/descriptions.zh-CN.yaml, kept complete here). Pure Python."""

from __future__ import annotations

import pytest

from config.environments import ENVIRONMENTS
from config.loader import resolve_settings
from config.reference import BEGIN, END, PAGES, Language, load_chinese, render, replaced, settings


@pytest.mark.parametrize("language", list(PAGES))
def test_the_docs_hold_the_generated_reference(language: Language) -> None:
    page = PAGES[language].read_text(encoding="utf-8")
    assert page.count(BEGIN) == 1 and page.count(END) == 1
    assert replaced(page, render(language)) == page, (
        f"{PAGES[language]} is not what the models say: run `.venv/bin/python -m config.reference --write`"
    )


def test_every_key_has_a_chinese_description_and_no_other_key_has_one() -> None:
    chinese = load_chinese()
    keys = [setting.key for setting in settings()]
    assert sorted(chinese["descriptions"]) == sorted(keys)
    assert all(chinese["descriptions"][key].strip() for key in keys)


def test_the_defaults_stated_in_words_have_their_chinese_and_only_they() -> None:
    worded = sorted(setting.key for setting in settings() if setting.default_text is not None)
    assert sorted(load_chinese()["defaults"]) == worded


def test_every_key_is_one_the_settings_accept() -> None:
    """Each key of the table is a path into the validated settings (placeholders aside)."""
    resolved = resolve_settings("selfhosted", "dev", {"synapse": {"server_name": "example.org"}}).model_dump()
    for setting in settings():
        value = resolved
        for name in setting.path:
            if value is None:  # an optional object left unset (monitoring.email)
                break
            assert name in value, setting.key
            value = value[name]


@pytest.mark.parametrize("environment", list(ENVIRONMENTS))
def test_a_default_the_table_gives_one_environment_is_what_its_stack_gets(environment: str) -> None:
    """backup.schedule and monitoring.level as the table states them for each environment."""
    raw = {"synapse": {"server_name": "example.org", "admin_username": "admin"}, "monitoring": {"receivers": ["webhook"]},
           "proxy": {"acme_email": "ops@example.org"}}
    resolved = resolve_settings("selfhosted", environment, raw)
    table = render("en")
    for key, value in (("backup.schedule", resolved.backup.schedule), ("monitoring.level", resolved.monitoring.level)):
        row = next(line for line in table.splitlines() if line.startswith(f"| `{key}` |"))
        default = row.split(" | ")[1]
        assert f"`{value}`" in default, (key, environment, default)
        if "; " in default:
            assert any(environment in part and f"`{value}`" in part for part in default.split("; ")), (key, default)
