"""Property tests for the validators of what users type (issue 17's bad-input suite).

For each: any text at all either passes, and then holds what the rule promises, or raises
ValidationError (or the archive's SourceError) with a message — never another exception.
And values built from the rule's own grammar pass. (Placement: test_placement_validator.py.)
"""

import re
import tarfile

from croniter import croniter
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.validators import (
    APP_NAME_RE,
    ENV_KEY_RE,
    FORBIDDEN_MOUNTS,
    MAX_ENV_VALUE_BYTES,
    RESERVED_APP_NAMES,
    validate_app_name,
    validate_custom_domain,
    validate_env_key,
    validate_env_value,
    validate_environment_name,
    validate_volume,
)
from deployments.adapters.sources import SourceError
from deployments.adapters.sources.archive import _member_path
from deployments.adapters.sources.git import validate_branch, validate_repository_url
from deployments.models.runs import validate_schedule
from deployments.services.formation import _clean_counts

# Text as users paste it: printable, control characters, shell metacharacters, non-ASCII.
ANY_TEXT = st.text(max_size=80) | st.text(
    alphabet=st.sampled_from(list("abcZ09-_./:@~^{}[]$`;|&<>!*?'\" \t\n\x00é")), max_size=40
)
PLATFORM = "apps.example.com"


def _refused_or(check, value):
    """check(value)'s answer, or None when it raised ValidationError with a message."""
    try:
        return True, check(value)
    except ValidationError as exc:
        assert exc.messages and all(message.strip() for message in exc.messages)
        return False, None


@given(ANY_TEXT)
def test_an_app_name_is_a_dns_label_that_is_not_reserved_or_refused(name):
    accepted, _ = _refused_or(validate_app_name, name)
    if accepted:
        assert APP_NAME_RE.fullmatch(name) and len(name) <= 63
        assert name not in RESERVED_APP_NAMES and not name.endswith("-staging")


@given(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?", fullmatch=True))
def test_every_lowercase_label_is_an_app_name_unless_reserved(name):
    accepted, _ = _refused_or(validate_app_name, name)
    assert accepted == (name not in RESERVED_APP_NAMES and not name.endswith("-staging"))


@given(ANY_TEXT)
def test_an_environment_name_is_a_short_label_starting_with_a_letter_or_refused(name):
    accepted, _ = _refused_or(validate_environment_name, name)
    if accepted:
        assert re.fullmatch(r"[a-z][a-z0-9-]{0,29}", name) and "--" not in name
        assert not name.endswith("-") and not name.startswith("pr-")


@given(ANY_TEXT)
def test_an_env_key_is_an_identifier_or_refused(key):
    accepted, _ = _refused_or(validate_env_key, key)
    assert accepted == bool(ENV_KEY_RE.fullmatch(key) and len(key) <= 255)


@given(
    st.text(max_size=200)
    | st.integers(-4, 4).map(lambda d: "a" * (MAX_ENV_VALUE_BYTES + d))
    | st.integers(-4, 4).map(lambda d: "é" * ((MAX_ENV_VALUE_BYTES + d) // 2))
)
def test_an_env_value_is_text_without_nul_of_at_most_32_kib(value):
    accepted, _ = _refused_or(validate_env_value, value)
    assert accepted == ("\x00" not in value and len(value.encode()) <= MAX_ENV_VALUE_BYTES)


@settings(max_examples=60)  # each asks `git check-ref-format`
@given(ANY_TEXT)
def test_a_branch_git_accepts_and_no_option_or_refused(name):
    accepted, result = _refused_or(validate_branch, name)
    if accepted and name:
        assert result == name and not name.startswith("-") and "\x00" not in name
        assert "@{" not in name and ".." not in name and " " not in name


@given(ANY_TEXT)
def test_a_repository_url_is_one_git_runs_no_command_for_or_refused(url):
    accepted, result = _refused_or(validate_repository_url, url)
    if accepted:
        assert not result.startswith("-") and "::" not in result.split("/", 1)[0]
        assert (
            result.split("://", 1)[0] in ("https", "ssh", "file")
            or "@" in result
            or result.startswith("/")
        )
        assert not any(char in result for char in "\x00\n\r\t ")


@given(ANY_TEXT)
def test_a_custom_domain_is_a_host_name_outside_the_platforms_or_refused(hostname):
    accepted, host = _refused_or(lambda h: validate_custom_domain(h, PLATFORM), hostname)
    if accepted:
        assert host == host.lower() and "." in host and len(host) <= 253
        assert host != PLATFORM and not host.endswith("." + PLATFORM)
        assert re.fullmatch(r"[a-z0-9.-]+", host) and not host.split(".")[-1].isdigit()


@given(ANY_TEXT, ANY_TEXT | st.sampled_from([*FORBIDDEN_MOUNTS, "/data", "/var/lib/x"]))
def test_a_volume_is_a_short_name_on_an_absolute_path_that_breaks_nothing_or_refused(name, path):
    accepted, _ = _refused_or(lambda pair: validate_volume(*pair), (name, path))
    if accepted:
        assert re.fullmatch(r"[a-z0-9-]{1,32}", name)
        assert path.startswith("/") and ".." not in path.split("/") and " " not in path
        assert path.rstrip("/") not in FORBIDDEN_MOUNTS


@given(
    ANY_TEXT
    | st.lists(
        st.sampled_from(["*", "*/5", "0", "59", "1-5", "7", "60", "x"]), min_size=4, max_size=6
    ).map(" ".join)
)
def test_a_schedule_is_five_cron_fields_croniter_reads_or_refused(schedule):
    accepted, expression = _refused_or(validate_schedule, schedule)
    if accepted:
        assert len(expression.split(" ")) == 5 and croniter.is_valid(expression)


@given(ANY_TEXT)
def test_an_archive_member_stays_inside_the_tree_or_is_refused(name):
    member = tarfile.TarInfo(name)
    try:
        path = _member_path(member)
    except SourceError as exc:
        assert exc.message
        return
    if path is not None:
        assert not path.is_absolute() and ".." not in path.parts


def test_a_trailing_newline_is_no_part_of_a_name():
    """Found by the properties above: `$` in a pattern also matches before a final newline,
    so re.match took "a\n" for an environment name (and "web\n" for an app name). A
    domain is stripped of surrounding blanks on purpose, and so not here."""
    for check, value in [
        (validate_app_name, "web\n"),
        (validate_environment_name, "a\n"),
        (validate_env_key, "KEY\n"),
        (lambda path: validate_volume("data", path), "/data\n"),
        (lambda name: validate_volume(name, "/data"), "data\n"),
    ]:
        accepted, _ = _refused_or(check, value)
        assert not accepted, repr(value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
KNOWN_PROCESSES = {"web", "worker", "clock"}


@given(
    st.dictionaries(
        st.sampled_from(sorted(KNOWN_PROCESSES)) | ANY_TEXT, JSON | st.integers(), max_size=4
    )
    | JSON
)
def test_formation_counts_are_known_types_with_whole_counts_in_range_or_refused(counts):
    # The check behind PUT …/formation and the dashboard's scale form (set_formation).
    passed, cleaned = _refused_or(lambda c: _clean_counts(c, KNOWN_PROCESSES), counts)
    if passed:
        assert cleaned and set(cleaned) <= KNOWN_PROCESSES
        for count in cleaned.values():
            assert type(count) is int and 0 <= count <= django_settings.PAAS_MAX_REPLICAS
