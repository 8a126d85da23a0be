"""One page builder: the package's Jinja2 templates, autoescaped, with undefined names an error."""

from __future__ import annotations

from functools import cache
from typing import Any

TEMPLATES = "components.reports"


@cache
def _environment() -> Any:
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader(TEMPLATES, "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["g4"] = lambda value: "" if value is None else f"{value:.4g}"
    return environment


def render_page(template: str, **values: Any) -> str:
    """The named template (under templates/) rendered with `values`."""
    return _environment().get_template(template).render(**values)
