"""docs/plugins.md stays true: its example files are extracted and run."""

import re
from pathlib import Path

import pandas as pd
import pytest

import ganbench
from ganbench.registry import load_registry

DOCS = Path(__file__).parent.parent / "docs"


def doc_files(doc: Path) -> dict[str, str]:
    """Code blocks that start with '# file: NAME', by NAME."""
    blocks = re.findall(r"```python\n# file: (\S+)\n(.*?)```", doc.read_text(), flags=re.S)
    return {name: body for name, body in blocks}


@pytest.mark.slow
def test_plugins_md_worked_example_runs(tmp_path, monkeypatch, run_kwargs):
    files = doc_files(DOCS / "plugins.md")
    assert {"hinge_gan.py", "test_hinge_gan.py", "intensity.py"} <= set(files)
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    monkeypatch.chdir(tmp_path)

    # the example's own test, as the docs tell the author to write it
    namespace: dict = {}
    exec(compile(files["test_hinge_gan.py"], "test_hinge_gan.py", "exec"), namespace)
    namespace["test_hinge_gan"]()

    registry = load_registry(["hinge_gan.py", "intensity.py"])
    assert registry.variants["hinge-gan"].plugin == "hinge_gan.py" and not registry.errors
    result = ganbench.run(
        variants="cgan,hinge-gan", set={"hinge-gan": {"lr_d": "2e-4"}}, registry=registry, **run_kwargs
    )
    frame = pd.read_csv(result.run_dir / "metrics.csv")
    hinge = frame[frame.variant == "hinge-gan"]
    assert len(hinge) == run_kwargs["evals"]  # one row per evaluation: the checks below are not vacuous
    assert (hinge.status == "ok").all() and hinge.fid_domain.notna().all() and hinge.class_consistency.notna().all()
    ok = frame[frame.status == "ok"]
    assert set(ok.variant) == {"cgan", "hinge-gan"} and ok.mean_intensity.between(0, 1).all()


@pytest.mark.slow
def test_plugins_md_metric_and_probe_examples_and_their_tests_run(tmp_path, monkeypatch, cache_dir):
    files = doc_files(DOCS / "plugins.md")
    assert {"bright.py", "walk.py", "test_bright_fraction.py", "test_latent_walk.py"} <= set(files)
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANBENCH_CACHE", str(cache_dir))  # the helpers' default cache: the suite's, trained once
    registry = load_registry(["bright.py", "walk.py"], environ={})
    assert not registry.errors and registry.metrics["bright-fraction"].spec.config.__name__ == "BrightConfig"
    # the tests the docs tell an author to write, as they are written there
    for test_file, test in (
        ("test_bright_fraction.py", "test_bright_fraction"),
        ("test_latent_walk.py", "test_latent_walk"),
    ):
        namespace: dict = {}
        exec(compile(files[test_file], test_file, "exec"), namespace)
        namespace[test]()


def test_plugins_md_documents_every_field_of_the_data_containers():
    """The fields a metric or probe reads and returns, each in docs/plugins.md's tables."""
    import dataclasses

    from ganbench.data import DatasetSplits
    from ganbench.evaluation import Evaluation, MetricValues
    from ganbench.probes import ProbeContext, ProbeResult
    from ganbench.specs import MetricSpec, ProbeSpec

    text = (DOCS / "plugins.md").read_text()
    for container in (DatasetSplits, Evaluation, MetricValues, ProbeResult, MetricSpec, ProbeSpec):
        rows = re.findall(rf"^\| `{container.__name__}` field \|.*?\n\n", text, flags=re.M | re.S)
        assert rows, f"docs/plugins.md has no table of {container.__name__}'s fields"
        documented = set(re.findall(r"^\| `([a-z0-9_]+)(?:\(\))?`(?:, `([a-z0-9_]+)`)?", rows[0], flags=re.M))
        names = {n for pair in documented for n in pair if n}
        public = {f.name for f in dataclasses.fields(container) if not f.name.startswith("_")}
        assert public <= names, f"{container.__name__}: {sorted(public - names)} undocumented"
    context = {f.name for f in dataclasses.fields(ProbeContext)}
    assert all(f"`{name}`" in text for name in context)


def test_the_walkthrough_quotes_the_example_package():
    text = (DOCS / "plugins.md").read_text()
    example = DOCS.parent / "examples" / "ganbench-lsgan"
    entry = '[project.entry-points.ganbench]\nlsgan = "ganbench_lsgan"'
    assert entry in text and entry in (example / "pyproject.toml").read_text()
    assert f"```toml\n{(example / 'pyproject.toml').read_text()}```" in text  # the whole file, as it is
    source = (example / "src" / "ganbench_lsgan" / "__init__.py").read_text()
    for line in ("super().__init__(context, config, loss=LeastSquares())", "def ganbench_register_variants(register):"):
        assert line in text and line in source


def test_tuning_md_search_space_example_declares_what_it_says():
    from ganbench.hparams import search_space, valid_values

    text = (DOCS / "tuning.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "class MyGANConfig" in b)
    namespace: dict = {}
    exec(compile(block, "tuning.md", "exec"), namespace)
    config = namespace["MyGANConfig"]
    space = {key: r.text for key, r in search_space(config).items()}
    assert space == {
        "lr_g": "log(1e-5,0.01)", "beta1": "uniform(0,1)", "beta2": "choice(0.9,0.999)", "critic_steps": "int(1,5)",
    }  # fmt: skip
    assert set(valid_values(config)) == {"lr_g", "critic_steps", "width"}
