"""The pool file: what a valid one gives, and what each mistake says."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphroute import ConfigError, ModelPool, UnknownModelError

VALID = """
[routing]
default = "local"
[routing.nodes]
summarize = "cloud"

[models.local]
provider = "llamacpp"
model = "qwen2.5-coder-0.5b-instruct"

[models.cloud]
provider = "openai"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
input_price = 0.15
output_price = 0.60
context_window = 128000
capabilities = ["tools", "json", "streaming"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "graphroute.toml"
    path.write_text(text)
    return path


def test_a_valid_pool_file_loads_with_defaults_filled(tmp_path: Path) -> None:
    pool = ModelPool.from_toml(write(tmp_path, VALID))

    assert pool.names == ["local", "cloud"]
    assert pool["local"].locality == "local"  # inferred from the provider
    assert pool["cloud"].locality == "cloud"
    assert pool["cloud"].cost(1_000_000, 1_000_000) == pytest.approx(0.75)
    assert pool.default_model() == "local"
    assert pool.routing.nodes == {"summarize": "cloud"}


def test_an_unknown_key_names_the_file_the_entry_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("input_price = 0.15", "input_prise = 0.15"))

    with pytest.raises(ConfigError) as caught:
        ModelPool.from_toml(path)

    message = str(caught.value)
    assert str(path) in message
    assert "models.cloud" in message
    assert "unknown key 'input_prise'" in message


def test_an_unknown_provider_lists_the_valid_ones(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace('provider = "openai"', 'provider = "anthropic"'))

    with pytest.raises(ConfigError, match=r"models\.cloud.*unknown provider 'anthropic'.*'openai-compatible'"):
        ModelPool.from_toml(path)


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace('model = "gpt-4o-mini"\n', ""))

    with pytest.raises(ConfigError, match=r"models\.cloud.*missing required key 'model'"):
        ModelPool.from_toml(path)


def test_a_route_to_an_undefined_model_lists_the_pool(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace('summarize = "cloud"', 'summarize = "gpt-5"'))

    with pytest.raises(UnknownModelError, match=r"routing\.nodes\.summarize.*'gpt-5'.*cloud, local"):
        ModelPool.from_toml(path)


def test_openai_without_a_key_variable_says_how_to_declare_it(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace('api_key_env = "OPENAI_API_KEY"\n', ""))

    with pytest.raises(ConfigError, match=r"needs api_key_env"):
        ModelPool.from_toml(path)


def test_broken_toml_and_missing_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        ModelPool.from_toml(write(tmp_path, "[models.local\nprovider = 1"))
    with pytest.raises(ConfigError, match="file not found"):
        ModelPool.from_toml(tmp_path / "absent.toml")


@pytest.mark.parametrize("text", ["", '[routing]\ndefault = "local"\n'])
def test_a_pool_file_without_models_says_what_one_looks_like(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=r"no models: a pool needs at least one \[models.<name>\] table"):
        ModelPool.from_toml(write(tmp_path, text))


def test_negative_prices_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"input_price"):
        ModelPool.from_toml(write(tmp_path, VALID.replace("input_price = 0.15", "input_price = -1")))


def test_asking_the_pool_for_an_unknown_model_lists_what_it_has(tmp_path: Path) -> None:
    pool = ModelPool.from_toml(write(tmp_path, VALID))

    with pytest.raises(UnknownModelError, match=r"'gpt-4o'.*cloud, local"):
        pool["gpt-4o"]


def test_the_example_pool_file_is_valid() -> None:
    pool = ModelPool.from_toml(Path(__file__).parents[1] / "examples" / "graphroute.toml")

    assert {spec.locality for spec in pool} == {"local", "cloud"}


def test_a_managed_llamacpp_model_gets_one_slots_share_of_the_context() -> None:
    pool = ModelPool.from_dict({
        "models": {
            "default": {"provider": "llamacpp", "model": "qwen2.5-coder-0.5b-instruct"},
            "wide": {"provider": "llamacpp", "model": "qwen2.5-coder-0.5b-instruct",
                     "llamacpp": {"context_size": 8192, "parallel": 2}},
        }
    })  # fmt: skip

    assert pool["default"].context_window == 4096 // 8
    assert pool["wide"].context_window == 4096
