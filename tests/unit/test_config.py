"""partners.yaml validation: every mistake named by file:line and key path (federation.config)."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import pytest

import adapters.registry
from adapters.registry import protocols
from federation.config import Config, RetryPolicy, Timeouts, load_config
from federation.config.reader import Reader, parse_duration
from federation.config.yamlsrc import PathKey
from federation.domain.errors import ConfigError
from federation.runtime.catalogue import load_catalogue

REPO_ROOT = Path(__file__).resolve().parents[2]

MAPPING = "mapping: 1\nrequest:\n  holder.name: applicant.name\n"

Load = Callable[[str], Config]
Problems = Callable[[str], list[str]]


@pytest.fixture
def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """A factory writing partners.yaml (dedented) beside mappings/hk.yaml and mappings/mo.yaml.

    The working directory becomes the config folder, so problems show ``partners.yaml:N``
    exactly as ``tongban check`` run there would print them.
    """
    (tmp_path / "mappings").mkdir()
    for name in ("hk", "mo"):
        (tmp_path / "mappings" / f"{name}.yaml").write_text(MAPPING, encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    def write(text: str) -> Path:
        file = tmp_path / "partners.yaml"
        file.write_text(textwrap.dedent(text), encoding="utf-8")
        return tmp_path

    return write


@pytest.fixture
def load(write_config: Callable[[str], Path]) -> Load:
    """A factory: partners.yaml text → the loaded Config."""

    def run(text: str) -> Config:
        return load_config(write_config(text), protocols())

    return run


@pytest.fixture
def problems(write_config: Callable[[str], Path]) -> Problems:
    """A factory: partners.yaml text → every problem line the ConfigError reports."""

    def run(text: str) -> list[str]:
        root = write_config(text)
        with pytest.raises(ConfigError) as info:
            load_config(root, protocols())
        assert str(info.value) == "\n".join(str(p) for p in info.value.problems)
        return [str(p) for p in info.value.problems]

    return run


def partner(**overrides: str) -> str:
    """A partners.yaml with one valid REST partner; ``overrides`` replace or add lines.

    Lines 3-7 hold id, name, region, protocol and endpoint; added keys start at line 8 and
    ``services`` always comes last.
    """
    lines = {
        "id": "id: hk",
        "name": "name: {zh: 香港特別行政區政府運輸署, en: Transport Department}",
        "region": 'region: {code: "81", iso: CN-HK}',
        "protocol": "protocol: rest",
        "endpoint": "endpoint: https://api.td.example.hk/v1",
    }
    services = overrides.pop("services", "services:\n      TD-VL-RENEW: mappings/hk.yaml")
    lines.update(overrides)
    body = "\n    ".join(line for line in (*lines.values(), services) if line)
    return f"version: 1\npartners:\n  - {body}\n"


# --- a good file ---------------------------------------------------------------------------------

GOOD = """\
version: 1
defaults:
  timeouts: {connect: 2s, read: 10s, total: 20s}
  concurrency: 4
  retry: {max_attempts: 5, backoff_base: 1s, backoff_cap: 5m, jitter: 0.1, max_elapsed: 2d}
broker: {max_body_bytes: 2048, lease: 1m, poll_interval: 250ms}
sources:
  - id: gd-window
    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}
partners:
  - id: hk
    name: {zh: 香港特別行政區政府運輸署, en: Transport Department}
    region: {code: "81", iso: CN-HK}
    protocol: rest
    endpoint: https://api.td.example.hk/v1
    rest:
      idempotency_header: X-Request-Id
      headers: {X-Caller: FZSJ-TONGBAN}
    services:
      TD-VL-RENEW:
        name: {zh: 車輛牌照續期, en: Vehicle licence renewal}
        mapping: mappings/hk.yaml
        path: /vehicle-licences/renewals
        method: PUT
  - id: mo
    name: {zh: 澳門治安警察局, en: Public Security Police Force}
    region: {code: "820000", iso: CN-MO}
    protocol: rest
    endpoint: http://mo.example/api
    timeouts: {connect: 500ms}
    concurrency: 2
    retry: {max_attempts: 3}
    services:
      MO-1: mappings/mo.yaml
