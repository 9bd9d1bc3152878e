"""Settings from the environment and the TOML file: `tierdesk.config.settings_from_env`.

Every test passes its own env dict, so nothing from the developer's shell counts. Secret
values are distinctive strings (`S_*`), so a test can search any repr or error message
for them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tierdesk.config import (
    ConfigError,
    FieldRecord,
    FieldsFile,
    fields_path,
    read_fields_file,
    settings_from_env,
    state_dir,
    write_atomically,
)
from webhooks.settings import FieldMap, Secret, Settings, Tenant

S_CURRENT = "whsec-current-7f3a"
S_PREVIOUS = "whsec-previous-19bc"
S_BEARER = "bearer-5d2e"
S_API = "api-token-88aa"
S_SERVICE = "service-token-c0de"
ALL_SECRETS = (S_CURRENT, S_PREVIOUS, S_BEARER, S_API, S_SERVICE)

FULL_TOML = """
database = "/var/lib/tierdesk/tierdesk.sqlite3"
mappings = "/etc/tierdesk/mappings"
lease_seconds = 45
max_attempts = 7

[tenants.acme-zd]
vendor = "zendesk"
base_url = "https://acme.zendesk.com"
email = "tierdesk@acme.example"
[tenants.acme-zd.fields]
severity = 360000123      # Zendesk field ids are numbers: kept as text
product = "360000124"
category = ""             # empty means not mapped

