import sys
import textwrap

import pytest

from ganbench import VariantSpec
from ganbench.errors import UsageError
from ganbench.registry import PLUGINS_ENV, import_plugin_file, load_registry

BUILTIN_VARIANTS = {"dcgan", "cgan", "acgan", "wgan", "wgan-gp", "cgan-wgangp", "srgan"}


def test_builtins_are_found_through_the_entry_point_group(registry):
    assert BUILTIN_VARIANTS <= set(registry.variants)
    for name in BUILTIN_VARIANTS:  # each built-in is its own plugin, named by its entry point
        assert registry.variants[name].plugin == name
    assert registry.datasets["fashion-mnist"].plugin == "ganbench.datasets"
    assert registry.metrics["domain-fidelity"].plugin == "ganbench.metrics"
    assert registry.errors == []


def test_without_entry_points_nothing_is_registered():
    registry = load_registry(entry_points=False, environ={})
    assert registry.variants == {} and registry.datasets == {} and registry.metrics == {}


def test_plugin_file_registers_through_every_hook(fixtures_dir):
    registry = load_registry([fixtures_dir / "plugin_all_hooks.py"], environ={})
    plugin = str(fixtures_dir / "plugin_all_hooks.py")
    assert registry.variants["linear"].plugin == plugin
    assert registry.datasets["fashion-mnist-tiny"].plugin == plugin
    assert registry.metrics["mean-intensity"].plugin == plugin
    assert BUILTIN_VARIANTS <= set(registry.variants)  # still there


def test_plugin_files_from_the_environment_variable(tmp_path, fixtures_dir):
    second = tmp_path / "second.py"
    second.write_text(
        textwrap.dedent(
            """
            from ganbench import VariantSpec, hookimpl
            from ganbench_plugins.dcgan import DCGAN
            from ganbench.adversarial import GANConfig

            @hookimpl
            def ganbench_register_variants(register):
                register(VariantSpec("dcgan-copy", DCGAN, GANConfig))
            """
        )
    )
    environ = {PLUGINS_ENV: f"{fixtures_dir / 'plugin_all_hooks.py'}:{second}"}
    registry = load_registry(environ=environ)
    assert {"linear", "dcgan-copy"} <= set(registry.variants)
    assert registry.errors == []


def test_a_plugin_that_fails_to_import_is_reported_by_name_and_the_rest_load(fixtures_dir):
    broken = fixtures_dir / "plugin_broken.py"
    registry = load_registry([broken, fixtures_dir / "plugin_all_hooks.py"], environ={})
    assert [e.plugin for e in registry.errors] == [str(broken)]
    assert "ModuleNotFoundError" in registry.errors[0].message
    assert "ganbench_no_such_module" in registry.errors[0].message
    assert {"linear", *BUILTIN_VARIANTS} <= set(registry.variants)


def test_a_broken_entry_point_is_reported_and_the_rest_load(monkeypatch, tmp_path):
    # A real installed distribution on sys.path: importlib.metadata finds its entry points.
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ganbench]\nbroken = broken_plugin_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry(environ={})
    assert [e.plugin for e in registry.errors] == ["broken"]
    assert "broken_plugin_module" in registry.errors[0].message
    assert BUILTIN_VARIANTS <= set(registry.variants)


def test_an_installed_third_party_plugin_is_discovered_through_its_entry_point(monkeypatch, tmp_path, fixtures_dir):
    (tmp_path / "thirdparty_gan.py").write_text((fixtures_dir / "plugin_all_hooks.py").read_text())
    dist = tmp_path / "thirdparty_gan-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-gan\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ganbench]\nthirdparty = thirdparty_gan\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "thirdparty_gan", raising=False)
    registry = load_registry(environ={})
    assert registry.variants["linear"].plugin == "thirdparty"
    assert registry.metrics["mean-intensity"].plugin == "thirdparty"
    assert registry.errors == []


