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


def ends_open(text: str) -> bool:
    """The last instruction is continued into the end of the file: a line appended to the
    text would join it."""
    groups = _instructions(text, _escape_char(text))
    if not groups:
        return False
    group, last = groups[-1], groups[-1][-1].strip()
    if len(group) == 1 and (not last or last.startswith("#")):
        return False  # a comment or blank line on its own
    return not last or last.startswith("#") or last.endswith(_escape_char(text))


def split_before_context_copy(text: str) -> tuple[str, str] | None:
    """`text` cut right before the first instruction of its last stage that copies the
    whole build context (`COPY . .`, `ADD ./ /srv`): (everything before it, the rest);
    None when the last stage has none, or the file cannot be cut there."""
    escape = _escape_char(text)
    groups = _instructions(text, escape)
    froms = [i for i, group in enumerate(groups) if _first_word(group, escape) == "FROM"]
    if not froms:
        return None
    cut = next(
        (
            i
            for i in range(froms[-1] + 1, len(groups))
            if _copies_the_context(_words(groups[i], escape))
        ),
        None,
    )
    if cut is None:
        return None
    head = "".join(line for group in groups[:cut] for line in group)
    if ends_open(head) or not head.endswith("\n"):
        return None
    return head, "".join(line for group in groups[cut:] for line in group)


def _copies_the_context(words: list[str]) -> bool:
    """A shell-form COPY or ADD of `.` from the context (no `--from=`)."""
    if not words or words[0].upper() not in ("COPY", "ADD"):
        return False
    flags = [w for w in words[1:] if w.startswith("--")]
    sources = [w for w in words[1:] if not w.startswith("--")][:-1]
    from_elsewhere = any(flag.lower().startswith("--from=") for flag in flags)
    return not from_elsewhere and any(source in (".", "./") for source in sources)


def label_instructions(text: str) -> list[str]:
    """Each LABEL instruction of `text`, its words joined by one space."""
    escape = _escape_char(text)
    groups = _instructions(text, escape)
    return [" ".join(_words(g, escape)) for g in groups if _first_word(g, escape) == "LABEL"]


def _first_word(group: list[str], escape: str) -> str:
    words = _words(group, escape)
    return words[0].upper() if words else ""


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


# --- what `$ARG` references name, for the check of which images a build may use ---------

# `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME:+alternative}`: the forms Docker knows.
ARG_RE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-+])(?P<word>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def expanded_references(text: str) -> list[str]:
    """The image each `FROM`/`COPY --from=` written with `$` names once the ARG defaults are
    filled in. Slipway passes no build args, so a default is the value the build sees; a
    FROM sees only the ARGs declared before the first FROM (Docker's rule). The classic
    builder does not expand `--from=` at all; expanding it anyway only checks more."""
    meta: dict[str, str] = {}
    stage: dict[str, str] | None = None  # None until the first FROM
    stages: set[str] = set()
    found: list[str] = []
    escape = _escape_char(text)
    for group in _instructions(text, escape):
        words = _words(group, escape)
        instruction = words[0].upper() if words else ""
        if instruction == "ARG":
            _declare(words[1:], meta if stage is None else stage, meta)
        elif instruction == "FROM":
            _note_expanded(_from_reference(words), meta, stages, found)
            _note_stage_name(words, stages)
            stage = {}
        elif instruction == "COPY":
            _note_expanded(_copy_source(words), meta if stage is None else stage, stages, found)
    return found


def copy_sources(instructions: list[str]) -> list[str]:
    """The `COPY --from=` sources of single instructions (an image's ONBUILD triggers,
    which run in the build of any image FROM it and may copy out of another image)."""
    sources = (_copy_source(text.split()) for text in instructions)
    return [s for s in sources if s and not s.isdigit()]


def expand(word: str, values: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        value = values.get(match["braced"] or match["plain"], "")
        if match["op"] == ":-":
            return value or match["word"]
        if match["op"] == ":+":
            return match["word"] if value else ""
        return value

    return ARG_RE.sub(one, word)


def _declare(words: list[str], values: dict[str, str], meta: dict[str, str]) -> None:
    """`ARG A=1 B`: a default is expanded with what came before; a bare name in a stage
    takes the global default (and is empty without one)."""
    for word in words:
        name, has_value, value = word.partition("=")
        if has_value:
            values[name] = expand(value, values).strip("\"'")
        else:
            values.setdefault(name, meta.get(name, ""))


def _from_reference(words: list[str]) -> str | None:
    return next((w for w in words[1:] if not w.startswith("--")), None)


def _copy_source(words: list[str]) -> str | None:
    if not words or words[0].upper() != "COPY":
        return None
    for word in words[1:]:
        if not word.startswith("--"):
            return None  # flags come first; the sources have begun
        if word.lower().startswith("--from="):
            return word.split("=", 1)[1]
    return None


def _note_expanded(
    reference: str | None, values: dict[str, str], stages: set[str], found: list[str]
) -> None:
    if reference is None or "$" not in reference:
        return  # written out: resolve() lists it, with its alias
    image = expand(reference, values)
    if image and _is_image(image, stages):
        _note(found, image)


def _note_stage_name(words: list[str], stages: set[str]) -> None:
    position = next((i for i, w in enumerate(words[1:], 1) if not w.startswith("--")), None)
    rest = words[position + 1 :] if position is not None else []
    if len(rest) == 2 and rest[0].upper() == "AS":
        stages.add(rest[1].lower())
