"""The Zendesk app package: check the app files against the Zendesk Apps Framework's
rules, and build the zip an admin uploads (Admin Center > Apps > Upload private app).

Where the files are: ``manifest.json``, ``requirements.json``, ``assets/`` and
``translations/`` at the root of a tierdesk checkout. They are the app, not Python
package data, so an installed wheel does not carry them: `default_app_dir` is the
directory that holds the ``tierdesk`` package, which is the checkout's root when
tierdesk runs from a checkout or an editable install (``pip install -e .``). Anywhere
else, name the directory (``tierdesk package zendesk --source DIR``); a directory
without ``manifest.json`` is refused with a problem saying so.

Every problem names the file, the JSON pointer and the rule, as the mappings do
(`mappings.problems.Problem`). The rules come from:

- the manifest reference,
  https://developer.zendesk.com/documentation/apps/app-developer-guide/manifest/
  (required keys, ``parameters`` and ``secure``, ``domainWhitelist``, locations);
- app requirements,
  https://developer.zendesk.com/documentation/apps/app-developer-guide/apps_requirements/
  (resource types, identifiers, webhooks with ``endpoint``/``http_method``/…);
- the files every app must hold, https://developer.zendesk.com/apps/docs/apps-v2/setup
  (``assets/logo.png``, ``assets/logo-small.png``, ``translations/en.json``);
- Zendesk's own validator, github.com/zendesk/zendesk_apps_support,
  ``lib/zendesk_apps_support/validations/{manifest,requirements,translations,
  secure_settings}.rb``, with ``Manifest::Parameter::TYPES``, ``AppRequirement::TYPES``,
  ``Location::LOCATIONS_AVAILABLE`` and ``AppVersion`` (the lists below are copied
  from there);
- the Webhooks API (``http_method``, ``request_format``, ``status``),
  https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks ; ticket
  fields and triggers: ``TicketFieldObject`` and ``TriggerObject`` in
  ``../shared/vendor/zendesk/support-api.openapi.yaml``.

Rules that are tierdesk's own, stricter than Zendesk's, say so where they are checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mappings.problems import Problem, pointer

MANIFEST = "manifest.json"
REQUIREMENTS = "requirements.json"
FOLDERS = ("assets", "translations")  # with the two files above: all that goes in the zip
LOGOS = ("assets/logo.png", "assets/logo-small.png")  # setup page: required files

PARAMETER_TYPES = ("text", "password", "checkbox", "url", "number", "multiline", "hidden", "oauth")
# AppVersion::VALID_FOR_CREATE: the only framework version a new app may target.
FRAMEWORK_VERSIONS = ("2.0",)
MANIFEST_KEYS = (
    "name",
    "author",
    "version",
    "frameworkVersion",
    "location",
    "gaID",
    "defaultLocale",
    "parameters",
    "domainWhitelist",
    "private",
    "requirementsOnly",
    "singleInstall",
    "signedUrls",
    "termsConditionsURL",
    "experiments",
    "marketingOnly",
    "oauth",
)
BOOLEAN_KEYS = ("private", "requirementsOnly", "singleInstall", "signedUrls", "marketingOnly")
STRING_KEYS = ("name", "version", "frameworkVersion", "defaultLocale", "termsConditionsURL", "gaID")
LOCATIONS: dict[str, tuple[str, ...]] = {
    "support": (
        "top_bar",
        "nav_bar",
        "ticket_sidebar",
        "new_ticket_sidebar",
        "user_sidebar",
        "organization_sidebar",
        "background",
        "modal",
        "ticket_editor",
        "system_top_bar",
    ),
    "chat": ("chat_sidebar", "background"),
    "sell": (
        "deal_card",
        "person_card",
        "company_card",
        "lead_card",
        "background",
        "modal",
        "dashboard",
        "note_editor",
        "call_log_editor",
        "email_editor",
    ),
}
LOCALE = re.compile(r"^[a-z]{2}(-\w{2,3})?$")  # Translations::VALID_LOCALE
# SecureSettings: a parameter named like a credential that is not secure. Zendesk
# warns; tierdesk refuses (its token must never reach the browser).
CREDENTIAL_NAME = re.compile(r"token|key|pwd|password", re.IGNORECASE)

REQUIREMENT_TYPES = (
    "automations",
    "channel_integrations",
    "custom_objects",
    "macros",
    "targets",
    "views",
    "ticket_fields",
    "triggers",
    "user_fields",
    "organization_fields",
    "webhooks",
    "custom_objects_v2",
)
MAX_REQUIREMENTS = 5000
UNTITLED_TYPES = ("channel_integrations", "custom_objects", "webhooks", "custom_objects_v2")
WEBHOOK_KEYS = ("name", "status", "endpoint", "http_method", "request_format")
WEBHOOK_ENUMS = {
    "http_method": ("GET", "POST", "PUT", "PATCH", "DELETE"),
    "request_format": ("json", "xml", "form_encoded"),
    "status": ("active", "inactive"),
}
REFUSED_TARGETS = ("http_target", "url_target_v2")  # deprecated: use webhooks
TICKET_FIELD_TYPES = (
    "text",
    "textarea",
    "checkbox",
    "date",
    "integer",
    "decimal",
    "regexp",
    "partialcreditcard",
    "multiselect",
    "tagger",
    "lookup",
)
# User and organization fields (Support API "Create User Field", "Create Organization
# Field"): a drop-down is "dropdown" there, and needs its options.
CUSTOM_FIELD_TYPES = (
    "text",
    "textarea",
    "checkbox",
    "date",
    "integer",
    "decimal",
    "regexp",
    "dropdown",
    "lookup",
    "multiselect",
)
OPTION_FIELD_TYPES = ("dropdown", "multiselect")
FIELD_KEY = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_]+$")  # letters, digits, _; not only digits
SETTING = re.compile(r"\{\{\s*setting\.([A-Za-z0-9_]+)\s*\}\}")
DOMAIN = re.compile(
    r"^(localhost|(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?)$"
)
# The one script the page may load from elsewhere: the ZAF SDK (tierdesk's rule).
SDK_ORIGIN = "https://static.zdassets.com/"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Zip entries carry this timestamp whatever the files' mtimes: a build is a function of
# the files' contents (1980-01-01 is the earliest time a zip entry can hold).
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class PackageError(Exception):
    """The app files were refused; ``problems`` says every reason found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        first = str(problems[0]) if problems else "no problems recorded"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"Zendesk app refused: {first}{more}")