"""


def test_good_file_loads_with_defaults_and_overrides(load: Load) -> None:
    """A valid file yields partners whose own settings override the defaults section."""
    config = load(GOOD)
    hk, mo = config.partners["hk"], config.partners["mo"]
    assert hk.timeouts == Timeouts(connect=2.0, read=10.0, total=20.0)
    assert mo.timeouts == Timeouts(connect=0.5, read=10.0, total=20.0)
    assert (hk.concurrency, mo.concurrency) == (4, 2)
    assert hk.retry == RetryPolicy(
        max_attempts=5, backoff_base=1.0, backoff_cap=300.0, jitter=0.1, max_elapsed=172800.0
    )
    assert mo.retry.max_attempts == 3
    assert mo.retry.backoff_base == 1.0  # the rest still comes from defaults
    assert hk.names.zh == "香港特別行政區政府運輸署"
    assert mo.region.code == "820000"
    assert config.sources["gd-window"].names.en == "Guangdong Government Services Portal"
    assert (config.broker.max_body_bytes, config.broker.lease) == (2048, 60.0)
    assert config.broker.poll_interval == 0.25


def test_service_shorthand_and_mapping_path_resolve_against_config_folder(
    load: Load, tmp_path: Path
) -> None:
    """``CODE: file.yaml`` is a service whose mapping path is resolved beside partners.yaml."""
    config = load(GOOD)
    service = config.partners["mo"].services["MO-1"]
    assert service.mapping == (tmp_path / "mappings" / "mo.yaml").resolve()
    assert service.names is None
    assert config.root == tmp_path


def test_rest_options_reach_the_partner(load: Load) -> None:
    """The rest: section and a service's path/method are parsed by the REST spec."""
    hk = load(GOOD).partners["hk"]
    assert hk.options["rest"].idempotency_header == "X-Request-Id"
    assert dict(hk.options["rest"].headers) == {"X-Caller": "FZSJ-TONGBAN"}
    svc = hk.services["TD-VL-RENEW"].options["rest"]
    assert (svc.path, svc.method) == ("/vehicle-licences/renewals", "PUT")
    mo_svc = load(GOOD).partners["mo"].services["MO-1"].options["rest"]
    assert (mo_svc.path, mo_svc.method) == ("", "POST")


@pytest.mark.parametrize(
    "header",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "X-Api-Key",
        "apiKey",
        "X-Auth-Token",
        "X-Client-Secret",
        "X-Password",
        "ApiKey",
        "Senha",
    ],
)
def test_a_credential_in_rest_headers_is_refused_without_its_value(
    problems: Problems, header: str
) -> None:
    """A fixed header that carries credentials is a secret in the file: refused at its line,
    pointing to auth:, and the value is not repeated."""
    rest = f'rest:\n      headers: {{X-Caller: FZSJ, {header}: "Bearer AnotherSecret-1234567890"}}'
    (problem,) = problems(partner(rest=rest))
    assert problem.startswith(
        f"partners.yaml:9: partners[0].rest.headers.{header}: header {header} carries credentials, "
        "and secrets never go in configuration files: send it with auth: (bearer, or api_key with "
        f"header: {header})"
    )
    assert "AnotherSecret" not in problem


@pytest.mark.parametrize("header", ["X-Caller", "X-App-Id", "Keyword", "X-Monkey", "Accept"])
def test_headers_that_carry_no_credentials_keep_fixed_values(load: Load, header: str) -> None:
    """Identifiers and other headers keep their fixed values (key only counts as a word)."""
    hk = load(partner(rest=f"rest:\n      headers: {{{header}: FZSJ-TONGBAN}}")).partners["hk"]
    assert dict(hk.options["rest"].headers) == {header: "FZSJ-TONGBAN"}


