"""Refuse `ADD <url>` sources, before the build.

The classic builder fetches an ADD URL in the engine itself, in the host's network
namespace: the egress firewall, which guards the build network, never sees it. And it
follows redirects, so a public URL answering 302 to http://127.0.0.1:2019/ reaches the
host's own services whatever its host resolves to. So by default a URL source is refused
with `remote_add_refused` (a RUN with curl or wget downloads on the build network, behind
the firewall). With PAAS_BUILD_ALLOW_REMOTE_ADD every URL an ADD (or ONBUILD ADD) names is
resolved here first, and one whose host is loopback,
private, link-local, CGNAT, unspecified or multicast fails with `build_network_refused`
unless PAAS_EGRESS_ALLOW holds it. Variables are expanded from the Dockerfile's own ARG and
ENV defaults (Slipway passes no build args); a source that a variable we cannot know (a
base image's ENV, say) could turn into a URL is refused too.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from ipaddress import ip_address
from urllib.parse import urlsplit

from deployments.adapters.builders.errors import BuildError
from deployments.adapters.egress import IPAddress, IPNetwork, is_blocked, parse_allow

ERROR_CODE = "build_network_refused"
REMOTE_ADD_CODE = "remote_add_refused"
URL_PREFIXES = ("http://", "https://")
ESCAPE_DIRECTIVE_RE = re.compile(r"^#\s*escape\s*=\s*`\s*$", re.IGNORECASE)
VARIABLE_RE = re.compile(r"\$(?:\{(?P<braced>\w+)(?P<modifier>:[-+][^}]*)?\}|(?P<bare>\w+))")
Resolver = Callable[[str], list[IPAddress]]


def check_add_sources(dockerfile: str, allow_remote_add: bool, allow: Iterable[str]) -> None:
    """Refuse every URL source unless the operator allows remote ADD; then, or for a source
    a variable could make a URL, the checks of refuse_private_sources."""
    if not allow_remote_add:
        refuse_remote_sources(dockerfile)
    refuse_private_sources(dockerfile, allow)


def refuse_remote_sources(dockerfile: str) -> None:
    """Raise remote_add_refused for the first ADD source that is a URL."""
    for source in add_sources(dockerfile):
        if source.lower().startswith(URL_PREFIXES):
            raise BuildError(
                REMOTE_ADD_CODE,
                f"ADD {source} is refused: the Docker engine would download it itself, "
                "outside the build network's firewall, following any redirect. Download it "
                f"in a RUN step instead (RUN curl -fsSLo <file> {source}, or wget), which runs "
                "on the firewalled build network, or ask the operator to set "
                "PAAS_BUILD_ALLOW_REMOTE_ADD=true.",
            )


def refuse_private_sources(dockerfile: str, allow: Iterable[str]) -> None:
    """Raise build_network_refused for the first ADD source the engine must not fetch."""
    allowed = parse_allow(allow)
    for source in add_sources(dockerfile):
        problem = source_problem(source, allowed)
        if problem:
            raise BuildError(
                ERROR_CODE,
                f"ADD {source.lstrip(chr(0))} is refused: {problem}. Builds may fetch only "
                "from public addresses; download with RUN (it runs on the build network), or "
                "ask the operator to list the address in PAAS_EGRESS_ALLOW.",
            )


def source_problem(
    source: str, allowed: list[IPNetwork], resolve: Resolver | None = None
) -> str | None:
    """Why the engine must not fetch `source` (as expanded); None for a local path or a
    URL on public addresses only."""
    if source.startswith("\0"):  # a variable we cannot know leads it
        return "a variable this Dockerfile does not set could make it a URL (write it out)"
    if not source.lower().startswith(URL_PREFIXES):
        return None
    return url_problem(source, allowed, resolve or resolve_host)


def url_problem(url: str, allowed: list[IPNetwork], resolve: Resolver) -> str | None:
    """Why `url`'s host is off limits, or None when every address it resolves to is public."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError:
        return "it is not a valid URL"
    if "@" in parts.netloc:
        return "a URL with a user name or password is not fetched"
    host = parts.hostname
    if not host:
        return "it names no host"
    try:
        addresses = resolve(host)
    except OSError:
        return f"{host} does not resolve"
    blocked = [address for address in addresses if is_blocked(address, allowed)]
    if blocked or not addresses:
        if not blocked:
            return f"{host} has no address"
        named = "" if host == str(blocked[0]) else f" (resolves to {blocked[0]})"
        return f"{host}{named} is the host's own or a non-public address"
    return None


