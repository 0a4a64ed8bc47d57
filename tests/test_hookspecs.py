"""The hook contract: every hook is named ganbench_*, documented in its docstring and in
docs/plugins.md, and exercised by a test (datasette's test_plugin_hooks_are_documented)."""

import inspect
import re
from pathlib import Path

import pytest

from ganbench import hookimpl, hookspecs
from ganbench.registry import hook_names

ROOT = Path(__file__).parent.parent
HOOKS = hook_names()


def test_there_are_hooks_and_all_are_prefixed():
    assert HOOKS == [
        "ganbench_register_variants",
        "ganbench_register_datasets",
        "ganbench_register_metrics",
        "ganbench_register_probes",
    ]
    specs = [n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, "ganbench_spec")]
    assert sorted(specs) == sorted(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_docstring_with_params_return_and_firstresult(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook))
    assert doc and ":param" in doc and ":return" in doc and "firstresult" in doc


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_in_plugins_md(hook):
    assert re.search(rf"^### {hook}$", (ROOT / "docs" / "plugins.md").read_text(), flags=re.M)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test_plugin(hook, fixtures_dir):
    implementing = [p for p in fixtures_dir.glob("*.py") if re.search(rf"def {hook}\(", p.read_text())]
    assert implementing, f"no test plugin implements {hook}"


def test_hookimpl_is_reexported():
    import ganbench

    assert ganbench.hookimpl is hookspecs.hookimpl is hookimpl


def test_every_registration_hook_is_a_kind_of_the_registry():
    from ganbench.registry import KINDS

    assert sorted(k.hook for k in KINDS) == sorted(HOOKS)