def test_a_credential_in_soap_headers_is_refused(tmp_path: Path) -> None:
    """``soap: headers:`` of the shipped hk partner with a fixed token element: refused at its
    line, pointing to auth: and ws_security:; a fixed sender beside it is not."""
    for name in ("mappings", "partners"):
        shutil.copytree(REPO_ROOT / name, tmp_path / name)
    text = (REPO_ROOT / "partners.yaml").read_text(encoding="utf-8")
    soap = "    soap:\n      wsdl: partners/wsdl/hk-td-vehicle-licensing.wsdl\n"
    assert soap in text
    added = (
        '      headers:\n        "{urn:x}Auth/AccessToken": "AnotherSecret-1234567890"\n'
        '        "{urn:x}Auth/Sender": TONGBAN\n'
    )
    (tmp_path / "partners.yaml").write_text(text.replace(soap, soap + added), encoding="utf-8")
    line = text[: text.index(soap)].count("\n") + 4
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, protocols())
    said = [str(p) for p in info.value.problems if "credentials" in str(p)]
    assert len(said) == 1 and said[0].startswith(f"{tmp_path / 'partners.yaml'}:{line}: ")
    assert "header AccessToken carries credentials" in said[0]
    assert "use auth: or soap: ws_security:" in said[0]
    assert "AnotherSecret" not in str(info.value)


def test_unquoted_region_code_is_accepted(load: Load) -> None:
    """``code: 81`` without quotes still reads as the code '81'."""
    config = load(partner(region="region: {code: 81, iso: CN-HK}"))
    assert config.partners["hk"].region.code == "81"


def test_load_config_accepts_the_file_itself(write_config: Callable[[str], Path]) -> None:
    """load_config takes the folder or the partners.yaml file."""
    root = write_config(partner())
    assert set(load_config(root / "partners.yaml", protocols()).partners) == {"hk"}


def test_config_is_frozen(load: Load) -> None:
    """Loaded configuration cannot be changed by accident."""
    config = load(partner())
    with pytest.raises(FrozenInstanceError):
        config.partners["hk"].endpoint = "https://elsewhere.example"  # type: ignore[misc]


# --- single mistakes, exact messages -------------------------------------------------------------


def test_bad_endpoint(problems: Problems) -> None:
    """A non-HTTP endpoint is named by file, line and key path."""
    assert problems(partner(endpoint="endpoint: ftp://api.td.example.hk")) == [
        "partners.yaml:7: partners[0].endpoint: not an http(s) URL"
    ]


@pytest.mark.parametrize("endpoint", ["https://", "api.td.example.hk/v1", "mailto:td@example.hk"])
def test_endpoints_without_scheme_or_host_are_rejected(problems: Problems, endpoint: str) -> None:
    """An endpoint needs http(s) and a host name."""
    assert problems(partner(endpoint=f"endpoint: {endpoint}")) == [
        "partners.yaml:7: partners[0].endpoint: not an http(s) URL"
    ]


def test_unknown_key_suggests_the_close_one(problems: Problems) -> None:
    """A misspelt key says which key was probably meant and what is allowed."""
    [problem] = problems(partner(extra="timeout: 3s"))
    head, allowed = problem.split("allowed here: ")
    assert head == "partners.yaml:8: partners[0].timeout: unknown key (did you mean 'timeouts'?); "
    assert {"breaker", "concurrency", "endpoint", "rate_limit", "rest", "retry", "timeouts"} <= set(
        allowed.split(", ")
    )


def test_unknown_key_without_a_close_match(problems: Problems) -> None:
    """An unrelated unknown key lists the allowed keys but suggests nothing."""
    (line,) = problems("version: 1\nowner: ops\n" + partner().removeprefix("version: 1\n"))
    assert line == (
        "partners.yaml:2: owner: unknown key; allowed here: broker, defaults, local, partners, "
        "principals, schemas, search, sources, version"
    )


def test_missing_required_key(problems: Problems) -> None:
    """A partner without an endpoint is reported at the partner's line."""
    assert "partners.yaml:3: partners[0]: missing required key 'endpoint'" in problems(
        partner(endpoint="")
    )


def test_each_missing_required_key_is_reported_once(problems: Problems) -> None:
    """A partner missing id, name and endpoint gets one line per missing key, no echoes."""
    assert problems(partner(id="", name="", endpoint="")) == [
        "partners.yaml:3: partners[0]: missing required key 'id'",
        "partners.yaml:3: partners[0]: missing required key 'name'",
        "partners.yaml:3: partners[0]: missing required key 'endpoint'",
    ]