[tenants.acme-jsm]
vendor = "jsm"
base_url = "https://acme.atlassian.net"
[tenants.acme-jsm.fields]
severity = "customfield_10071"
organizations = "customfield_10002"
environment = "customfield_10080"
[tenants.acme-jsm.fields.values.product]
"Jira Software" = "jira-software"
[tenants.acme-jsm.fields.values.severity]
Critical = 1
"""

# -- helpers ------------------------------------------------------------------------


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def config_env(tmp_path: Path, toml: str, **env: str) -> dict[str, str]:
    return {"TIERDESK_CONFIG": str(write(tmp_path, "tierdesk.toml", toml)), **env}


def config_error(env: dict[str, str]) -> str:
    """The message of the `ConfigError` that ``env`` must raise."""
    with pytest.raises(ConfigError) as caught:
        settings_from_env(env)
    return str(caught.value)


# -- the file --------------------------------------------------------------------------


def test_a_toml_file_gives_tenants_fields_and_value_tables(tmp_path: Path) -> None:
    settings = settings_from_env(config_env(tmp_path, FULL_TOML))

    assert settings == Settings(
        mappings_dir=Path("/etc/tierdesk/mappings"),
        database="/var/lib/tierdesk/tierdesk.sqlite3",
        tenants={
            "acme-zd": Tenant(
                id="acme-zd",
                vendor="zendesk",
                base_url="https://acme.zendesk.com",
                email="tierdesk@acme.example",
                fields=FieldMap(severity="360000123", product="360000124"),
            ),
            "acme-jsm": Tenant(
                id="acme-jsm",
                vendor="jsm",
                base_url="https://acme.atlassian.net",
                fields=FieldMap(
                    severity="customfield_10071",
                    organizations="customfield_10002",
                    environment="customfield_10080",
                    values={
                        "product": {"Jira Software": "jira-software"},
                        "severity": {"Critical": "1"},
                    },
                ),
            ),
        },
        lease_s=45.0,
        max_attempts=7,
    )


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    env = config_env(
        tmp_path,
        FULL_TOML,
        TIERDESK_DATABASE="/tmp/other.sqlite3",
        TIERDESK_MAPPINGS="/srv/mappings",
        TIERDESK_LEASE_SECONDS="12.5",
        TIERDESK_MAX_ATTEMPTS="3",
        TIERDESK_TENANT_ACME_ZD_BASE_URL="https://acme-eu.zendesk.com",
        TIERDESK_TENANTS="extra=jsm",
    )

    settings = settings_from_env(env)

    assert settings.database == "/tmp/other.sqlite3"
    assert settings.mappings_dir == Path("/srv/mappings")
    assert (settings.lease_s, settings.max_attempts) == (12.5, 3)
    assert settings.tenants["acme-zd"].base_url == "https://acme-eu.zendesk.com"
    assert settings.tenants["acme-zd"].email == "tierdesk@acme.example"  # the rest stays
    assert list(settings.tenants) == ["acme-zd", "acme-jsm", "extra"]


# -- the environment alone ----------------------------------------------------------------


def test_defaults_with_an_empty_environment() -> None:
    assert settings_from_env({}) == Settings()


def test_tenants_from_the_environment_alone() -> None:
    settings = settings_from_env(
        {
            "TIERDESK_TENANTS": "a=zendesk, b-2 = jsm,",  # spaces and a trailing comma are fine
            "TIERDESK_TENANT_A_BASE_URL": "https://a.zendesk.com",
            "TIERDESK_TENANT_A_EMAIL": "bot@a.example",
            "TIERDESK_TENANT_B_2_BASE_URL": "https://b.atlassian.net",  # '-' becomes '_'
        }
    )

    assert settings.tenants == {
        "a": Tenant(
            id="a", vendor="zendesk", base_url="https://a.zendesk.com", email="bot@a.example"
        ),
        "b-2": Tenant(id="b-2", vendor="jsm", base_url="https://b.atlassian.net"),
    }


# -- secrets ----------------------------------------------------------------------------

TENANT_A = {"TIERDESK_TENANTS": "a=zendesk"}
SECRET = "TIERDESK_TENANT_A_WEBHOOK_SECRET"
PREVIOUS = "TIERDESK_TENANT_A_WEBHOOK_SECRET_PREVIOUS"


@pytest.mark.parametrize(
    ("env", "files", "expected"),
    [
        pytest.param({SECRET: S_CURRENT}, {}, (S_CURRENT,), id="env"),
        # While rotating: the current one first, the previous one still accepted.
        pytest.param(
            {SECRET: S_CURRENT, PREVIOUS: S_PREVIOUS}, {}, (S_CURRENT, S_PREVIOUS), id="both"
        ),
        pytest.param({}, {SECRET: S_CURRENT + "\n"}, (S_CURRENT,), id="file-newline"),
        pytest.param({}, {SECRET: S_CURRENT + "\r\n"}, (S_CURRENT,), id="file-crlf"),
        pytest.param({}, {SECRET: S_CURRENT}, (S_CURRENT,), id="file-no-newline"),
        pytest.param(
            {},
            {SECRET: S_CURRENT, PREVIOUS: S_PREVIOUS + "\n"},
            (S_CURRENT, S_PREVIOUS),
            id="files",
        ),
        pytest.param({SECRET: S_CURRENT}, {SECRET: "from-the-file"}, (S_CURRENT,), id="env-wins"),
        pytest.param({SECRET: ""}, {SECRET: S_CURRENT}, (S_CURRENT,), id="empty-env-uses-file"),
        pytest.param({PREVIOUS: S_PREVIOUS}, {}, (S_PREVIOUS,), id="previous-only"),
        pytest.param({}, {SECRET: "\n"}, (), id="empty-file-is-no-secret"),
    ],
)
def test_webhook_secrets_from_env_and_files(
    tmp_path: Path, env: dict[str, str], files: dict[str, str], expected: tuple[str, ...]
) -> None:
    full = {**TENANT_A, **env}
    for i, (name, content) in enumerate(files.items()):
        full[f"{name}_FILE"] = str(write(tmp_path, f"secret-{i}", content))

    tenant = settings_from_env(full).tenants["a"]

    assert tuple(s.reveal() for s in tenant.webhook_secrets) == expected


def test_every_secret_has_an_env_and_a_file_form(tmp_path: Path) -> None:
    env = {
        "TIERDESK_TENANTS": "acme-zd=zendesk,acme-jsm=jsm",
        "TIERDESK_API_TOKEN_FILE": str(write(tmp_path, "api", S_SERVICE + "\n")),
        "TIERDESK_TENANT_ACME_ZD_API_TOKEN": S_API,
        "TIERDESK_TENANT_ACME_JSM_BEARER_TOKEN_FILE": str(write(tmp_path, "bearer", S_BEARER)),
    }

    settings = settings_from_env(env)

    assert settings.api_token == Secret(S_SERVICE)
    assert settings.tenants["acme-zd"].api_token == Secret(S_API)
    assert settings.tenants["acme-zd"].bearer_tokens == ()
    assert settings.tenants["acme-jsm"].bearer_tokens == (Secret(S_BEARER),)
    assert settings.tenants["acme-jsm"].api_token is None


@pytest.mark.parametrize(
    ("key", "value", "variable"),
    [
        ("webhook_secret", f'"{S_CURRENT}"', "WEBHOOK_SECRET"),
        ("webhook_secrets", f'["{S_CURRENT}", "{S_PREVIOUS}"]', "WEBHOOK_SECRET"),
        ("api_token", f'"{S_API}"', "API_TOKEN"),
        ("bearer_token", f'"{S_BEARER}"', "BEARER_TOKEN"),
        ("password", f'"{S_API}"', "API_TOKEN"),
    ],
)
def test_a_secret_in_the_toml_file_is_refused_without_showing_it(
    tmp_path: Path, key: str, value: str, variable: str
) -> None:
    toml = f'[tenants.acme-zd]\nvendor = "zendesk"\n{key} = {value}\n'

    with pytest.raises(ConfigError) as caught:
        settings_from_env(config_env(tmp_path, toml))

    message = str(caught.value)
    assert f"[tenants.acme-zd] {key}: secrets come from the environment" in message
    assert f"TIERDESK_TENANT_ACME_ZD_{variable}" in message  # where to put it instead
    for text in (message, repr(caught.value)):
        assert not any(secret in text for secret in ALL_SECRETS), text


def test_a_toml_syntax_error_does_not_echo_a_secret(tmp_path: Path) -> None:
    toml = f'[tenants.acme-zd]\nvendor = "zendesk"\nwebhook_secret = "{S_CURRENT}\n'

    message = config_error(config_env(tmp_path, toml))

    assert "not valid TOML" in message
    assert S_CURRENT not in message


def test_repr_and_str_of_settings_and_tenants_never_show_a_secret(tmp_path: Path) -> None:
    settings = settings_from_env(
        {
            "TIERDESK_TENANTS": "acme-zd=zendesk,acme-jsm=jsm",
            "TIERDESK_API_TOKEN": S_SERVICE,
            "TIERDESK_TENANT_ACME_ZD_WEBHOOK_SECRET": S_CURRENT,
            "TIERDESK_TENANT_ACME_ZD_WEBHOOK_SECRET_PREVIOUS": S_PREVIOUS,
            "TIERDESK_TENANT_ACME_ZD_API_TOKEN": S_API,
            "TIERDESK_TENANT_ACME_JSM_BEARER_TOKEN_FILE": str(write(tmp_path, "b", S_BEARER)),
        }
    )
    tenants = list(settings.tenants.values())
    # All five are really there, so their absence below means something.
    assert settings.api_token is not None
    assert settings.api_token.reveal() == S_SERVICE
    assert len(tenants[0].webhook_secrets) == 2
    assert tenants[1].bearer_tokens[0].reveal() == S_BEARER

    assert "Secret('***')" in repr(settings)  # shown as present, not as what it is
    shown = [repr(settings), str(settings), f"{settings}"]
    for tenant in tenants:
        shown += [repr(tenant), str(tenant), repr(tenant.webhook_secrets)]
    for text in shown:
        for secret in ALL_SECRETS:
            assert secret not in text, text


# -- errors -------------------------------------------------------------------------------

ENV_ERRORS = [
    pytest.param(
        {"TIERDESK_TENANTS": "a=freshdesk"}, "tenant a: vendor must be one of", id="vendor"
    ),
    pytest.param({"TIERDESK_TENANTS": "a"}, "tenant a: vendor must be one of", id="no-vendor"),
    pytest.param({"TIERDESK_TENANTS": "Acme=jsm"}, "tenant id 'Acme'", id="upper-case-id"),
    pytest.param({"TIERDESK_TENANTS": "acme_zd=jsm"}, "tenant id 'acme_zd'", id="underscore-id"),
    pytest.param({"TIERDESK_TENANTS": "-acme=jsm"}, "tenant id '-acme'", id="leading-dash"),
    pytest.param({"TIERDESK_TENANTS": f"{'a' * 64}=jsm"}, "tenant id 'aaaa", id="too-long-id"),
    pytest.param({"TIERDESK_TENANTS": "=jsm"}, "tenant id ''", id="empty-id"),
    pytest.param(
        {"TIERDESK_CONFIG": "/nonexistent/tierdesk.toml"},
        "TIERDESK_CONFIG: cannot read /nonexistent/tierdesk.toml",
        id="missing-config",
    ),
    pytest.param(
        {**TENANT_A, f"{SECRET}_FILE": "/nonexistent/secret"},
        f"{SECRET}_FILE: cannot read /nonexistent/secret",
        id="missing-secret-file",
    ),
    pytest.param(
        {"TIERDESK_API_TOKEN_FILE": "/nonexistent/token"},
        "TIERDESK_API_TOKEN_FILE: cannot read /nonexistent/token",
        id="missing-api-token-file",
    ),
    pytest.param(
        {"TIERDESK_LEASE_SECONDS": "thirty"},
        "TIERDESK_LEASE_SECONDS / lease_seconds: expected a number",
        id="lease-not-a-number",
    ),
    pytest.param(
        {"TIERDESK_LEASE_SECONDS": "0"},
        "TIERDESK_LEASE_SECONDS / lease_seconds: must be greater than zero",
        id="lease-zero",
    ),
    pytest.param(
        {"TIERDESK_LEASE_SECONDS": "-5"},
        "TIERDESK_LEASE_SECONDS / lease_seconds: must be greater than zero",
        id="lease-negative",
    ),
    pytest.param(
        {"TIERDESK_MAX_ATTEMPTS": "0"},
        "TIERDESK_MAX_ATTEMPTS / max_attempts: must be greater than zero",
        id="attempts-zero",
    ),
    pytest.param(
        {"TIERDESK_MAX_ATTEMPTS": "many"},
        "TIERDESK_MAX_ATTEMPTS / max_attempts: expected a number",
        id="attempts-not-a-number",
    ),
]


@pytest.mark.parametrize(("env", "message"), ENV_ERRORS)
def test_unusable_environment_settings_are_config_errors(env: dict[str, str], message: str) -> None:
    assert message in config_error(env)


TOML_ERRORS = [
    pytest.param('[tenants.a]\nvendor = "freshdesk"\n', "vendor must be one of", id="vendor"),
    pytest.param("[tenants.a]\n", "tenant a: vendor must be one of", id="no-vendor"),
    pytest.param('[tenants.Acme]\nvendor = "jsm"\n', "tenant id 'Acme'", id="bad-id"),
    pytest.param("tenants = 3\n", "[tenants] must be a table", id="tenants-not-a-table"),
    pytest.param("[tenants]\na = 3\n", "[tenants.a] must be a table", id="tenant-not-a-table"),
    pytest.param(
        '[tenants.a]\nvendor = "jsm"\nfields = 3\n',
        "[tenants.a.fields] must be a table",
        id="fields-not-a-table",
    ),
    pytest.param("lease_seconds = 'soon'\n", "lease_seconds: expected a number", id="lease"),
    pytest.param("max_attempts = 0\n", "max_attempts: must be greater than zero", id="attempts"),
    pytest.param("[tenants.a\nvendor = 'jsm'\n", "not valid TOML", id="syntax"),
    pytest.param('database = "a"\ndatabase = "b"\n', "not valid TOML", id="duplicate-key"),
]


@pytest.mark.parametrize(("toml", "message"), TOML_ERRORS)
def test_unusable_toml_settings_are_config_errors(tmp_path: Path, toml: str, message: str) -> None:
    env = config_env(tmp_path, toml)
    error = config_error(env)
    assert message in error
    if message == "not valid TOML":
        assert error.startswith(env["TIERDESK_CONFIG"])  # which file


BUGGY = [
    # The lease is how a killed worker's events come back; nan or inf means never.
    pytest.param({"TIERDESK_LEASE_SECONDS": "nan"}, id="lease-nan"),
    pytest.param({"TIERDESK_LEASE_SECONDS": "inf"}, id="lease-inf"),
    # int(float("inf")) raises OverflowError, int(float("nan")) ValueError: not ConfigError.
    pytest.param({"TIERDESK_MAX_ATTEMPTS": "inf"}, id="attempts-inf"),
    pytest.param({"TIERDESK_MAX_ATTEMPTS": "nan"}, id="attempts-nan"),
    # 0.5 passes the "> 0" check, then int() makes it 0: every failure is a dead letter.
    pytest.param({"TIERDESK_MAX_ATTEMPTS": "0.5"}, id="attempts-half"),
]


@pytest.mark.parametrize("env", BUGGY)
def test_non_finite_or_fractional_numbers_are_config_errors(env: dict[str, str]) -> None:
    config_error(env)


@pytest.mark.parametrize(
    "fields", ["values = 3", 'values = {product = "jira-software"}'], ids=["values", "values.field"]
)
def test_a_values_entry_that_is_not_a_table_is_a_config_error(tmp_path: Path, fields: str) -> None:
    toml = f'[tenants.a]\nvendor = "jsm"\n[tenants.a.fields]\n{fields}\n'
    assert "values" in config_error(config_env(tmp_path, toml))


# -- field ids recorded by `tierdesk setup` ----------------------------------------------

RECORDED_JSM = FieldsFile(
    tenant="acme-jsm",
    vendor="jsm",
    fields={
        "tier": FieldRecord("customfield_10100", "text"),
        "first_response_due": FieldRecord("customfield_10101", "datetime"),
        "named_contact": FieldRecord("customfield_10102", "text"),
        "named_contact_reason": FieldRecord("customfield_10103", "textarea"),
        "coverage": FieldRecord("customfield_10104", "text"),
    },
    webhook={"id": "42", "url": "https://tierdesk.example/webhooks/jsm/acme-jsm"},
)


def record(directory: Path, recorded: FieldsFile) -> Path:
    path = fields_path(directory, recorded.tenant)
    write_atomically(path, recorded.to_json())
    return path


def test_recorded_field_ids_fill_the_field_map(tmp_path: Path) -> None:
    record(tmp_path, RECORDED_JSM)
    env = {"TIERDESK_TENANTS": "acme-jsm=jsm", "TIERDESK_STATE_DIR": str(tmp_path)}

    fields = settings_from_env(env).tenants["acme-jsm"].fields

    assert fields == FieldMap(
        tier="customfield_10100",
        first_response_due="customfield_10101",
        named_contact="customfield_10102",
        named_contact_reason="customfield_10103",
        coverage="customfield_10104",
        types={
            "tier": "text",
            "first_response_due": "datetime",
            "named_contact": "text",
            "named_contact_reason": "textarea",
            "coverage": "text",
        },
    )


def test_the_toml_file_overrides_recorded_ids_and_an_empty_value_switches_one_off(
    tmp_path: Path,
) -> None:
    record(tmp_path, RECORDED_JSM)  # beside the TOML file: the default state directory
    toml = """
