"""The configuration templates (components/rendering/templates/) fail loudly and are all in use."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from components.rendering import TEMPLATES, render_template

ROOT = Path(__file__).resolve().parents[2]


def test_a_value_the_template_names_but_is_not_given_is_an_error() -> None:
    with pytest.raises(jinja2.UndefinedError, match="max_connections"):
        render_template("my.cnf.j2", time_zone="+08:00", buffer_pool="256M", redo_log_capacity="64M", native_password=False)


def test_every_template_is_rendered_by_the_program() -> None:
    sources = "".join(path.read_text() for path in (ROOT / "components" / "rendering").glob("*.py"))
    unused = [template.name for template in TEMPLATES.glob("*.j2") if f'"{template.name}"' not in sources]
    assert unused == []