@dataclass(frozen=True, slots=True)
class Built:
    path: Path
    entries: tuple[str, ...]
    sha256: str


def default_app_dir() -> Path:
    """The checkout's root: the directory that holds the ``tierdesk`` package."""
    return Path(__file__).resolve().parents[1]


def app_files(root: Path) -> list[str]:
    """What goes in the zip, as sorted POSIX paths relative to ``root``: the two JSON
    files and every file under assets/ and translations/ (hidden files left out)."""
    names = [n for n in (MANIFEST, REQUIREMENTS) if (root / n).is_file()]
    for folder in FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            relative = path.relative_to(root)
            hidden = any(p.startswith(".") or p == "__pycache__" for p in relative.parts)
            if path.is_file() and not hidden:
                names.append(relative.as_posix())
    return sorted(names)


def validate(root: Path, *, domains: Sequence[str] = ()) -> list[Problem]:
    """Every problem with the app at ``root``; ``domains`` are added to the manifest's
    ``domainWhitelist`` as the build adds them."""
    if not (root / MANIFEST).is_file():
        return [
            Problem(
                MANIFEST,
                "",
                "missing_manifest",
                f"no Zendesk app at {root}: manifest.json is not there. The app files live"
                " at the root of a tierdesk checkout; run from one, or pass --source DIR",
            )
        ]
    files = app_files(root)
    check = _Check(root, files)
    manifest = check.json(MANIFEST)
    if isinstance(manifest, dict):
        manifest = with_domains(manifest, domains)
        check.manifest(manifest)
    elif manifest is not None:
        check.say(MANIFEST, "", "not_object", "the manifest must be a JSON object")
    parameters = _parameters(manifest)
    if REQUIREMENTS in files:
        requirements = check.json(REQUIREMENTS)
        if isinstance(requirements, dict):
            check.requirements(requirements, parameters)
        elif requirements is not None:
            check.say(REQUIREMENTS, "", "not_object", "requirements must be a JSON object")
    check.translations(manifest if isinstance(manifest, dict) else {})
    check.assets()
    return check.problems