[tenants.acme-jsm]
vendor = "jsm"
[tenants.acme-jsm.fields]
tier = "customfield_20000"      # a hand edit wins
named_contact_reason = ""       # tierdesk must not write this one
severity = "customfield_10071"  # not recorded at all
"""
    fields = settings_from_env(config_env(tmp_path, toml)).tenants["acme-jsm"].fields

    assert fields == FieldMap(
        severity="customfield_10071",
        tier="customfield_20000",
        first_response_due="customfield_10101",
        named_contact="customfield_10102",
        named_contact_reason=None,
        coverage="customfield_10104",
        # A hand-edited id's type is unknown; the recorded ones still hold.
        types={"first_response_due": "datetime", "named_contact": "text", "coverage": "text"},
    )


def test_the_state_directory_is_the_variable_then_the_config_directory_then_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "etc" / "tierdesk.toml"
    assert state_dir({"TIERDESK_STATE_DIR": "/var/lib/td", "TIERDESK_CONFIG": str(config)}) == (
        Path("/var/lib/td")
    )
    assert state_dir({"TIERDESK_CONFIG": str(config)}) == tmp_path / "etc"
    assert state_dir({}) == Path()

    # Without either variable the file is looked for in the current directory.
    monkeypatch.chdir(tmp_path)
    record(tmp_path, RECORDED_JSM)
    tenant = settings_from_env({"TIERDESK_TENANTS": "acme-jsm=jsm"}).tenants["acme-jsm"]
    assert tenant.fields.tier == "customfield_10100"


def test_a_file_recorded_for_another_tenant_or_vendor_is_refused(tmp_path: Path) -> None:
    path = fields_path(tmp_path, "acme-zd")
    write_atomically(path, RECORDED_JSM.to_json())  # copied over by hand
    env = {"TIERDESK_TENANTS": "acme-zd=zendesk", "TIERDESK_STATE_DIR": str(tmp_path)}

    message = config_error(env)

    assert message.startswith(str(path))
    assert "written for tenant acme-jsm (jsm), not acme-zd (zendesk)" in message
    assert "tierdesk setup zendesk --tenant acme-zd" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{", "not valid JSON", id="syntax"),
        pytest.param("[]", '"format": "tierdesk.fields/1"', id="not-an-object"),
        pytest.param('{"format": "other/1"}', '"format": "tierdesk.fields/1"', id="format"),
        pytest.param(
            '{"format": "tierdesk.fields/1", "tenant": "a", "vendor": "jsm",'
            ' "fields": {"colour": {"id": "1", "type": "text"}}}',
            "fields.colour: not a field tierdesk knows",
            id="unknown-field",
        ),
        pytest.param(
            '{"format": "tierdesk.fields/1", "tenant": "a", "vendor": "jsm",'
            ' "fields": {"tier": "customfield_1"}}',
            'fields.tier: expected {"id"',
            id="bare-id",
        ),
        pytest.param(
            '{"format": "tierdesk.fields/1", "tenant": "a", "vendor": "jsm",'
            ' "fields": {"tier": {"id": "customfield_1", "type": "select"}}}',
            "fields.tier.type: expected one of",
            id="type",
        ),
        pytest.param(
            '{"format": "tierdesk.fields/1", "tenant": "a", "vendor": "jsm", "webhook": 3}',
            "webhook: expected an object of strings",
            id="webhook",
        ),
    ],
)
def test_a_damaged_fields_file_is_a_config_error_naming_it(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, "a.fields.json", text)

    error = config_error({"TIERDESK_TENANTS": "a=jsm", "TIERDESK_STATE_DIR": str(tmp_path)})

    assert error.startswith(str(path))
    assert message in error


def test_a_written_fields_file_reads_back_the_same(tmp_path: Path) -> None:
    path = record(tmp_path, RECORDED_JSM)

    assert read_fields_file(path) == RECORDED_JSM
    assert read_fields_file(tmp_path / "missing.fields.json") is None


def test_an_atomic_write_sets_the_mode_and_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.webhook-secret"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o644)

    write_atomically(path, "new", mode=0o600)

    assert path.read_text(encoding="utf-8") == "new"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.webhook-secret"]  # no temp left


def test_an_interrupted_atomic_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = record(tmp_path, RECORDED_JSM)
    before = path.read_bytes()

    def broken_disk(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_disk)
    with pytest.raises(OSError, match="Input/output error"):
        write_atomically(path, FieldsFile(tenant="acme-jsm", vendor="jsm").to_json())

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_database_url_is_an_alias_and_its_password_is_never_shown() -> None:
    url = "postgresql://tierdesk:s3cr3t-pw@db.internal:5432/tierdesk"
    settings = settings_from_env({"DATABASE_URL": url})
    assert settings.database == url
    assert "s3cr3t-pw" not in repr(settings)
    # TIERDESK_DATABASE wins when both are set.
    assert settings_from_env({"DATABASE_URL": url, "TIERDESK_DATABASE": "x.db"}).database == "x.db"


def test_sqlite_and_postgresql_hold_the_hours_ledger() -> None:
    from store import has_ledger

    assert has_ledger("tierdesk.sqlite3") and has_ledger("sqlite:///var/lib/t.db")
    assert has_ledger("postgresql://u@h/db") and has_ledger("postgres://u@h/db")
    assert not has_ledger("mysql://u@h/db")
