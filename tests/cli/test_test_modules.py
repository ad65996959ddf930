"""The test modules themselves: no module defines the same top-level name
twice (a second `def` silently replaces the first, and every test that
imported the first then calls the wrong one)."""
import ast
from pathlib import Path

import pytest

HERE = Path(__file__).parent
MODULES = sorted(HERE.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_no_top_level_name_is_defined_twice(path):
    seen, twice = {}, []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in seen:
                twice.append(f"{node.name} (lines {seen[node.name]} and {node.lineno})")
            seen[node.name] = node.lineno
    assert not twice, f"{path.name} defines twice: {', '.join(twice)}"


def test_the_check_sees_a_second_definition(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    pass\n\n\ndef f():\n    pass\n")
    with pytest.raises(AssertionError, match="f \\(lines 1 and 5\\)"):
        test_no_top_level_name_is_defined_twice(bad)