def with_domains(manifest: dict[str, Any], domains: Sequence[str]) -> dict[str, Any]:
    """The manifest with ``domains`` appended to its ``domainWhitelist`` (once each)."""
    if not domains:
        return manifest
    current = manifest.get("domainWhitelist")
    listed = list(current) if isinstance(current, list) else []
    return {**manifest, "domainWhitelist": listed + [d for d in domains if d not in listed]}


def build(root: Path, out: Path, *, domains: Sequence[str] = ()) -> Built:
    """Validate, then write the zip to ``out`` (atomically: a temporary file renamed).

    Deterministic: entries sorted, fixed timestamps and permissions, fixed compression,
    so the same files always give the same bytes."""
    problems = validate(root, domains=domains)
    if problems:
        raise PackageError(problems)
    entries = app_files(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would follow the file through the rename
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w") as archive:
                for name in entries:
                    archive.writestr(_entry(name), _content(root, name, domains))
            raw.flush()
            os.fsync(raw.fileno())
        Path(temp).replace(out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    return Built(out, tuple(entries), digest)


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so that the mode below is read as such
    info.external_attr = (0o100644 & 0xFFFF) << 16
    return info


def _content(root: Path, name: str, domains: Sequence[str]) -> bytes:
    data = (root / name).read_bytes()
    if name == MANIFEST and domains:
        manifest = with_domains(json.loads(data), domains)
        return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    return data


def _parameters(manifest: object) -> dict[str, dict[str, Any]]:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("parameters"), list):
        return {}
    return {
        p["name"]: p
        for p in manifest["parameters"]
        if isinstance(p, dict) and isinstance(p.get("name"), str)
    }


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, or None when it is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class _Check:
    """Collects problems while walking the app files."""

    def __init__(self, root: Path, files: list[str]) -> None:
        self.root = root
        self.files = files
        self.problems: list[Problem] = []

    def say(self, file: str, where: str, rule: str, message: str) -> None:
        self.problems.append(Problem(file, where, rule, message))

    def json(self, name: str) -> Any:
        duplicates: list[str] = []

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            seen: dict[str, Any] = {}
            for key, value in items:
                if key in seen:
                    duplicates.append(key)
                seen[key] = value
            return seen

        try:
            doc = json.loads((self.root / name).read_bytes(), object_pairs_hook=pairs)
        except UnicodeDecodeError as exc:
            self.say(name, "", "not_json", f"not UTF-8 (byte {exc.start})")
            return None
        except json.JSONDecodeError as exc:
            self.say(name, "", "not_json", f"line {exc.lineno} column {exc.colno}: {exc.msg}")
            return None
        for key in duplicates:
            # Zendesk refuses these (Manifest::OverrideError, duplicate_requirements): the
            # second value would silently win.
            self.say(name, "", "duplicate_keys", f"the key {key!r} appears twice in one object")
        return doc

    # -- manifest.json ----------------------------------------------------------------

    def manifest(self, m: dict[str, Any]) -> None:
        say = self.say
        for key in m:
            if key not in MANIFEST_KEYS:  # tierdesk's rule: a typo would be ignored silently
                say(MANIFEST, pointer(key), "unknown_key", f"{key!r} is not a manifest property")
        requirements_only = m.get("requirementsOnly") is True
        required = ["author", "defaultLocale"]
        if not requirements_only:
            required += ["location", "frameworkVersion"]
        for key in required:
            if key not in m:
                say(MANIFEST, pointer(key), "required", f"{key} is required")
        for key in BOOLEAN_KEYS:
            if key in m and not isinstance(m[key], bool):
                say(MANIFEST, pointer(key), "boolean", f"{key} must be true or false")
        for key in STRING_KEYS:
            if key in m and not isinstance(m[key], str):
                say(MANIFEST, pointer(key), "string", f"{key} must be a string")
        self._author(m.get("author"))
        version = m.get("frameworkVersion")
        if "frameworkVersion" in m and version not in FRAMEWORK_VERSIONS:
            say(
                MANIFEST,
                pointer("frameworkVersion"),
                "invalid_version",
                f"frameworkVersion {version!r}: a new app must target {FRAMEWORK_VERSIONS[0]}",
            )
        locale = m.get("defaultLocale")
        if isinstance(locale, str):
            if not LOCALE.match(locale):
                say(MANIFEST, pointer("defaultLocale"), "invalid_default_locale", repr(locale))
            elif f"translations/{locale}.json" not in self.files:
                say(
                    MANIFEST,
                    pointer("defaultLocale"),
                    "missing_translation_file",
                    f"translations/{locale}.json is missing",
                )
        if "location" in m:
            self._location(m["location"])
        self._parameters_and_domains(m)

    def _author(self, author: object) -> None:
        if author is None:
            return
        if not isinstance(author, dict):
            self.say(MANIFEST, "/author", "not_object", "author is {name, email, url}")
            return
        for key in ("name", "email"):
            if not isinstance(author.get(key), str) or not author[key].strip():
                self.say(MANIFEST, pointer("author", key), "required", f"author.{key} is required")
        url = author.get("url")
        if url is not None and not (isinstance(url, str) and re.match(r"^https?://", url)):
            self.say(MANIFEST, "/author/url", "invalid_url", "author.url must be http(s)://…")

    def _location(self, location: object) -> None:
        if not isinstance(location, dict) or not location:
            self.say(MANIFEST, "/location", "not_object", "location maps products to locations")
            return
        for host, places in location.items():
            if host not in LOCATIONS:
                known = ", ".join(LOCATIONS)
                self.say(MANIFEST, pointer("location", host), "invalid_host", f"not one of {known}")
                continue
            if not isinstance(places, dict):
                self.say(MANIFEST, pointer("location", host), "not_object", "location names")
                continue
            for name, options in places.items():
                where = pointer("location", host, name)
                if name not in LOCATIONS[host]:
                    self.say(MANIFEST, where, "invalid_location", f"{name!r} is not a {host} one")
                    continue
                self._location_options(where, options)

    def _location_options(self, where: str, options: object) -> None:
        url: object = options
        if isinstance(options, dict):
            url = options.get("url")
            flexible = options.get("flexible")
            if flexible is not None and not isinstance(flexible, bool):
                self.say(MANIFEST, f"{where}/flexible", "boolean", "flexible is true or false")
            if url is None:
                if options.get("autoLoad", True) is not False:
                    self.say(MANIFEST, f"{where}/url", "blank_location_uri", "a url is needed")
                return
            where = f"{where}/url"
        if not isinstance(url, str) or not url:
            self.say(MANIFEST, where, "invalid_location_uri", "the location's url is a string")
            return
        if "{{setting." in url:
            return
        parts = urlsplit(url)
        if parts.scheme:
            if parts.scheme != "https" and parts.hostname != "localhost":
                self.say(MANIFEST, where, "invalid_location_uri", f"{url}: https only")
        elif not url.startswith("assets/") or parts.path not in self.files:
            self.say(
                MANIFEST,
                where,
                "invalid_location_uri",
                f"{url}: a relative url must name a file under assets/ of this app",
            )

    def _parameters_and_domains(self, m: dict[str, Any]) -> None:
        say = self.say
        parameters = m.get("parameters", [])
        if not isinstance(parameters, list):
            say(MANIFEST, "/parameters", "not_array", "parameters is an array of objects")
            parameters = []
        names: set[str] = set()
        secure: list[str] = []
        oauth = 0
        for i, p in enumerate(parameters):
            where = pointer("parameters", i)
            if not isinstance(p, dict):
                say(MANIFEST, where, "not_object", "a parameter is an object")
                continue
            name = p.get("name")
            if not isinstance(name, str) or not name:
                say(MANIFEST, f"{where}/name", "required", "every parameter has a name")
                continue
            if name in names:
                say(MANIFEST, f"{where}/name", "duplicate_parameters", f"{name!r} twice")
            names.add(name)
            if name == "name":
                say(MANIFEST, f"{where}/name", "name_as_parameter_name", "'name' is reserved")
            kind = p.get("type", "text")
            if kind not in PARAMETER_TYPES:
                say(
                    MANIFEST,
                    f"{where}/type",
                    "invalid_type_parameter",
                    f"{kind!r} is not one of {', '.join(PARAMETER_TYPES)}",
                )
            for flag in ("required", "secure"):
                if flag in p and not isinstance(p[flag], bool):
                    say(MANIFEST, f"{where}/{flag}", "boolean", f"{flag} is true or false")
            is_secure = p.get("secure") is True
            if kind == "hidden" and p.get("required") is True:
                say(MANIFEST, where, "invalid_hidden_parameter", f"{name}: hidden yet required")
            if kind == "oauth":
                oauth += 1
                if is_secure:
                    say(MANIFEST, f"{where}/secure", "oauth_parameter_cannot_be_secure", name)
            if is_secure:
                secure.append(name)
                if "default" in p:  # SecureSettings: a default would ship the secret
                    say(MANIFEST, f"{where}/default", "secure_default", f"{name}: no default")
            elif CREDENTIAL_NAME.search(name) and kind in ("text", "password"):
                say(
                    MANIFEST,
                    f"{where}/secure",
                    "insecure_token_parameter",
                    f"{name} looks like a credential: make it secure: true",
                )
        if oauth > 1:
            say(MANIFEST, "/parameters", "too_many_oauth_parameters", "at most one oauth")
        self._domains(m, secure)

    def _domains(self, m: dict[str, Any], secure: list[str]) -> None:
        domains = m.get("domainWhitelist")
        if domains is not None and not (
            isinstance(domains, list) and all(isinstance(d, str) for d in domains)
        ):
            self.say(MANIFEST, "/domainWhitelist", "array_of_strings", "a list of domain names")
            return
        for i, domain in enumerate(domains or []):
            if not DOMAIN.match(domain):
                self.say(
                    MANIFEST,
                    pointer("domainWhitelist", i),
                    "domain",
                    f"{domain!r} is not a domain name (no scheme, port or path),"
                    " e.g. tierdesk.acme.example",
                )
        if secure and not domains:
            # Zendesk's proxy fills a secure setting in only for requests to a domain on
            # this list; tierdesk's host is known only when the package is built.
            self.say(
                MANIFEST,
                "/domainWhitelist",
                "secure_needs_domain",
                f"the secure setting(s) {', '.join(secure)} are sent only to listed domains:"
                " name tierdesk's host (tierdesk package zendesk --domain tierdesk.acme.example)",
            )

    # -- requirements.json ------------------------------------------------------------

    def requirements(self, doc: dict[str, Any], parameters: dict[str, dict[str, Any]]) -> None:
        say = self.say
        count = 0
        webhooks = doc.get("webhooks") if isinstance(doc.get("webhooks"), dict) else {}
        for kind, group in doc.items():
            where = pointer(kind)
            if kind not in REQUIREMENT_TYPES:
                say(
                    REQUIREMENTS,
                    where,
                    "invalid_requirements_types",
                    f"{kind!r} is not one of {', '.join(REQUIREMENT_TYPES)}",
                )
                continue
            if not isinstance(group, dict):
                say(REQUIREMENTS, where, "not_object", f"{kind} maps identifiers to resources")
                continue
            if kind == "channel_integrations" and len(group) > 1:
                say(REQUIREMENTS, where, "multiple_channel_integrations", "at most one")
            for identifier, spec in group.items():
                count += 1
                self._requirement(kind, identifier, spec, webhooks or {})
        if count > MAX_REQUIREMENTS:
            say(REQUIREMENTS, "", "excessive_requirements", f"{count} > {MAX_REQUIREMENTS}")
        for where, name in _settings_used(doc):
            p = parameters.get(name)
            if p is None:
                say(REQUIREMENTS, where, "unknown_setting", f"{{{{setting.{name}}}}} is undeclared")
            elif p.get("secure") is True:
                # tierdesk's rule: a secret in a webhook URL or body ends up in logs.
                say(REQUIREMENTS, where, "secure_setting_in_requirements", name)

    def _requirement(self, kind: str, identifier: str, spec: object, hooks: dict[str, Any]) -> None:
        where = pointer(kind, identifier)
        if not isinstance(spec, dict):
            self.say(REQUIREMENTS, where, "not_object", f"{identifier} must be an object")
            return

        def need(*keys: str) -> None:
            for key in keys:
                if key not in spec:
                    self.say(REQUIREMENTS, f"{where}/{key}", "missing_required_fields", key)

        if kind not in UNTITLED_TYPES:
            need("title")
        if kind in ("user_fields", "organization_fields"):
            need("key")
            self._custom_field(where, spec)
        elif kind == "channel_integrations":
            need("manifest_url")
        elif kind == "custom_objects":
            need("custom_object_types")
        elif kind == "webhooks":
            self._webhook(where, spec, need)
        elif kind == "targets" and spec.get("type") in REFUSED_TARGETS:
            self.say(
                REQUIREMENTS,
                f"{where}/type",
                "invalid_requirements_types",
                f"targets -> {spec['type']}: deprecated, declare a webhook instead",
            )
        elif kind == "ticket_fields":
            need("type")
            if "type" in spec and spec["type"] not in TICKET_FIELD_TYPES:
                self.say(
                    REQUIREMENTS,
                    f"{where}/type",
                    "invalid_field_type",
                    f"{spec['type']!r} is not one of {', '.join(TICKET_FIELD_TYPES)}",
                )
        elif kind in ("triggers", "automations", "macros", "views"):
            self._rule(kind, where, spec, hooks, need)

    def _custom_field(self, where: str, spec: dict[str, Any]) -> None:
        """A user or organization field: Zendesk takes it as the Create call's body."""
        say = self.say
        key = spec.get("key")
        if "key" in spec and not (isinstance(key, str) and FIELD_KEY.match(key)):
            say(REQUIREMENTS, f"{where}/key", "invalid_field_key", f"{key!r}: letters, digits, _")
        kind = spec.get("type", "text")  # Zendesk's default
        if kind not in CUSTOM_FIELD_TYPES:
            say(
                REQUIREMENTS,
                f"{where}/type",
                "invalid_field_type",
                f"{kind!r} is not one of {', '.join(CUSTOM_FIELD_TYPES)}",
            )
            return
        options = spec.get("custom_field_options")
        if kind not in OPTION_FIELD_TYPES:
            if options is not None:
                say(REQUIREMENTS, f"{where}/custom_field_options", "unexpected_options", kind)
            return
        if not isinstance(options, list) or not options:
            say(
                REQUIREMENTS,
                f"{where}/custom_field_options",
                "missing_required_fields",
                f"a {kind} field needs its options",
            )
            return
        values: set[str] = set()
        for i, option in enumerate(options):
            at = f"{where}/custom_field_options/{i}"
            if not isinstance(option, dict):
                say(REQUIREMENTS, at, "not_object", "an option is {name, value}")
                continue
            for part in ("name", "value"):
                if not (isinstance(option.get(part), str) and option[part].strip()):
                    say(REQUIREMENTS, f"{at}/{part}", "missing_required_fields", part)
            value = option.get("value")
            if isinstance(value, str) and value.strip():
                # The value is the tag Zendesk adds to the user or organization.
                if any(c.isspace() for c in value):
                    say(REQUIREMENTS, f"{at}/value", "invalid_option_value", "a tag: no spaces")
                if value in values:
                    say(REQUIREMENTS, f"{at}/value", "duplicate_option_value", value)
                values.add(value)

    def _webhook(self, where: str, spec: dict[str, Any], need: Callable[..., None]) -> None:
        need(*WEBHOOK_KEYS)
        for key, allowed in WEBHOOK_ENUMS.items():
            if key in spec and spec[key] not in allowed:
                self.say(REQUIREMENTS, f"{where}/{key}", "invalid_value", f"not one of {allowed}")
        endpoint = spec.get("endpoint")
        if isinstance(endpoint, str) and not (
            endpoint.startswith("https://") or SETTING.match(endpoint)
        ):
            self.say(REQUIREMENTS, f"{where}/endpoint", "invalid_url", f"{endpoint}: https only")
        subscriptions = spec.get("subscriptions")
        if subscriptions is not None and not (
            isinstance(subscriptions, list) and all(isinstance(s, str) for s in subscriptions)
        ):
            self.say(REQUIREMENTS, f"{where}/subscriptions", "array_of_strings", "event names")

    def _rule(
        self,
        kind: str,
        where: str,
        spec: dict[str, Any],
        hooks: dict[str, Any],
        need: Callable[..., None],
    ) -> None:
        # Triggers API: title, conditions and actions are required (TriggerObject).
        if kind == "triggers":
            need("conditions", "actions")
        conditions = spec.get("conditions")
        if conditions is not None:
            if not isinstance(conditions, dict):
                self.say(REQUIREMENTS, f"{where}/conditions", "not_object", "{all, any}")
            else:
                for group in ("all", "any"):
                    items = conditions.get(group, [])
                    if not isinstance(items, list):
                        self.say(REQUIREMENTS, f"{where}/conditions/{group}", "not_array", group)
                        continue
                    for i, item in enumerate(items):
                        if not isinstance(item, dict) or "field" not in item:
                            self.say(
                                REQUIREMENTS,
                                f"{where}/conditions/{group}/{i}",
                                "missing_required_fields",
                                "a condition has a field, an operator and a value",
                            )
        actions = spec.get("actions")
        if actions is None:
            return
        if not isinstance(actions, list) or not actions:
            self.say(REQUIREMENTS, f"{where}/actions", "not_array", "a non-empty array")
            return
        for i, action in enumerate(actions):
            at = f"{where}/actions/{i}"
            if not isinstance(action, dict) or "field" not in action or "value" not in action:
                self.say(REQUIREMENTS, at, "missing_required_fields", "an action has field, value")
            elif action["field"] == "notification_webhook":
                self._notify(at, action["value"], hooks)

    def _notify(self, at: str, value: object, hooks: dict[str, Any]) -> None:
        # The action's value is [webhook, body] (Triggers API). tierdesk's rule: the
        # webhook is one this file declares (an id from one account means nothing in
        # another), and a JSON webhook's body is JSON.
        if not (
            isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
        ):
            self.say(REQUIREMENTS, f"{at}/value", "invalid_value", "[webhook identifier, body]")
            return
        hook, body = value
        if hook not in hooks:
            self.say(
                REQUIREMENTS,
                f"{at}/value/0",
                "unknown_webhook",
                f"{hook!r} is not a webhook declared in requirements.json",
            )
            return
        if isinstance(hooks[hook], dict) and hooks[hook].get("request_format") == "json":
            try:
                json.loads(body)
            except json.JSONDecodeError as exc:
                self.say(
                    REQUIREMENTS,
                    f"{at}/value/1",
                    "body_not_json",
                    f"the {hook} webhook sends JSON; body line {exc.lineno}: {exc.msg}",
                )

    # -- translations/ ----------------------------------------------------------------

    def translations(self, manifest: dict[str, Any]) -> None:
        default = manifest.get("defaultLocale")
        for name in self.files:
            if not name.startswith("translations/"):
                continue
            locale = posixpath.splitext(posixpath.basename(name))[0]
            if not name.endswith(".json") or posixpath.dirname(name) != "translations":
                self.say(name, "", "translation_file", "translations/<locale>.json only")
                continue
            if not LOCALE.match(locale):
                self.say(name, "", "invalid_locale", f"{locale!r} is not a locale")
            doc = self.json(name)
            if doc is None:
                continue
            if not isinstance(doc, dict) or not isinstance(doc.get("app", {}), dict):
                self.say(name, "", "not_object", '{"app": {…}}')
                continue
            if locale == "en":
                self._english(name, doc.get("app", {}), manifest)
            if locale == default:
                self._labels(name, doc.get("app", {}), manifest)

    def _english(self, name: str, app: dict[str, Any], manifest: dict[str, Any]) -> None:
        public = ("name", "short_description", "installation_instructions", "long_description")
        wanted = ("name",) if manifest.get("private", True) else public
        keys = {"short_description" if k == "description" else k for k in app}
        for key in wanted:
            if key not in keys:
                self.say(name, pointer("app", key), "missing_required_key", f"app.{key}")

    def _labels(self, name: str, app: dict[str, Any], manifest: dict[str, Any]) -> None:
        # tierdesk's rule: the install form shows each setting's label, not its raw name.
        labels = app.get("parameters", {})
        for p in _parameters(manifest):
            entry = labels.get(p) if isinstance(labels, dict) else None
            if not isinstance(entry, dict) or not isinstance(entry.get("label"), str):
                self.say(name, pointer("app", "parameters", p, "label"), "missing_label", p)

    # -- assets/ ----------------------------------------------------------------------

    def assets(self) -> None:
        for logo in LOGOS:
            if logo not in self.files:
                self.say(
                    logo, "", "missing_file", "every app has assets/logo.png and logo-small.png"
                )
            elif png_size((self.root / logo).read_bytes()) is None:
                self.say(logo, "", "invalid_png", "not a PNG image")
        for name in self.files:
            if name.endswith(".html"):
                self._references(name, _html_references((self.root / name).read_text("utf-8")))
            elif name.endswith(".css"):
                css = (self.root / name).read_text("utf-8")
                urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", css)
                self._references(name, urls)

    def _references(self, name: str, references: list[str]) -> None:
        for ref in references:
            parts = urlsplit(ref)
            if parts.scheme in ("data",) or ref.startswith("#"):
                continue
            if parts.scheme or ref.startswith("//"):
                if not ref.startswith(SDK_ORIGIN):  # tierdesk's rule: no third parties
                    self.say(name, "", "external_resource", f"{ref}: only the ZAF SDK may load")
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), parts.path))
            if target not in self.files:
                self.say(name, "", "missing_asset", f"{ref} ({target}) is not in the app")


def _html_references(html: str) -> list[str]:
    found: list[str] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(v for k, v in attrs if k in ("src", "href") and v)

    Parser().feed(html)
    return found


def _settings_used(doc: object, where: str = "") -> Iterator[tuple[str, str]]:
    """Every ``{{setting.NAME}}`` in the document's strings, with its JSON pointer."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _settings_used(value, where + pointer(key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _settings_used(value, where + pointer(i))
    elif isinstance(doc, str):
        for match in SETTING.finditer(doc):
            yield where, match.group(1)
