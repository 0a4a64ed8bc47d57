"""ganbench.hparams: search ranges and valid values declared with a config's fields, and what
every built-in declares."""

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from scipy.stats import qmc

import ganbench.hparams as H
from ganbench.adversarial import GANConfig
from ganbench.hparams import (
    AtLeast,
    BatchSize,
    Choice,
    Interval,
    IntUniform,
    LogUniform,
    Positive,
    Uniform,
    check_declarations,
    check_range,
    check_values,
    hparam,
    parse_range,
    search_space,
    valid_values,
)
from ganbench.registry import load_registry

DOCS = Path(__file__).parent.parent / "docs" / "plugins.md"
SOBOL = (0.0, 0.5, 0.999)


# --- ranges ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "search",
    [LogUniform(1e-5, 1e-2), Uniform(0, 1), Uniform(-2.5, 3), IntUniform(1, 5), Choice(0.9, 0.999), Choice("a", "b", "c")],
    ids=lambda r: r.text,
)
def test_sobol_coordinates_map_inside_the_range(search):
    for u in (*SOBOL, 1.0, math.nextafter(1.0, 0.0)):
        assert search.contains(search.map(u)), (search.text, u)
    assert search.map(0.0) == (search.values[0] if isinstance(search, Choice) else search.low)


def test_log_uniform_maps_the_middle_to_the_geometric_midpoint():
    r = LogUniform(1e-5, 1e-1)
    assert r.map(0.5) == pytest.approx(1e-3, rel=1e-12)
    assert r.map(0.25) == pytest.approx(1e-4, rel=1e-12)
    assert r.map(0.999) < 1e-1 and r.map(1.0) < 1e-1 and r.contains(r.map(1.0))
    assert Uniform(2, 4).map(0.5) == 3.0


def test_integer_and_choice_ranges_map_by_equal_width_bins():
    r = IntUniform(1, 5)
    assert [r.map(u) for u in (0.0, 0.19, 0.2, 0.39, 0.5, 0.79, 0.8, 0.999, 1.0)] == [1, 1, 2, 2, 3, 4, 5, 5, 5]
    assert all(isinstance(r.map(u), int) for u in SOBOL)
    c = Choice(0.9, 0.999)
    assert [c.map(u) for u in (0.0, 0.4999, 0.5, 0.999)] == [0.9, 0.9, 0.999, 0.999]
    assert not c.contains(0.95) and c.contains(0.9)
    assert IntUniform(1, 5).contains(5) and not IntUniform(1, 5).contains(6) and not IntUniform(1, 5).contains(2.5)
    assert not Uniform(0, 1).contains(1.0) and Uniform(0, 1).contains(0.0)  # [low, high), as numpy's uniform
    assert not Choice(0, 1).contains(False)  # a bool is not the number 0 here


