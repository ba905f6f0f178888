"""Partners and service items by name in the viewer's script: partners.yaml may give a name in
简体 and 繁體 beside the official Chinese one and the English one; the console shows the viewer's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from adapters.registry import protocols
from federation import contracts
from federation.api.console.pages import service_names
from federation.config import load_config
from federation.config.model import Names
from federation.domain.errors import ConfigError
from tests.conftest import REPO


@pytest.fixture(scope="module")
def shipped() -> Any:
    """The shipped catalogue's configuration."""
    return load_config(REPO, protocols())


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh_Hans", "广东省一体化政务服务平台跨域通办数据交换"),
        ("zh_Hant", "廣東省一體化政務服務平台跨域通辦數據交換"),
        ("en", "Guangdong Integrated Government Services Platform - cross-region exchange"),
    ],
)
def test_a_partner_is_named_in_the_viewers_script(
    shipped: Any, language: str, expected: str
) -> None:
    """Guangdong's platform reads 简体, 繁體 or English as the viewer's language asks."""
    assert shipped.partners["gd"].names.shown(language) == expected


def test_hong_kong_keeps_its_official_traditional_name_and_gains_a_simplified_one(
    shipped: Any,
) -> None:
    """An authority that writes 繁體 is named so to 繁體 readers, and in 简体 to 简体 readers."""
    names = shipped.partners["hk"].names
    assert names.shown("zh_Hant") == names.zh
    assert "數字政策辦公室" in names.zh
    assert "数字政策办公室" in names.shown("zh_Hans")


def test_service_items_in_the_viewers_script(shipped: Any) -> None:
    """The console's service names for a 繁體 reader are 繁體 (a mainland item too)."""

    class Catalogue:
        config = shipped

    hant = service_names(Catalogue(), "zh_Hant")
    hans = service_names(Catalogue(), "zh_Hans")
    codes = [code for code in hans if "异地购房提取住房公积金" in hans[code]]
    assert codes, hans
    assert "異地購房提取住房公積金" in hant[codes[0]]


def test_every_shipped_name_has_both_scripts(shipped: Any) -> None:
    """Every partner and service item of the shipped catalogue reads in 简体 and 繁體 alike:
    one of them is the official name, the other is given."""
    named = [p.names for p in shipped.partners.values()]
    named += [s.names for p in shipped.partners.values() for s in p.services.values() if s.names]
    lacking = [n.zh for n in named if n.zh_hans is None and n.zh_hant is None]
    assert not lacking


def test_names_fall_back_to_the_official_chinese_name() -> None:
    """Without a name in the reader's script the official Chinese name is shown."""
    names = Names(zh="横琴粤澳深度合作区", en="Hengqin")
    assert names.shown("zh_Hant") == names.shown("zh_Hans") == "横琴粤澳深度合作区"
    assert names.shown("en") == "Hengqin"


def test_an_unknown_script_key_is_named_with_its_line(tmp_path: Path) -> None:
    """A misspelt script (zh-TW) is refused by the loader and by the published schema."""
    text = (REPO / "partners.yaml").read_text(encoding="utf-8")
    text = text.replace("zh-Hant: 廣東省一體化", "zh-TW: 廣東省一體化", 1)
    (tmp_path / "partners.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "mappings").symlink_to(REPO / "mappings")
    (tmp_path / "partners").symlink_to(REPO / "partners")
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path, protocols())
    assert any("zh-TW" in str(p) and "partners.yaml:" in str(p) for p in refused.value.problems)
    schema = Draft202012Validator(contracts.schema("partners"))
    assert list(schema.iter_errors(yaml.safe_load(text)))
    assert not list(schema.iter_errors(yaml.safe_load((REPO / "partners.yaml").read_text())))
