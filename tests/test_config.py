from dataclasses import dataclass
from pathlib import Path

import pytest

from ganbench.adversarial import GANConfig
from ganbench.budget import Budget
from ganbench.config import RunConfig, load_config_file, parse_set, variant_config
from ganbench.errors import UsageError


def test_defaults_are_valid():
    config = RunConfig()
    config.check()
    assert config.budget == Budget.parse("60s") and config.seeds == (0,) and config.dataset == "fashion-mnist"


def test_from_mapping_types_cli_strings():
    config = RunConfig.from_mapping(
        {"variants": "cgan, acgan", "seeds": "0,2-4", "eval-samples": "500", "budget": "100steps", "download": "false"}
    )
    assert config.variants == ("cgan", "acgan")
    assert config.seeds == (0, 2, 3, 4)
    assert config.eval_samples == 500
    assert config.budget == Budget.parse("100steps")
    assert config.download is False


@pytest.mark.parametrize(
    "values, message",
    [
        ({"variantz": "cgan"}, "unknown key 'variantz' in arguments; accepted: "),
        ({"seeds": "a,b"}, "seeds: 'a' is not a seed"),
        ({"seeds": "-1"}, "seeds must be non-negative"),
        ({"eval_samples": "10"}, "eval_samples must be at least 50"),
        ({"evals": 0}, "evals must be at least 1"),
        ({"eval_samples": 1.5}, "expected an integer"),
        ({"download": "maybe"}, "expected true or false"),
        ({"inception_weights": "/no/such/file"}, "inception_weights /no/such/file is not a file"),
        ({"set": ["cgan.lr_g"]}, "accepted: VARIANT.KEY=VALUE"),
    ],
)
def test_bad_values_are_one_line_usage_errors(values, message):
    with pytest.raises(UsageError) as err:
        RunConfig.from_mapping(values)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_to_json_round_trips():
    config = RunConfig.from_mapping(
        {"variants": "cgan", "out": "/tmp/x", "set": ["cgan.lr_g=1e-4"], "metrics": "domain-fidelity", "plugin": []}
    )
    assert RunConfig.from_mapping(config.to_json()) == config


def test_toml_config_file_uses_the_flag_names(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'variants = ["cgan", "acgan"]\nbudget = "500steps"\neval-samples = 2000\nseeds = [0, 1]\n\n[set.cgan]\nlr_g = 0.0001\n'
    )
    config = RunConfig.from_mapping(load_config_file(path), source=str(path))
    assert config.variants == ("cgan", "acgan")
    assert config.eval_samples == 2000 and config.seeds == (0, 1)
    assert config.set == {"cgan": {"lr_g": 0.0001}}


def test_bad_config_files(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("variants = [")
    with pytest.raises(UsageError, match="is not valid TOML"):
        load_config_file(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("epochs = 3\n")
    with pytest.raises(UsageError, match=f"unknown key 'epochs' in {unknown}"):
        RunConfig.from_mapping(load_config_file(unknown), source=str(unknown))


def test_parse_set_accepts_strings_and_tables():
    assert parse_set(["cgan.lr_g=1e-4", "cgan.z_dim=64", "acgan.aux_weight = 2"]) == {
        "cgan": {"lr_g": "1e-4", "z_dim": "64"},
        "acgan": {"aux_weight": "2"},
    }
    assert parse_set({"cgan": {"lr_g": 1e-4}}) == {"cgan": {"lr_g": 1e-4}}


def test_variant_config_types_overrides_against_the_dataclass():
    config = variant_config("cgan", GANConfig, {"lr_g": "1e-4", "z_dim": "64", "beta1": 0})
    assert config.lr_g == 1e-4 and isinstance(config.lr_g, float)
    assert config.z_dim == 64 and isinstance(config.z_dim, int)
    assert config.beta1 == 0.0 and config.lr_d == GANConfig().lr_d


@dataclass(frozen=True)
class Rich:
    flag: bool = False
    widths: tuple[int, ...] = (1, 2)
    name: str = "a"
    limit: float | None = None


def test_variant_config_types_bools_tuples_and_optionals():
    config = variant_config("x", Rich, {"flag": "yes", "widths": "3,4", "name": "b", "limit": "none"})
    assert config == Rich(True, (3, 4), "b", None)
    assert variant_config("x", Rich, {"limit": "2.5"}).limit == 2.5


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lrr": "1"}, "cgan has no setting 'lrr'; accepted: batch_size, beta1"),
        ({"z_dim": "1.5"}, "--set cgan.z_dim=1.5"),
        ({"lr_g": "fast"}, "--set cgan.lr_g=fast"),
        ({"z_dim": True}, "expected an integer"),
    ],
)
def test_variant_config_errors(overrides, message):
    with pytest.raises(UsageError) as err:
        variant_config("cgan", GANConfig, overrides)
    assert message in str(err.value)


def test_paths_expand_user():
    assert RunConfig.from_mapping({"out": "~/x"}).out == Path.home() / "x"


def test_probes_default_to_all_and_an_empty_list_means_none():
    assert RunConfig().probes is None
    assert RunConfig.from_mapping({"probes": "steering, path-length"}).probes == ("steering", "path-length")
    assert RunConfig.from_mapping({"probes": []}).probes == ()
    assert RunConfig.from_mapping(RunConfig.from_mapping({"probes": []}).to_json()).probes == ()
    assert RunConfig.from_mapping(RunConfig().to_json()).probes is None