def test_missing_name_language_is_reported_once(problems: Problems) -> None:
    """A name without its English form is one problem, not two."""
    assert problems(partner(name="name: {zh: 香港}")) == [
        "partners.yaml:4: partners[0].name: missing required key 'en'"
    ]


def test_region_iso_must_match_the_code(problems: Problems) -> None:
    """The ISO code must be the one of the province the GB/T 2260 code belongs to."""
    assert problems(partner(region='region: {code: "820000", iso: CN-HK}')) == [
        "partners.yaml:5: partners[0].region.iso: 'CN-HK' does not match region code 820000 (CN-MO)"
    ]


def test_region_code_must_start_with_a_province(problems: Problems) -> None:
    """A code whose first two digits are no province is rejected."""
    assert problems(partner(region='region: {code: "99", iso: CN-HK}')) == [
        "partners.yaml:5: partners[0].region.code: '99' starts with no GB/T 2260 province code"
    ]


@pytest.mark.parametrize("code", ["8", "810", "81000", "CN-HK"])
def test_region_code_must_have_2_6_or_12_digits(problems: Problems, code: str) -> None:
    """Only 2-, 6- and 12-digit division codes are region codes."""
    assert problems(partner(region=f'region: {{code: "{code}", iso: CN-HK}}')) == [
        f"partners.yaml:5: partners[0].region.code: '{code}' is not a GB/T 2260 code"
    ]


def test_bad_partner_id(problems: Problems) -> None:
    """Partner ids are lower-case letters, digits and hyphens."""
    assert problems(partner(id="id: HK_TD")) == [
        "partners.yaml:3: partners[0].id: 'HK_TD' is not an id (a-z, 0-9, -)"
    ]


def test_unknown_protocol(problems: Problems) -> None:
    """The protocol must be one an adapter is registered for."""
    assert problems(partner(protocol="protocol: grpc")) == [
        "partners.yaml:6: partners[0].protocol: 'grpc' is not one of: rest, soap"
    ]


def test_name_must_be_a_mapping(problems: Problems) -> None:
    """A bare string where zh/en names are expected says what it got."""
    assert problems(partner(name="name: 香港")) == [
        "partners.yaml:4: partners[0].name: expected a mapping of keys, got text ('香港')"
    ]


def test_unsupported_version(problems: Problems) -> None:
    """Only version 1 of the file format is read."""
    text = partner().replace("version: 1", "version: 2")
    assert problems(text) == [
        "partners.yaml:1: version: unsupported version 2; this tongban reads 1"
    ]


def test_empty_partner_list(problems: Problems) -> None:
    """A file with ``partners: []`` says it lists no partner."""
    assert problems("version: 1\npartners: []\n") == ["partners.yaml:2: partners: lists no partner"]


def test_missing_partners_is_reported_once(problems: Problems) -> None:
    """A file without a partners key gets one problem saying so."""
    assert problems("version: 1\n") == ["partners.yaml:1: missing required key 'partners'"]


def test_empty_file(problems: Problems) -> None:
    """An empty partners.yaml is reported as not being a mapping."""
    assert problems("") == ["partners.yaml: expected a mapping of keys, got nothing"]


def test_yaml_syntax_error_names_the_line(problems: Problems) -> None:
    """Broken YAML is reported with file:line before any validation."""
    text = partner(endpoint="endpoint: https://x: y")
    assert problems(text) == ["partners.yaml:7: invalid YAML: mapping values are not allowed here"]


