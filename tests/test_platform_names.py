"""Platform code holds no runtime or router name: what a runtime or a router knows is asked of it (issue 19)."""

from __future__ import annotations

import ast
from pathlib import Path

from components.deployment.spec import ROUTERS, RUNTIMES

PLATFORM = Path(__file__).resolve().parents[1] / "components" / "platform"


def test_no_runtime_or_router_name_is_a_literal_in_platform_code():
    named = set(RUNTIMES) | set(ROUTERS)
    found = [f"{path.relative_to(PLATFORM)}:{node.lineno} {node.value!r}"
             for path in sorted(PLATFORM.rglob("*.py")) for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Constant) and node.value in named]
    assert found == []
