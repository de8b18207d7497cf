"""The README's code blocks are part of the product: they must run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    text = README.read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_the_custom_model_example():
    assert any("class Linkage(emkit.Model)" in b for b in python_blocks())


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_block_runs(index, capsys):
    block = python_blocks()[index]
    exec(compile(block, f"README.md block {index}", "exec"), {"__name__": "__readme__"})