@pytest.mark.parametrize("u", [-0.1, 1.5, float("nan"), "0.5"])
def test_map_refuses_coordinates_outside_the_unit_interval(u):
    with pytest.raises(ValueError, match=r"coordinate in \[0, 1\)"):
        Uniform(0, 1).map(u)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LogUniform(0, 1), "log(0,1) touches 0: a log range needs 0 < low < high"),
        (lambda: LogUniform(-1, 1), "log(-1,1) reaches below 0"),
        (lambda: LogUniform(1e-2, 1e-5), "log(0.01,1e-5) is inverted: write the low bound first, e.g. log(1e-5,0.01)"),
        (lambda: Uniform(1, 1), "uniform(1,1) is empty: a range needs low < high"),
        (lambda: Uniform(0, float("inf")), "the bounds must be finite"),
        (lambda: Uniform(float("nan"), 1), "the bounds must be finite"),
        (lambda: Uniform("a", 1), "the bounds must be numbers"),
        (lambda: IntUniform(5, 1), "int(5,1) is inverted"),
        (lambda: IntUniform(3, 3), "int(3,3) is empty"),
        (lambda: IntUniform(1, 2.5), "the bounds must be integers"),
        (lambda: IntUniform(True, 3), "the bounds must be integers"),
        (lambda: Choice(), "choice() is empty or holds one value"),
        (lambda: Choice(0.5), "choice(0.5) is empty or holds one value"),
        (lambda: Choice(1, 2, 1), "choice(1,2,1) repeats 1"),
        (lambda: Choice(1, float("nan")), "choice values must be finite"),
        (lambda: Choice("a,b", "c"), "cannot be written in a range"),
    ],
)
def test_bad_ranges_are_refused_when_built(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_ranges_are_frozen_and_compare_by_value():
    r = LogUniform(1e-5, 1e-2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.low = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        Choice(1, 2).values = (3, 4)
    assert r == LogUniform(1e-5, 0.01) and hash(r) == hash(LogUniform(1e-5, 0.01))
    assert Choice(1, 2) == Choice(1, 2) != Choice(2, 1)
    assert IntUniform(1, 5).low == 1 and isinstance(Uniform(0, 1).low, float)


@pytest.mark.parametrize(
    "search",
    [
        LogUniform(1e-5, 1e-2), LogUniform(0.1, 100), LogUniform(1e-3, 1), LogUniform(3.3e-7, 2.5e22),
        Uniform(0, 1), Uniform(-0.125, 1e-9), IntUniform(1, 5), IntUniform(-3, 40),
        Choice(0.9, 0.999), Choice(16, 32, 64), Choice("none", "layer"), Choice(True, False), Choice(1, 2.5, "x"),
    ],
    ids=lambda r: r.text,
)  # fmt: skip
def test_text_parses_back(search):
    assert parse_range(search.text) == search
    assert str(search) == search.text and " " not in search.text


def test_parse_range_reads_each_form_with_spaces():
    assert parse_range(" log( 1e-5 , 1e-2 ) ") == LogUniform(1e-5, 1e-2)
    assert parse_range("uniform(0,1)") == Uniform(0, 1)
    assert parse_range("int(1, 5)") == IntUniform(1, 5)
    assert parse_range("choice(a, b, c)") == Choice("a", "b", "c")
    assert parse_range("choice(0.9,0.999)").values == (0.9, 0.999)
    assert parse_range("choice(true,false)").values == (True, False)
    assert parse_range("choice(1,2)", value=str).values == ("1", "2")  # the caller types choice values
    assert LogUniform(1e-5, 1e-2).text == "log(1e-5,0.01)" and Uniform(0, 100.0).text == "uniform(0,100)"


@pytest.mark.parametrize(
    "text, message",
    [
        ("log(1e-5)", "log(LOW,HIGH) takes two bounds, got 1"),
        ("uniform(0,1,2)", "takes two bounds, got 3"),
        ("int(1.5,3)", "the bounds of int(LOW,HIGH) must be integers"),
        ("uniform(a,b)", "must be numbers"),
        ("normal(0,1)", "is not a range; accepted: log(LOW,HIGH), uniform(LOW,HIGH), int(LOW,HIGH) or choice(A,B,...)"),
        ("0.1", "is not a range"),
        ("choice(a,,b)", "a choice value is empty"),
        ("log(0,1)", "touches 0"),
    ],
)
def test_parse_range_errors_name_what_is_accepted(text, message):
    with pytest.raises(ValueError) as err:
        parse_range(text)
    assert message in str(err.value)


# --- validators and declarations ---------------------------------------------------------------------


def test_validators():
    assert Positive().accepts(1e-9) and not any(Positive().accepts(v) for v in (0, -1, math.nan, math.inf, True, "1"))
    assert AtLeast(1).accepts(1) and not AtLeast(1).accepts(0) and not AtLeast(0).accepts(math.nan)
    beta = Interval(0, 1, include_high=False)
    assert beta.accepts(0.0) and beta.accepts(0.999) and not beta.accepts(1.0) and not beta.accepts(-0.1)
    assert beta.text == "in [0, 1)" and Interval(0, 1, include_low=False).text == "in (0, 1]"
    assert Positive().text == "> 0 and finite" and AtLeast(1).text == ">= 1"
    assert BatchSize().accepts(1) and not BatchSize().accepts(0) and "training split" in BatchSize().text
    with pytest.raises(ValueError):
        Interval(1, 0)


@dataclass(frozen=True)
class Base:
    lr: float = hparam(1e-3, search=LogUniform(1e-5, 1e-2), valid=Positive())
    steps: int = hparam(1, search=IntUniform(1, 5), valid=AtLeast(1))
    width: int = hparam(64, valid=AtLeast(1))
    norm: Literal["batch", "none"] = "batch"
    plain: float = 0.5


@dataclass(frozen=True)
class Child(Base):
    lr: float = 1e-4  # a new default keeps the base's declaration
    steps: int = hparam(2, valid=AtLeast(1))  # declared again: no longer searched


def test_search_space_and_valid_values_follow_the_fields_and_their_bases():
    assert search_space(Base) == {"lr": LogUniform(1e-5, 1e-2), "steps": IntUniform(1, 5)}
    assert list(valid_values(Base)) == ["lr", "steps", "width"]
    assert search_space(Child) == {"lr": LogUniform(1e-5, 1e-2)}
    assert valid_values(Child())["lr"] == Positive()  # an instance works too
    assert Child().lr == 1e-4 and Child().steps == 2
    check_declarations(Base)
    check_declarations(Child)


def test_check_values_names_the_first_invalid_field():
    check_values(Base())
    with pytest.raises(ValueError, match=r"^lr must be > 0 and finite, got -1.0$"):
        check_values(Base(lr=-1.0))
    with pytest.raises(ValueError, match="width must be >= 1, got 0"):
        check_values(Child(width=0))


def test_hparam_refuses_an_invalid_default_or_a_range_reaching_invalid_values():
    with pytest.raises(ValueError, match="default -1 is not valid: it must be > 0 and finite"):
        hparam(-1, valid=Positive())
    with pytest.raises(ValueError, match=r"must be in \[0, 1\), and uniform\(0,2\) reaches values up to 2"):
        hparam(0.5, search=Uniform(0, 2), valid=Interval(0, 1, include_high=False))
    with pytest.raises(ValueError, match="reaches 0"):
        hparam(1, search=IntUniform(0, 3), valid=AtLeast(1))
    with pytest.raises(TypeError):
        hparam(1.0, search=(1e-5, 1e-2))
    field = hparam(2e-4, search=LogUniform(1e-5, 1e-2), valid=Positive())
    assert isinstance(field, dataclasses.Field) and field.default == 2e-4 and field.metadata


@pytest.mark.parametrize(
    "name, search, message",
    [
        ("nope", Uniform(0, 1), "there is no setting 'nope'; accepted: lr, norm, plain, steps, width"),
        ("width", LogUniform(16, 256), "draws real numbers, but width is an integer field"),
        ("lr", IntUniform(1, 5), "draws integers, but lr is a float field"),
        ("lr", Choice("a", "b"), "lr is a float field; its choices must be numbers"),
        ("steps", Choice(1, 2.5), "steps is an integer field; its choices must be integers"),
        ("norm", Choice("batch", "layer"), "norm takes one of batch, none"),
        ("norm", Uniform(0, 1), "norm takes one of batch, none"),
        ("lr", Uniform(-1, 1), "lr must be > 0 and finite, and uniform(-1,1) reaches -1"),
        ("steps", IntUniform(0, 5), "steps must be >= 1, and int(0,5) reaches 0"),
    ],
)
def test_check_range_refuses_a_range_that_does_not_fit_the_field(name, search, message):
    with pytest.raises(ValueError) as err:
        check_range(Base, name, search)
    assert message in str(err.value)


def test_check_range_accepts_fitting_ranges():
    for name, search in [
        ("lr", Uniform(1e-4, 1e-3)), ("lr", Choice(1e-4, 1e-3)), ("lr", Choice(1, 2)), ("steps", Choice(1, 3)),
        ("width", IntUniform(16, 256)), ("norm", Choice("batch", "none")), ("plain", Uniform(-5, 5)),
    ]:  # fmt: skip
        check_range(Base, name, search)


def test_a_default_outside_the_valid_values_is_a_plugin_error(tmp_path):
    plugin = tmp_path / "bad_default.py"
    plugin.write_text(
        "from dataclasses import dataclass\n"
        "from ganbench import VariantSpec, hookimpl\n"
        "from ganbench.adversarial import GANConfig\n"
        "@dataclass(frozen=True)\n"
        "class Bad(GANConfig):\n"
        "    lr_g: float = -1.0\n"
        "@hookimpl\n"
        "def ganbench_register_variants(register):\n"
        "    register(VariantSpec('bad-gan', lambda context, config: None, Bad))\n"
    )
    registry = load_registry([plugin])
    assert "bad-gan" not in registry.variants and "dcgan" in registry.variants
    (error,) = [e for e in registry.errors if e.plugin.endswith("bad_default.py")]
    assert "config Bad: lr_g: its default -1.0 is not valid: it must be > 0 and finite" in error.message


# --- the built-ins -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def variants():
    return {name: r.spec for name, r in load_registry().variants.items()}


def test_every_builtin_default_is_valid_and_every_range_non_empty(variants):
    assert set(variants) == {"dcgan", "cgan", "acgan", "wgan", "wgan-gp", "cgan-wgangp", "srgan", "sngan", "cgan-pd", "r1gan"}
    for name, spec in variants.items():
        config = spec.config()
        check_values(config)
        check_declarations(spec.config)
        assert spec.search_space == search_space(spec.config) and spec.search_space, name
        assert {"lr_g", "lr_d", "batch_size"} <= set(valid_values(spec.config)), name
        for key, search in spec.search_space.items():
            assert search.map(0.0) != search.map(0.999), (name, key)  # more than one value
            assert search.contains(getattr(config, key)), (name, key)  # the paper default is inside too
        assert "Lucic" in (spec.config.__doc__ or ""), f"{name}: its config should say where its ranges come from"


def test_builtins_follow_the_protocol_of_lucic_et_al(variants):
    lr, beta1, steps, gp = LogUniform(1e-5, 1e-2), Uniform(0, 1), IntUniform(1, 5), LogUniform(1e-1, 1e2)
    for name, spec in variants.items():
        space = spec.search_space
        assert space["lr_g"] == space["lr_d"] == lr, name
        if name != "wgan":  # RMSprop: no betas to search
            # r1gan adds its paper's beta2 = 0.99, its default, to Lucic et al.'s two values
            beta2 = Choice(0.9, 0.99, 0.999) if name == "r1gan" else Choice(0.9, 0.999)
            assert space["beta1"] == beta1 and space["beta2"] == beta2, name
    for name in ("wgan", "wgan-gp", "cgan-wgangp"):
        assert variants[name].search_space["critic_steps"] == steps
    assert variants["wgan-gp"].search_space["gp_weight"] == gp == variants["cgan-wgangp"].search_space["gp_weight"]
    assert variants["wgan"].search_space["clip"] == LogUniform(1e-3, 1)
    assert "beta1" not in variants["wgan"].search_space and "aux_weight" not in variants["acgan"].search_space


def test_scrambled_sobol_settings_are_valid_configs_of_every_builtin(variants):
    for name, spec in variants.items():
        space = spec.search_space
        points = qmc.Sobol(d=len(space), scramble=True, seed=0).random(8)
        for point in points:
            setting = {key: search.map(u) for (key, search), u in zip(space.items(), point)}
            assert all(space[key].contains(v) for key, v in setting.items())
            check_values(spec.config(**setting))


def test_gan_config_defaults_are_unchanged():
    assert dataclasses.asdict(GANConfig()) == {
        "z_dim": 100, "batch_size": 64, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999, "g_width": 64,
        "d_width": 64,
    }  # fmt: skip


# --- docs --------------------------------------------------------------------------------------------


def test_every_public_name_of_the_kit_is_documented_in_plugins_md():
    text = DOCS.read_text()
    section = text[text.index("## Search spaces and valid values") :]
    missing = [name for name in H.__all__ if not re.search(rf"`{name}[(`]", section)]
    assert not missing, f"docs/plugins.md does not document {missing}"


def test_the_declaration_example_in_plugins_md_runs():
    text = DOCS.read_text()
    section = text[text.index("## Search spaces and valid values") :]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "plugins.md", "exec"), namespace)
    config = namespace["MyConfig"]
    assert search_space(config) == {"lr": LogUniform(1e-5, 1e-2), "critic_steps": IntUniform(1, 5)}
    assert set(valid_values(config)) == {"lr", "critic_steps", "width"}


# --- planning ------------------------------------------------------------------------------------------


def test_the_plan_holds_each_variants_search_space_with_the_runs_ranges(variants):
    from ganbench.config import RunConfig
    from ganbench.harness.plan import plan_run

    config = RunConfig.from_mapping(
        {
            "variants": "dcgan,wgan-gp",
            "device": "cpu",
            "set": ["dcgan.beta2=0.99"],  # a fixed value is not searched
            "search": ["dcgan.lr_g=log(1e-4,1e-3)", "dcgan.z_dim=int(32,128)", "wgan-gp.critic_steps=choice(1,5)"],
        }
    )
    plan = plan_run(config, load_registry())
    dcgan, wgan_gp = plan.variant("dcgan"), plan.variant("wgan-gp")
    assert dcgan.search == {
        "lr_g": LogUniform(1e-4, 1e-3), "lr_d": LogUniform(1e-5, 1e-2), "beta1": Uniform(0, 1), "z_dim": IntUniform(32, 128),
    }  # fmt: skip
    assert wgan_gp.search == {**variants["wgan-gp"].search_space, "critic_steps": Choice(1, 5)}
    assert dcgan.config.beta2 == 0.99 and dcgan.config.lr_g == 2e-4