def resolve_host(host: str) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal is its own answer)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [ip_address(info[4][0].split("%")[0]) for info in infos]


def add_sources(dockerfile: str) -> Iterator[str]:
    """The sources of every ADD and ONBUILD ADD, variables expanded. A source that an unknown
    variable could make a URL comes back as NUL + the text, for source_problem to refuse."""
    variables: dict[str, str | None] = {}
    for instruction in _instructions(dockerfile):
        keyword, _, rest = instruction.partition(" ")
        keyword = keyword.upper()
        if keyword == "ONBUILD":
            keyword, _, rest = rest.strip().partition(" ")
            keyword = keyword.upper()
        if keyword in ("ARG", "ENV"):
            variables.update(_assignments(keyword, rest))
        elif keyword == "ADD":
            for source in _sources(rest):
                yield _expand(source, variables)


def _instructions(dockerfile: str) -> Iterator[str]:
    """Logical instructions: continuation lines joined, comments and blank lines left out."""
    lines = dockerfile.splitlines()
    escape = "`" if lines and ESCAPE_DIRECTIVE_RE.match(lines[0].strip()) else "\\"
    current: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops them inside a continuation as well
        if stripped.endswith(escape):
            current.append(stripped[:-1])
            continue
        current.append(stripped)
        yield " ".join(current)
        current = []
    if current:
        yield " ".join(current)


def _assignments(keyword: str, rest: str) -> dict[str, str | None]:
    """`ARG A=1 B` / `ENV A=1 B=2` / `ENV A 1`: each name with its value (None: unknown,
    an ARG without a default may still come from a base image's ENV)."""
    words = rest.split()
    if keyword == "ENV" and words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:]).strip("\"'")}
    found: dict[str, str | None] = {}
    for word in words:
        name, equals, value = word.partition("=")
        found[name] = value.strip("\"'") if equals else None
    return found


def _sources(rest: str) -> list[str]:
    """ADD's sources: its words less the flags (`--chown=`, `--checksum=`) and the target."""
    rest = rest.strip()
    words = None
    if rest.startswith("["):
        try:
            words = json.loads(rest)
        except ValueError:
            words = None
    if not isinstance(words, list):
        words = rest.split()
    words = [str(word) for word in words]
    while words and words[0].startswith("--"):
        words.pop(0)
    return words[:-1]


def _expand(source: str, variables: dict[str, str | None]) -> str:
    """`source` with the known variables filled in; at the first unknown one, NUL + the text
    when what comes before it could still begin a URL."""
    expanded, position = [], 0
    for match in VARIABLE_RE.finditer(source):
        expanded.append(source[position : match.start()])
        position = match.end()
        value = _value(match, variables)
        if value is None:
            prefix = "".join(expanded).lower()
            could_be_url = any(p.startswith(prefix) or prefix.startswith(p) for p in URL_PREFIXES)
            return "\0" + source if could_be_url else source
        expanded.append(value)
    expanded.append(source[position:])
    return "".join(expanded)


def _value(match: re.Match, variables: dict[str, str | None]) -> str | None:
    name = match["braced"] or match["bare"]
    if name not in variables or variables[name] is None:
        return None
    value, modifier = variables[name], match["modifier"]
    if modifier and modifier.startswith(":-"):
        return value or modifier[2:]
    if modifier and modifier.startswith(":+"):
        return modifier[2:] if value else ""
    return value