def test_missing_config_file(tmp_path: Path) -> None:
    """Pointing at a folder without partners.yaml is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match=r"partners\.yaml: file not found$"):
        load_config(tmp_path, protocols())


def test_duplicate_partner_id(problems: Problems) -> None:
    """Two partners with the same id: the second one is reported."""
    one = partner().removeprefix("version: 1\npartners:\n")
    assert problems("version: 1\npartners:\n" + one + one) == [
        "partners.yaml:10: partners[1].id: duplicate partner id 'hk'"
    ]


def test_duplicate_source_id(problems: Problems) -> None:
    """Two local sources with the same id: the second one is reported."""
    text = partner() + (
        "sources:\n"
        "  - {id: gd-window, name: {zh: 广东, en: Guangdong}}\n"
        "  - {id: gd-window, name: {zh: 广东, en: Guangdong}}\n"
    )
    assert problems(text) == ["partners.yaml:12: sources[1].id: duplicate source id 'gd-window'"]


def test_mapping_file_that_does_not_exist(problems: Problems) -> None:
    """A service naming a mapping file that is not there is reported at that key."""
    text = partner(services="services:\n      TD-VL-RENEW: {mapping: mappings/td.yaml}")
    assert problems(text) == [
        "partners.yaml:9: partners[0].services.TD-VL-RENEW.mapping: "
        "mapping file 'mappings/td.yaml' not found"
    ]


def test_mapping_file_shorthand_that_does_not_exist(problems: Problems) -> None:
    """The ``CODE: file`` shorthand reports a missing file the same way."""
    text = partner(services="services:\n      TD-VL-RENEW: mappings/td.yaml")
    assert problems(text) == [
        "partners.yaml:9: partners[0].services.TD-VL-RENEW.mapping: "
        "mapping file 'mappings/td.yaml' not found"
    ]


def test_empty_services(problems: Problems) -> None:
    """A partner offering no service item is an error."""
    assert problems(partner(services="services: {}")) == [
        "partners.yaml:8: partners[0].services: lists no service item"
    ]


def test_bad_service_code(problems: Problems) -> None:
    """Service item codes are letters, digits, dot, underscore and hyphen."""
    text = partner(services='services:\n      "TD VL": mappings/hk.yaml')
    assert problems(text) == [
        "partners.yaml:9: partners[0].services.TD VL: "
        "'TD VL' is not a service item code (letters, digits, . _ -)"
    ]


# --- durations and numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (1.5, 1.5),
        ("30", 30.0),
        ("30s", 30.0),
        ("250ms", 0.25),
        ("0.1s", 0.1),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        (" 30 s ", 30.0),
    ],
)
def test_parse_duration_accepts(value: object, seconds: float) -> None:
    """Plain seconds and ms/s/m/h/d suffixes are durations."""
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["fast", "30 sec", "1h30m", "-5s", "5S", "", True, None, -1, [1]])
def test_parse_duration_rejects(value: object) -> None:
    """Anything else (words, compound units, negatives, booleans) is not a duration."""
    assert parse_duration(value) is None


def test_partner_timeouts_as_durations(load: Load) -> None:
    """Timeouts accept '250ms', '30s' and plain numbers."""
    config = load(partner(extra="timeouts: {connect: 250ms, read: 30s, total: 45}"))
    assert config.partners["hk"].timeouts == Timeouts(connect=0.25, read=30.0, total=45.0)


def test_bad_duration_message(problems: Problems) -> None:
    """A value that is no duration shows examples of what would be."""
    assert problems(partner(extra="timeouts: {read: fast}")) == [
        "partners.yaml:8: partners[0].timeouts.read: 'fast' is not a duration "
        "(e.g. 30, '30s', '250ms', '5m', '2h', '7d')"
    ]


def test_duration_out_of_range(problems: Problems) -> None:
    """A timeout above an hour is outside the allowed range."""
    assert problems(partner(extra="timeouts: {read: 2h}")) == [
        "partners.yaml:8: partners[0].timeouts.read: '2h' is outside 1ms..1h"
    ]


def test_total_shorter_than_connect(problems: Problems) -> None:
    """A total timeout below the connect timeout is reported at total."""
    assert problems(partner(extra="timeouts: {connect: 5s, total: 250ms}")) == [
        "partners.yaml:8: partners[0].timeouts.total: "
        "total timeout is shorter than the connect timeout"
    ]


def test_retry_and_concurrency_ranges(problems: Problems) -> None:
    """Retry counts, jitter and concurrency are range-checked, each with its own line, in line order."""
    text = partner(
        extra="concurrency: 0\n    retry:\n      max_attempts: 0\n      jitter: 1.5\n"
        "      backoff_base: soon"
    )
    assert problems(text) == [
        "partners.yaml:8: partners[0].concurrency: 0 is outside 1..1024",
        "partners.yaml:10: partners[0].retry.max_attempts: 0 is outside 1..1000",
        "partners.yaml:11: partners[0].retry.jitter: 1.5 is outside 0.0..1.0",
        "partners.yaml:12: partners[0].retry.backoff_base: 'soon' is not a duration "
        "(e.g. 30, '30s', '250ms', '5m', '2h', '7d')",
    ]


def test_boolean_is_not_a_number(problems: Problems) -> None:
    """``concurrency: true`` is refused rather than read as 1."""
    assert problems(partner(extra="concurrency: true")) == [
        "partners.yaml:8: partners[0].concurrency: expected a whole number, got a boolean (true)"
    ]


def test_broker_settings_are_checked(problems: Problems) -> None:
    """broker: values are checked like partner values."""
    text = partner() + "broker:\n  max_body_bytes: 10\n  lease: 0.5s\n"
    assert problems(text) == [
        "partners.yaml:11: broker.max_body_bytes: 10 is outside 1024..67108864",
        "partners.yaml:12: broker.lease: '0.5s' is outside 1s..1h",
    ]


# --- protocol sections and REST keys --------------------------------------------------------------


def test_rest_section_unknown_key(problems: Problems) -> None:
    """The rest: section accepts only the REST spec's keys, with a hint."""
    assert problems(partner(extra="rest: {idempotency_headers: X-Id}")) == [
        "partners.yaml:8: partners[0].rest.idempotency_headers: unknown key "
        "(did you mean 'idempotency_header'?); allowed here: headers, idempotency_header"
    ]


