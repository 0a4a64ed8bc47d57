from dataclasses import dataclass
from pathlib import Path

import pytest

from ganbench.adversarial import GANConfig
from ganbench.budget import Budget
from ganbench.config import RunConfig, format_seeds, load_config_file, parse_set, variant_config
from ganbench.errors import UsageError


def test_defaults_are_valid():
    config = RunConfig()
    config.check()
    assert config.budget == Budget.parse("8TFLOP") and config.seeds == (0,) and config.dataset == "fashion-mnist"


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
        ({"dinov2_weights": "/no/such/file"}, "dinov2_weights /no/such/file is not a file; accepted: a DINOv2"),
        ({"set": ["cgan.lr_g"]}, "accepted: VARIANT.KEY=VALUE"),
    ],
)
def test_bad_values_are_one_line_usage_errors(values, message):
    with pytest.raises(UsageError) as err:
        RunConfig.from_mapping(values)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_resample_is_a_boolean_option_and_seeds_format_as_ranges():
    assert RunConfig.from_mapping({"resample": "false"}).resample is False
    assert RunConfig.from_mapping({"resample": "on"}).to_json()["resample"] is True
    seeds = ([0, 1, 2], [0, 1], [3], [0, 1, 2, 5, 7, 8, 9])
    assert [format_seeds(s) for s in seeds] == ["0-2", "0,1", "3", "0-2,5,7-9"]


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


# --- hyperparameter search ranges and valid values (ganbench.hparams) ---------------------------------


def test_parse_search_accepts_strings_tables_and_ranges_and_keeps_canonical_text():
    from ganbench.config import parse_search
    from ganbench.hparams import LogUniform

    assert parse_search(["dcgan.lr_g=log(1e-5, 1e-2)", "dcgan.beta2 = choice(0.9, 0.999)", "wgan.critic_steps=int(1,3)"]) == {
        "dcgan": {"lr_g": "log(1e-5,0.01)", "beta2": "choice(0.9,0.999)"},
        "wgan": {"critic_steps": "int(1,3)"},
    }
    assert parse_search({"dcgan": {"lr_g": "log(0.00001,0.01)", "beta1": "uniform(0,0.5)"}}) == {
        "dcgan": {"lr_g": "log(1e-5,0.01)", "beta1": "uniform(0,0.5)"}
    }
    assert parse_search({"dcgan": {"lr_g": LogUniform(1e-4, 1e-3)}}) == {"dcgan": {"lr_g": "log(1e-4,1e-3)"}}


@pytest.mark.parametrize(
    "value, message",
    [
        (["dcgan.lr_g"], "--search 'dcgan.lr_g' is not understood; accepted: VARIANT.KEY=RANGE"),
        (["dcgan.lr_g=log(0,1)"], "--search dcgan.lr_g=log(0,1): log(0,1) touches 0"),
        (["dcgan.lr_g=log(1e-2,1e-5)"], "is inverted: write the low bound first"),
        (["dcgan.lr_g=uniform(1,1)"], "uniform(1,1) is empty"),
        (["dcgan.lr_g=1e-4"], "'1e-4' is not a range; accepted: log(LOW,HIGH), uniform(LOW,HIGH)"),
        ({"dcgan": {"lr_g": 0.001}}, 'search.dcgan.lr_g must be a RANGE string, e.g. "log(1e-5,1e-2)"'),
        ({"dcgan": "log(1e-5,1e-2)"}, "search.dcgan must be a table of KEY = \"RANGE\""),
    ],
)
def test_bad_search_ranges_are_one_line_usage_errors(value, message):
    with pytest.raises(UsageError) as err:
        RunConfig.from_mapping({"search": value})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_search_round_trips_through_json_and_toml(tmp_path):
    config = RunConfig.from_mapping({"variants": "dcgan", "search": ["dcgan.lr_g=log(1e-4,1e-3)"]})
    assert config.search == {"dcgan": {"lr_g": "log(1e-4,1e-3)"}}
    assert RunConfig.from_mapping(config.to_json()) == config
    assert RunConfig().search == {}
    path = tmp_path / "run.toml"
    path.write_text('variants = ["dcgan"]\n\n[search.dcgan]\nlr_g = "log(1e-4, 1e-3)"\nbeta2 = "choice(0.9,0.99)"\n')
    loaded = RunConfig.from_mapping(load_config_file(path), source=str(path))
    assert loaded.search == {"dcgan": {"lr_g": "log(1e-4,1e-3)", "beta2": "choice(0.9,0.99)"}}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lr_g": "-1"}, "--set cgan.lr_g=-1: lr_g must be > 0 and finite"),
        ({"lr_g": "nan"}, "--set cgan.lr_g=nan: lr_g must be > 0 and finite"),
        ({"lr_d": "inf"}, "--set cgan.lr_d=inf: lr_d must be > 0 and finite"),
        ({"batch_size": "0"}, "--set cgan.batch_size=0: batch_size must be >= 1 and at most the training split's size"),
        ({"beta1": "1"}, "--set cgan.beta1=1: beta1 must be in [0, 1)"),
        ({"z_dim": "0"}, "--set cgan.z_dim=0: z_dim must be >= 1"),
    ],
)
def test_variant_config_refuses_values_outside_the_declared_valid_values(overrides, message):
    with pytest.raises(UsageError) as err:
        variant_config("cgan", GANConfig, overrides)
    assert str(err.value) == message


def test_search_range_types_the_range_against_the_field():
    from ganbench.config import search_range
    from ganbench.hparams import Choice, IntUniform, LogUniform

    assert search_range("cgan", GANConfig, "lr_g", "log(1e-4,1e-3)") == LogUniform(1e-4, 1e-3)
    assert search_range("cgan", GANConfig, "beta2", "choice(0.9,0.99)") == Choice(0.9, 0.99)
    assert search_range("cgan", GANConfig, "z_dim", "int(32,128)") == IntUniform(32, 128)
    assert search_range("x", Rich, "name", "choice(1,2)").values == ("1", "2")  # a str field keeps the text
    assert search_range("x", Rich, "flag", "choice(yes,no)").values == (True, False)


@pytest.mark.parametrize(
    "key, text, message",
    [
        ("nope", "uniform(0,1)", "--search cgan.nope: cgan has no setting 'nope'; accepted: batch_size, beta1"),
        ("z_dim", "log(16,256)", "--search cgan.z_dim=log(16,256): log(16,256) draws real numbers, but z_dim is an integer field"),
        ("lr_g", "choice(fast,slow)", "--search cgan.lr_g=choice(fast,slow): lr_g is a float field, and choice value 'fast' is not one"),
        ("lr_g", "int(1,3)", "draws integers, but lr_g is a float field"),
        ("beta1", "uniform(0.5,2)", "beta1 must be in [0, 1), and uniform(0.5,2) reaches values up to 2"),
        ("batch_size", "int(0,64)", "batch_size must be >= 1 and at most the training split's size, and int(0,64) reaches 0"),
    ],
)  # fmt: skip
def test_search_range_errors(key, text, message):
    from ganbench.config import search_range

    with pytest.raises(UsageError) as err:
        search_range("cgan", GANConfig, key, text)
    assert message in str(err.value) and "\n" not in str(err.value)
