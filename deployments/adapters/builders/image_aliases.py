"""The images a Dockerfile builds from, rewritten through the operator's aliases.

A host without a registry cannot pull `python:3.11-slim`; PAAS_IMAGE_ALIASES maps such
references to local images (`python:3.11*=slipway/python:bookworm`). Every `FROM` and
`COPY --from=` that names an image (not a stage, not `scratch`, not an `$ARG` we cannot
know before the build) is matched with fnmatch, first pattern first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

# Docker's own directive, at the very top: `# escape=`` ` changes the line continuation.
ESCAPE_DIRECTIVE_RE = re.compile(r"^#\s*escape\s*=\s*(?P<char>[\\`])\s*$", re.IGNORECASE)
Aliases = list[tuple[str, str]]  # (fnmatch pattern, local image), first match wins
DEFAULT_REGISTRY_PREFIXES = ("docker.io/library/", "docker.io/", "index.docker.io/library/")


@dataclass
class ResolvedDockerfile:
    text: str  # the Dockerfile to build with
    aliased: list[tuple[str, str]] = field(default_factory=list)  # (as written, alias)
    images: list[str] = field(default_factory=list)  # what the build needs on the engine


def alias_for(reference: str, aliases: Aliases) -> str | None:
    """The local image the first matching pattern names; None when none matches."""
    names = {reference, short_name(reference)}
    for pattern, image in aliases:
        if any(fnmatchcase(name, pattern) for name in names):
            return image
    return None


def short_name(reference: str) -> str:
    """`docker.io/library/python:3.11` -> `python:3.11`, so one pattern covers both."""
    for prefix in DEFAULT_REGISTRY_PREFIXES:
        if reference.startswith(prefix):
            return reference.removeprefix(prefix)
    return reference


def resolve(text: str, aliases: Aliases) -> ResolvedDockerfile:
    """Rewrite every image reference of `text` through `aliases`; list the images needed."""
    result = ResolvedDockerfile("")
    stages: set[str] = set()
    pieces = []
    escape = _escape_char(text)
    for group in _instructions(text, escape):
        words = _words(group, escape)
        rewritten = _rewrite(words, stages, aliases, result) if words else None
        pieces.append(" ".join(rewritten) + "\n" if rewritten else "".join(group))
    result.text = "".join(pieces)
    return result


def _rewrite(
    words: list[str], stages: set[str], aliases: Aliases, result: ResolvedDockerfile
) -> list[str] | None:
    """The instruction's words with aliases applied, or None when nothing changed."""
    instruction = words[0].upper()
    if instruction == "FROM":
        return _rewrite_from(words, stages, aliases, result)
    if instruction == "COPY":
        return _rewrite_copy(words, stages, aliases, result)
    return None


def _rewrite_from(
    words: list[str], stages: set[str], aliases: Aliases, result: ResolvedDockerfile
) -> list[str] | None:
    position = next((i for i, w in enumerate(words[1:], 1) if not w.startswith("--")), None)
    if position is None:
        return None  # a FROM without an image: the engine says what is wrong
    # Only earlier stages count: `FROM python AS python` still builds from the image.
    rewritten = _replace(words, position, words[position], stages, aliases, result)
    rest = words[position + 1 :]
    if len(rest) == 2 and rest[0].upper() == "AS":
        stages.add(rest[1].lower())
    return rewritten


def _rewrite_copy(
    words: list[str], stages: set[str], aliases: Aliases, result: ResolvedDockerfile
) -> list[str] | None:
    for position, word in enumerate(words[1:], 1):
        if not word.startswith("--"):
            return None  # flags come first; the sources have begun
        if word.lower().startswith("--from="):
            source = word.split("=", 1)[1]
            return _replace(words, position, source, stages, aliases, result, "--from=")
    return None


def _replace(
    words: list[str],
    position: int,
    reference: str,
    stages: set[str],
    aliases: Aliases,
    result: ResolvedDockerfile,
    prefix: str = "",
) -> list[str] | None:
    if not _is_image(reference, stages):
        return None
    alias = alias_for(reference, aliases)
    _note(result.images, alias or reference)
    if alias is None:
        return None
    result.aliased.append((reference, alias))
    return [*words[:position], prefix + alias, *words[position + 1 :]]


def _is_image(reference: str, stages: set[str]) -> bool:
    # A stage is named or numbered; `$BASE` is only known to the build; scratch is no image.
    if "$" in reference or reference.isdigit() or reference.lower() == "scratch":
        return False
    return reference.lower() not in stages


def _note(images: list[str], image: str) -> None:
    if image not in images:
        images.append(image)


def _escape_char(text: str) -> str:
    for line in text.splitlines():
        match = ESCAPE_DIRECTIVE_RE.match(line.strip())
        if match:
            return match["char"]
        if not line.strip().startswith("#"):
            break  # directives come before anything else
    return "\\"


def _instructions(text: str, escape: str) -> list[list[str]]:
    """Physical lines grouped into instructions (a continued line joins the next)."""
    groups: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        current.append(line)
        stripped = line.strip()
        comment = stripped.startswith("#")
        if (comment or not stripped) and len(current) == 1:
            groups.append(current)  # a comment or blank line on its own
            current = []
        elif not comment and stripped and not stripped.endswith(escape):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _words(group: list[str], escape: str) -> list[str]:
    """The instruction's words; comment lines inside a continuation do not count."""
    parts = []
    for line in group:
        stripped = line.strip()
        if not stripped.startswith("#"):
            parts.append(stripped.removesuffix(escape))
    return " ".join(parts).split()