def test_rest_header_names_are_checked(problems: Problems) -> None:
    """Idempotency and extra header names must be valid HTTP header names."""
    text = partner(
        extra='rest:\n      idempotency_header: "Idempotency Key"\n'
        '      headers: {"X Api Key": abc, X-Empty: ""}'
    )
    assert problems(text) == [
        "partners.yaml:9: partners[0].rest.idempotency_header: "
        "'Idempotency Key' is not an HTTP header name",
        "partners.yaml:10: partners[0].rest.headers.X Api Key: not an HTTP header name",
        "partners.yaml:10: partners[0].rest.headers.X-Empty: must not be empty",
    ]


def test_rest_service_path_and_method(problems: Problems) -> None:
    """A REST service's path must start with / and its method be POST or PUT."""
    text = partner(
        services="services:\n"
        "      A: {mapping: mappings/hk.yaml, path: renewals}\n"
        "      B: {mapping: mappings/hk.yaml, path: /x, method: GET}\n"
        "      C: {mapping: mappings/hk.yaml, path: '/a?b=1', method: post}\n"
        "      D: {mapping: mappings/hk.yaml, mehtod: PUT}"
    )
    assert problems(text) == [
        "partners.yaml:9: partners[0].services.A.path: "
        "'renewals' is not a URL path starting with /",
        "partners.yaml:10: partners[0].services.B.method: 'GET' is not one of: POST, PUT",
        "partners.yaml:11: partners[0].services.C.path: '/a?b=1' is not a URL path starting with /",
        "partners.yaml:11: partners[0].services.C.method: 'post' is not one of: POST, PUT",
        "partners.yaml:12: partners[0].services.D.mehtod: unknown key (did you mean 'method'?); "
        "allowed here: auth, mapping, method, name, path, poll_every, reply, schema, status_path, "
        "supplement_path",
    ]


class FakeSoapSpec:
    """A second protocol, so that a section of the wrong protocol can be written."""

    name = "soap"
    service_keys: tuple[str, ...] = ("operation",)

    def parse_partner(self, r: Reader, path: PathKey, raw: Any, base: Path) -> Mapping[str, Any]:
        r.mapping(path, raw, required=("wsdl",))
        return {"soap": raw}

    def parse_service(self, r: Reader, path: PathKey, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"soap": dict(raw)}

    def create(self, partner: Any) -> Any:
        raise NotImplementedError


