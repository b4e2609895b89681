"""``core/platforms.py``: a host with no accelerator device node runs JAX on CPU (the CLI and every
benchmark script but device_check), so the installed plan extras (libtpu, the CUDA plugin) do not
print their start-up failures; an explicit JAX_PLATFORMS wins, and a host with a device node keeps
JAX's own choice."""

from __future__ import annotations

import ast
import fnmatch
import pathlib

import pytest

from gatortron_jax.core import platforms


@pytest.mark.parametrize("nodes, preset, expected", [
    ([], None, "cpu"),                        # CPU host: cpu
    (["/dev/nvidia0"], None, None),           # GPU host: JAX decides
    (["/dev/accel0"], None, None),            # TPU host: JAX decides
    ([], "cuda", "cuda"),                     # explicit setting wins
])
def test_default_to_cpu_without_accelerator(monkeypatch, nodes, preset, expected):
    monkeypatch.setattr(platforms.glob, "glob", lambda pattern: fnmatch.filter(nodes, pattern))
    if preset is None:
        monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    else:
        monkeypatch.setenv("JAX_PLATFORMS", preset)
    changed = platforms.default_to_cpu_without_accelerator()
    assert platforms.os.environ.get("JAX_PLATFORMS") == expected
    assert changed is (preset is None and expected == "cpu")


def _main_block_calls(path: pathlib.Path, name: str) -> bool:
    """Whether the script's ``if __name__ == "__main__":`` block calls ``name`` before anything else runs."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return any(isinstance(n, ast.Call) and ast.unparse(n.func) == name for n in ast.walk(node))
    return False


def test_benchmarks_use_the_cli_platform_rule_except_device_check(repo_root):
    scripts = [p for p in sorted((repo_root / "benchmarks").glob("*.py")) if "jax" in p.read_text()
               and p.name != "common.py"]
    assert len(scripts) >= 8
    for p in scripts:
        calls = _main_block_calls(p, "default_to_cpu_without_accelerator")
        if p.name == "device_check.py":
            assert not calls, "device_check must see the real accelerators"
        else:
            assert calls, f"{p.name}: call platforms.default_to_cpu_without_accelerator() first in __main__"