def test_conflicts_and_invalid_registrations_name_the_plugins_and_keep_the_first(fixtures_dir):
    path = str(fixtures_dir / "plugin_conflicts.py")
    registry = load_registry([path], environ={})
    messages = [str(e) for e in registry.errors]
    assert all(e.plugin == path for e in registry.errors)
    assert any("variant 'cgan' is already registered by plugin 'cgan'" in m for m in messages)
    assert any("expected a VariantSpec, got dict" in m for m in messages)
    assert any("'Bad_Name' is not allowed" in m for m in messages)
    assert any("config must be a dataclass" in m for m in messages)
    assert any("column 'fid_domain'" in m and "'domain-fidelity'" in m and "'ganbench.metrics'" in m for m in messages)
    assert any("ganbench_not_a_hook not marked with @ganbench.hookimpl; ignored" in m for m in messages)
    assert any(
        "probe 'kid-again' fills column 'kid_domain', already filled by metric 'domain-fidelity'" in m for m in messages
    )
    assert any("tables must be lowercase snake_case names other than metrics" in m for m in messages)
    assert "kid-again" not in registry.probes and "bad-table" not in registry.probes
    assert registry.variants["cgan"].plugin == "cgan"  # the built-in wins
    assert registry.variants["other-cgan"].plugin == path
    assert "Bad_Name" not in registry.variants and "dict-gan" not in registry.variants


def test_a_raising_hook_and_an_unknown_hook_are_reported(fixtures_dir):
    path = str(fixtures_dir / "plugin_raises.py")
    registry = load_registry([path], environ={})
    messages = [e.message for e in registry.errors if e.plugin == path]
    assert any("RuntimeError: registration exploded" in m for m in messages)
    assert any("unknown hook(s) ganbench_register_varients" in m for m in messages)
    assert BUILTIN_VARIANTS <= set(registry.variants)


def test_a_missing_plugin_file_is_reported(tmp_path):
    registry = load_registry([tmp_path / "nope.py"], environ={})
    assert len(registry.errors) == 1 and "no such plugin file" in registry.errors[0].message


def test_unknown_names_list_what_is_accepted(registry):
    with pytest.raises(
        UsageError, match=r"unknown variant 'nope'; accepted: acgan, cgan, cgan-pd, cgan-wgangp, dcgan, r1gan, sngan, srgan, wgan, wgan-gp"
    ):
        registry.variant("nope")
    with pytest.raises(UsageError, match=r"unknown dataset 'cifar'; accepted: .*fashion-mnist"):
        registry.dataset("cifar")


def test_plugin_files_get_unique_module_names(tmp_path):
    a, b = tmp_path / "a" / "plugin.py", tmp_path / "b" / "plugin.py"
    for p, value in ((a, 1), (b, 2)):
        p.parent.mkdir()
        p.write_text(f"VALUE = {value}\n")
    ma, mb = import_plugin_file(a), import_plugin_file(b)
    assert (ma.VALUE, mb.VALUE) == (1, 2) and ma.__name__ != mb.__name__


def test_importing_ganbench_creates_no_plugin_manager():
    import subprocess

    code = (
        "import sys, ganbench; import pluggy; "
        "assert 'ganbench.registry' not in sys.modules, 'plugins imported at import time'; "
        "assert 'torch' not in sys.modules, 'torch imported at import time'; "
        "print(ganbench.VariantSpec.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "VariantSpec"


def test_specs_are_frozen():
    spec = VariantSpec("x", object)
    with pytest.raises(AttributeError):
        spec.name = "y"  # type: ignore[misc]


def test_each_plugin_is_recorded_with_its_distribution_version_or_its_files_sha256(fixtures_dir, tmp_path):
    import hashlib
    from importlib import metadata

    path = fixtures_dir / "plugin_third_party.py"
    registry = load_registry([str(path)], environ={})
    assert registry.sources[str(path)] == {
        "file": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    version = metadata.version("ganbench")
    assert registry.sources["ganbench.metrics"] == {"distribution": "ganbench", "version": version}
    assert registry.metrics["bright-fraction"].plugin == str(path)
    # another file, other contents: its own path and its own hash
    copy = tmp_path / "copy.py"
    copy.write_bytes(path.read_bytes().replace(b"bright-fraction", b"bright-copy"))
    other = load_registry([str(copy)], entry_points=False, environ={})
    assert other.sources == {
        str(copy): {"file": str(copy.resolve()), "sha256": hashlib.sha256(copy.read_bytes()).hexdigest()}
    }