@pytest.fixture
def with_soap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register a fake 'soap' protocol in a throw-away copy of the adapter registry."""
    monkeypatch.setattr(adapters.registry, "_SPECS", dict(adapters.registry._SPECS))
    adapters.registry.register(FakeSoapSpec())


@pytest.mark.usefixtures("with_soap")
def test_section_of_another_protocol_is_rejected(problems: Problems) -> None:
    """A soap: section on a REST partner is named as not applying to that protocol."""
    assert problems(partner(extra="soap: {wsdl: 'https://td.example.hk/svc?wsdl'}")) == [
        "partners.yaml:8: partners[0].soap: section 'soap' does not apply to protocol 'rest'"
    ]


@pytest.mark.usefixtures("with_soap")
def test_service_keys_follow_the_partner_protocol(problems: Problems) -> None:
    """A SOAP partner's services take 'operation', not REST's 'path'."""
    text = partner(
        protocol="protocol: soap",
        extra="soap: {wsdl: 'https://td.example.hk/svc?wsdl'}",
        services="services:\n      A: {mapping: mappings/hk.yaml, path: /x}",
    )
    assert problems(text) == [
        "partners.yaml:10: partners[0].services.A.path: unknown key; "
        "allowed here: mapping, name, operation, reply, schema"
    ]


def test_soap_section_on_a_rest_partner_is_refused(problems: Problems) -> None:
    """A soap: section on a REST partner is named as not applying to its protocol."""
    (line,) = problems(partner(extra="soap: {wsdl: x}"))
    assert (
        line
        == "partners.yaml:8: partners[0].soap: section 'soap' does not apply to protocol 'rest'"
    )


# --- many mistakes at once -----------------------------------------------------------------------

BROKEN = """\
version: 1
defaults:
  timeouts: {connect: 2s, read: 10s, total: 20s}
sources:
  - id: gd-window
    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}
partners:
  - id: hk
    name: {zh: 香港特別行政區政府運輸署, en: Transport Department}
    region: {code: "81", iso: CN-HK}
    protocol: rest
    endpoint: https://api.td.example.hk/v1
    timeout: 3s
    services:
      TD-VL-RENEW: mappings/hk.yaml
  - id: mo
    name: {zh: 澳門治安警察局, en: Public Security Police Force}
    region: {code: "82", iso: CN-HK}
    protocol: rest
    endpoint: ftp://mo.example
    services:
      MO-1: {mapping: mappings/missing.yaml}
  - id: sz
    name: {zh: 深圳市公安局, en: Shenzhen Public Security Bureau}
    region: {code: "440300", iso: CN-GD}
    protocol: rest
    endpoint: https://sz.example.cn
    timeouts: {read: fast}
    concurrency: 0
    services:
      SZ-1: {mapping: mappings/mo.yaml, method: GET}
  - id: hk
    name: {zh: 香港, en: Hong Kong}
    region: {code: "81", iso: CN-HK}
    protocol: rest
    endpoint: https://other.example.hk
    services:
      X: mappings/hk.yaml
"""


def test_every_mistake_in_a_file_is_reported_at_once(problems: Problems) -> None:
    """Eight mistakes across four partners come back together, each with file:line and path."""
    found = problems(BROKEN)
    assert sorted(found) == sorted(
        [
            "partners.yaml:13: partners[0].timeout: unknown key (did you mean 'timeouts'?); "
            "allowed here: auth, breaker, concurrency, endpoint, id, inbound, name, protocol, "
            "rate_limit, region, reply, rest, retry, services, soap, timeouts",
            "partners.yaml:18: partners[1].region.iso: 'CN-HK' does not match region code 82 "
            "(CN-MO)",
            "partners.yaml:20: partners[1].endpoint: not an http(s) URL",
            "partners.yaml:22: partners[1].services.MO-1.mapping: "
            "mapping file 'mappings/missing.yaml' not found",
            "partners.yaml:28: partners[2].timeouts.read: 'fast' is not a duration "
            "(e.g. 30, '30s', '250ms', '5m', '2h', '7d')",
            "partners.yaml:29: partners[2].concurrency: 0 is outside 1..1024",
            "partners.yaml:31: partners[2].services.SZ-1.method: 'GET' is not one of: POST, PUT",
            "partners.yaml:32: partners[3].id: duplicate partner id 'hk'",
        ]
    )
    assert len(found) == 8


def test_catalogue_reports_config_problems_too(write_config: Callable[[str], Path]) -> None:
    """load_catalogue raises the same ConfigError with every problem of partners.yaml."""
    root = write_config(BROKEN)
    with pytest.raises(ConfigError) as info:
        load_catalogue(root)
    assert len(info.value.problems) == 8


# --- with_endpoints ------------------------------------------------------------------------------


def test_with_endpoints_redirects_named_partners_only(load: Load) -> None:
    """with_endpoints returns a copy sending named partners elsewhere, others unchanged."""
    config = load(GOOD)
    moved = config.with_endpoints({"hk": "http://127.0.0.1:8081/"})
    assert moved.partners["hk"].endpoint == "http://127.0.0.1:8081/"
    assert moved.partners["mo"].endpoint == "http://mo.example/api"
    assert moved.partners["hk"].services == config.partners["hk"].services
    assert config.partners["hk"].endpoint == "https://api.td.example.hk/v1"  # original untouched


def test_with_endpoints_rejects_unknown_partners(load: Load) -> None:
    """Naming a partner the file does not have is an error listing the unknown ids."""
    config = load(GOOD)
    with pytest.raises(KeyError, match="unknown partner\\(s\\): gz, sh"):
        config.with_endpoints({"sh": "http://a", "gz": "http://b", "hk": "http://c"})


# --- the repository's own configuration ----------------------------------------------------------


def test_repository_partners_yaml_loads() -> None:
    """The shipped partners.yaml and every mapping it names load without errors."""
    catalogue = load_catalogue(REPO_ROOT)
    assert catalogue.config.partners
    for partner_ in catalogue.config.partners.values():
        for code in partner_.services:
            assert catalogue.mapping(partner_.id, code) is not None


def test_a_file_that_is_not_configuration_is_not_quoted(problems: Problems) -> None:
    """partners.yaml that is one long text (an env file or /etc/passwd given by mistake): the
    problem says what it is and how long, not a word of it."""
    text = "DB_PASSWORD=AnotherSecret-1234567890\nAPI_TOKEN=AnotherSecret-0987654321\n"
    assert problems(text) == [
        f"partners.yaml:1: expected a mapping of keys, got text of {len(text) - 1} characters"
    ]


def test_long_values_are_quoted_clipped_on_one_line(problems: Problems) -> None:
    """A long value where a duration, a choice or a version belongs is quoted by its first
    characters on one line; short ones, and key names, stay whole."""
    long = "AnotherSecret-1234567890-" * 8
    text = partner(
        timeouts=f"timeouts: {{connect: {long}, read: {{a: [1, 2, 3]}}}}", services=""
    ).replace("version: 1", f'version: "{long}\\nnext line"')
    lines = problems(text)
    assert not [line for line in lines if long in line or "\n" in line or "next line" in line]
    assert (
        "partners.yaml:1: version: unsupported version 'AnotherSecret-1234567890-AnotherSecret…; "
        "this tongban reads 1"
    ) in lines
    assert (
        "partners.yaml:8: partners[0].timeouts.connect: 'AnotherSecret-1234567890-AnotherSecret… "
        "is not a duration (e.g. 30, '30s', '250ms', '5m', '2h', '7d')"
    ) in lines
    assert (
        "partners.yaml:8: partners[0].timeouts.read: {'a': [1, 2, 3]} is not a duration "
        "(e.g. 30, '30s', '250ms', '5m', '2h', '7d')"
    ) in lines


@pytest.mark.parametrize(
    ("auth", "path"),
    [
        ('auth: "Secret-12"', "auth"),
        ('auth: {api_key: "Secret-12"}', "auth.api_key"),
        ('auth: {oauth2: "Secret-12"}', "auth.oauth2"),
        ('auth: {client_cert: "Secret-12"}', "auth.client_cert"),
    ],
)
def test_text_where_an_auth_section_belongs_is_not_quoted(
    problems: Problems, auth: str, path: str
) -> None:
    """Under auth:, text where a section belongs may be the secret itself, however short."""
    assert problems(partner(auth=auth)) == [
        f"partners.yaml:8: partners[0].{path}: expected a mapping of keys, got text of 9 characters"
    ]
