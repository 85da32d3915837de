"""Offline base images: the images app builds start FROM, made from the OS package mirror.

No container registry is needed. debootstrap builds a Debian root filesystem from the
mirror the host's apt already uses, Docker imports it as ``slipway/debian:bookworm``, and
each kind (python, node, go, static) is a short Dockerfile on top of it. Every image
trusts the host's CA bundle, so pip, npm and go reach their registries through a
TLS-inspecting proxy exactly as the host does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

SUITE = "bookworm"
ROOTFS_REPOSITORY = "slipway/debian"
ROOTFS_TAG = f"{ROOTFS_REPOSITORY}:{SUITE}"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
APT_DIR = Path("/etc/apt")
LABEL = "org.slipway.base-image"
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"

Write = Callable[[str], None]


class BaseImageError(Exception):
    """A base image could not be built; the message says why and what to do."""

    code = "base_image_failed"


# --- Where the packages come from (pure functions) -------------------------------------


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]

    def lines(self) -> list[str]:
        return [f"deb {self.uri} {suite} {' '.join(self.components)}" for suite in self.suites]


def parse_one_line_sources(text: str) -> list[AptSource]:
    """`deb [options] URI SUITE COMPONENT...` lines (sources.list, *.list)."""
    sources = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]
        words = re.sub(r"\[[^\]]*\]", " ", line).split()
        if len(words) >= 3 and words[0] == "deb":
            sources.append(AptSource(words[1].rstrip("/"), (words[2],), tuple(words[3:])))
    return sources


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    stanza: dict[str, str] = {}
    key = ""
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue  # comments may sit inside a stanza without ending it
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, ""
        elif line[0] in " \t" and key:
            stanza[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            stanza[key] = value.strip()


def parse_deb822_sources(text: str) -> list[AptSource]:
    """Stanzas with Types/URIs/Suites/Components fields (*.sources)."""
    sources = []
    for stanza in _deb822_stanzas(text):
        if "deb" not in stanza.get("types", "").split():
            continue
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        suites = tuple(stanza.get("suites", "").split())
        components = tuple(stanza.get("components", "").split())
        for uri in stanza.get("uris", "").split():
            sources.append(AptSource(uri.rstrip("/"), suites, components))
    return sources


def debian_sources(sources: Iterable[AptSource], suite: str = SUITE) -> list[AptSource]:
    """The host's Debian entries for `suite`, its -updates and -security, over HTTP(S).

    "main" must be among the components: third-party repositories that also name their
    suite after the release (e.g. `bookworm stable`) are left out, since the image would
    not have their signing keys.
    """
    wanted = (suite, f"{suite}-updates", f"{suite}-security")
    kept = []
    for source in sources:
        suites = tuple(s for s in source.suites if s in wanted)
        web = source.uri.startswith(("http://", "https://"))
        if suites and web and "main" in source.components:
            kept.append(AptSource(source.uri, suites, source.components))
    return kept


def find_mirror(sources: Iterable[AptSource], override: str = "", suite: str = SUITE) -> str:
    """The mirror to debootstrap from: the override if given, else the host's `suite` mirror."""
    if override.strip():
        return override.strip().rstrip("/")
    for source in debian_sources(sources, suite):
        if suite in source.suites:
            return source.uri
    raise BaseImageError(
        f"no Debian {suite} mirror found in the host's apt sources; set PAAS_APT_MIRROR"
    )


def image_sources_list(sources: Iterable[AptSource], override: str = "", suite: str = SUITE) -> str:
    """The image's /etc/apt/sources.list: the override alone, or the host's Debian entries."""
    if override.strip():
        entries = [AptSource(override.strip().rstrip("/"), (suite,), ("main",))]
    else:
        entries = debian_sources(sources, suite)
    return "".join(f"{line}\n" for entry in entries for line in entry.lines())


def read_host_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    sources = []
    main_list = apt_dir / "sources.list"
    if main_list.is_file():
        sources += parse_one_line_sources(main_list.read_text())
    for path in sorted((apt_dir / "sources.list.d").glob("*")):
        if path.suffix == ".list":
            sources += parse_one_line_sources(path.read_text())
        elif path.suffix == ".sources":
            sources += parse_deb822_sources(path.read_text())
    return sources


# --- What goes in each kind ---------------------------------------------------------------

_INSTALL = "apt-get install -y -q --no-install-recommends"

# Go: bookworm's golang-go is 1.19, which refuses the `go 1.21.0` lines modern go.mod files
# carry. The same mirror's bookworm-backports has 1.22 (what the default golang:1.22
# names); a mirror without backports still gets 1.19.
_GO_INSTALL = f"""\
echo "deb {{mirror}} {SUITE}-backports main" > /etc/apt/sources.list.d/backports.list; \\
    apt-get update -q || {{{{ rm /etc/apt/sources.list.d/backports.list; apt-get update -q; }}}}; \\
    if apt-cache show golang-1.22-go >/dev/null 2>&1; then \\
        {_INSTALL} ca-certificates git golang-1.22-go; \\
        ln -sf /usr/lib/go-1.22/bin/go /usr/lib/go-1.22/bin/gofmt /usr/local/bin/; \\
    else \\
        {_INSTALL} ca-certificates git golang-go; \\
    fi; \\
    mkdir -p /go/bin"""

RECIPES: dict[str, dict[str, str]] = {
    "python": {
        "install": f"apt-get update -q; "
        f"{_INSTALL} ca-certificates python3 python3-pip python3-venv; "
        "ln -sf /usr/bin/python3 /usr/local/bin/python; "
        "command -v pip >/dev/null || ln -sf /usr/bin/pip3 /usr/local/bin/pip",
        "tail": 'CMD ["python"]',
    },
    "node": {
        "install": f"apt-get update -q; {_INSTALL} ca-certificates nodejs npm",
        "tail": 'CMD ["node"]',
    },
    "go": {
        "install": _GO_INSTALL,
        "tail": "ENV GOPATH=/go GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 "
        "PATH=/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "WORKDIR /go",
    },
    "static": {
        "install": f"apt-get update -q; {_INSTALL} ca-certificates busybox",
        # Serves /srv: busybox httpd -f -p $PORT -h /srv
        "tail": "WORKDIR /srv\nENV PORT=8080\n"
        'CMD ["sh", "-c", "exec busybox httpd -f -v -p \\"$PORT\\" -h /srv"]',
    },
}

_DOCKERFILE = """\
FROM {rootfs}
ARG DEBIAN_FRONTEND=noninteractive
# The host's CA bundle: trusted by apt before ca-certificates exists (an https mirror),
# then merged into the system store by update-ca-certificates.
COPY host-ca-bundle.crt /usr/local/share/ca-certificates/host-bundle.crt
COPY host-ca-bundle.crt {ca}
ENV LANG=C.UTF-8 \\
    SSL_CERT_FILE={ca} \\
    REQUESTS_CA_BUNDLE={ca} \\
    CURL_CA_BUNDLE={ca} \\
    GIT_SSL_CAINFO={ca} \\
    PIP_CERT={ca} \\
    NODE_EXTRA_CA_CERTS={ca} \\
    PIP_BREAK_SYSTEM_PACKAGES=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_ROOT_USER_ACTION=ignore
RUN set -eu; \\
    {install}; \\
    update-ca-certificates; \\
    apt-get clean; \\
    rm -rf /var/lib/apt/lists/*
LABEL {label}={kind}
{tail}
"""


def dockerfile(kind: str, mirror: str) -> str:
    recipe = RECIPES[kind]
    return _DOCKERFILE.format(
        rootfs=ROOTFS_TAG,
        ca=CA_FILE,
        install=recipe["install"].format(mirror=mirror),
        label=LABEL,
        kind=kind,
        tail=recipe["tail"],
    )


# --- Building -------------------------------------------------------------------------------


def _run(command: list[str], write: Write) -> None:
    """Run a command, streaming its output; raise BaseImageError when it fails."""
    try:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except FileNotFoundError:
        raise BaseImageError(
            f"{command[0]} is not installed (scripts/services installs it)"
        ) from None
    assert proc.stdout is not None
    for line in proc.stdout:
        write(line)
    if proc.wait() != 0:
        raise BaseImageError(f"{command[0]} failed with exit status {proc.returncode}")


def _mounts_below(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return sorted((p for p in points if p.startswith(prefix)), reverse=True)


def _remove_tree(root: Path) -> None:
    # debootstrap mounts /proc and /sys (and may bind /dev) in the target; a failed run can
    # leave them. Deleting through a bind mount would delete the host's files, so unmount
    # first and refuse to delete anything still mounted.
    for point in _mounts_below(root):
        subprocess.run(["umount", "-l", point], check=False)
    if _mounts_below(root):
        raise BaseImageError(f"{root} still has mounts below it; not removing it")
    shutil.rmtree(root, ignore_errors=True)


def _empty_dir(path: Path) -> None:
    for child in path.glob("*"):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _size_mb(image) -> int:
    return round(image.attrs.get("Size", 0) / 1e6)


class BaseImageBuilder:
    def __init__(self, client: docker.DockerClient, write: Write, mirror_override: str = ""):
        self.client = client
        self.write = write
        self.mirror_override = mirror_override
        self._sources: list[AptSource] | None = None

    def exists(self, tag: str) -> bool:
        try:
            self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            return False
        return True

    @property
    def host_sources(self) -> list[AptSource]:
        if self._sources is None:
            self._sources = read_host_sources()
        return self._sources

    @property
    def mirror(self) -> str:
        return find_mirror(self.host_sources, self.mirror_override)

    def ensure(self, images: dict[str, str], force: bool = False) -> dict[str, str]:
        """Build each missing image (all of them with force); returns kind -> outcome."""
        unknown = sorted(set(images) - set(RECIPES))
        if unknown:
            raise BaseImageError(f"no recipe for {', '.join(unknown)}; known: {', '.join(RECIPES)}")
        outcome = {}
        rootfs_fresh = False
        for kind, tag in images.items():
            if not force and self.exists(tag):
                self.write(f"{kind}: {tag} exists\n")
                outcome[kind] = "exists"
                continue
            if not rootfs_fresh and (force or not self.exists(ROOTFS_TAG)):
                self.build_rootfs()
            rootfs_fresh = True
            self.build_kind(kind, tag, nocache=force)
            outcome[kind] = "built"
        return outcome

    def build_rootfs(self) -> None:
        mirror = self.mirror
        started = time.monotonic()
        self.write(f"rootfs: debootstrap {SUITE} from {mirror}\n")
        workdir = Path(tempfile.mkdtemp(prefix="slipway-rootfs-"))
        try:
            root = workdir / "rootfs"
            _run(["debootstrap", "--variant=minbase", SUITE, str(root), mirror], self.write)
            (root / "etc/apt/sources.list").write_text(
                image_sources_list(self.host_sources, self.mirror_override)
            )
            if _mounts_below(root):
                raise BaseImageError(f"debootstrap left mounts below {root}")
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists", "dev"):
                _empty_dir(root / leftover)
            (root / "var/cache/apt/archives/partial").mkdir()
            (root / "var/lib/apt/lists/partial").mkdir()
            tarball = workdir / "rootfs.tar"
            _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(tarball), "."], self.write)
            self.client.api.import_image_from_file(
                str(tarball),
                repository=ROOTFS_REPOSITORY,
                tag=SUITE,
                changes=[
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "ENV LANG=C.UTF-8",
                    f"LABEL {LABEL}=rootfs",
                    'CMD ["bash"]',
                ],
            )
        finally:
            _remove_tree(workdir)
        image = self.client.images.get(ROOTFS_TAG)
        took = time.monotonic() - started
        self.write(f"rootfs: imported {ROOTFS_TAG} ({_size_mb(image)} MB) in {took:.0f} s\n")

    def build_kind(self, kind: str, tag: str, nocache: bool = False) -> None:
        files = {"Dockerfile": dockerfile(kind, self.mirror)}
        self.build_context(kind, tag, files, nocache)

    def build_context(self, label: str, tag: str, files: dict[str, str], nocache: bool) -> None:
        """Build tag FROM the root filesystem image out of `files` plus the host's CA bundle
        (so package managers trust a TLS-inspecting proxy), streaming the builder's output."""
        started = time.monotonic()
        self.write(f"{label}: building {tag} FROM {ROOTFS_TAG}\n")
        with tempfile.TemporaryDirectory(prefix="slipway-image-") as context:
            for name, text in files.items():
                (Path(context) / name).write_text(text)
            bundle = Path(context) / "host-ca-bundle.crt"
            if HOST_CA_BUNDLE.is_file():
                shutil.copyfile(HOST_CA_BUNDLE, bundle)
            else:
                bundle.write_text("")
            stream = self.client.api.build(
                path=context, tag=tag, rm=True, forcerm=True, nocache=nocache, decode=True
            )
            for chunk in stream:
                if "stream" in chunk:
                    self.write(chunk["stream"])
                if "error" in chunk:
                    raise BaseImageError(f"{label}: {chunk['error'].strip()}")
        image = self.client.images.get(tag)
        took = time.monotonic() - started
        self.write(f"{label}: built {tag} ({_size_mb(image)} MB) in {took:.0f} s\n")


# --- Add-on images (PostgreSQL, MariaDB, Redis) from Debian's packages ----------------------
#
# For hosts without a registry. Each keeps the official image's interface — the same
# environment variables (POSTGRES_*, MARIADB_*/MYSQL_*), data directories and commands — so
# PAAS_ADDON_IMAGES may name either. Data directories are tied to a server's major version:
# these are Debian bookworm's (PostgreSQL 15, MariaDB 10.11, Redis 7.0), which is why they
# get their own tags and are never built under an official name like postgres:16.

_POSTGRES_ENTRYPOINT = r"""#!/bin/sh
# Initialise the data directory on first start (POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB as in the official image), then run the server in the foreground.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
case "${1:-}" in -*) set -- postgres "$@" ;; esac
if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "POSTGRES_PASSWORD must be set to initialise the database" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        quoted="$(printf '%s' "$db" | sed 's/"/""/g')"
        echo "CREATE DATABASE \"$quoted\" OWNER \"$(printf '%s' "$user" | sed 's/"/""/g')\"" \
            | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "initialised $PGDATA for $user"
fi
exec "$@"
"""

_MARIADB_ENTRYPOINT = r"""#!/bin/sh
# Initialise the data directory on first start (MARIADB_* or MYSQL_* variables as in the
# official image: ROOT_PASSWORD, USER, PASSWORD, DATABASE), then run the server.
set -eu
pick() { eval "printf '%s' \"\${MARIADB_$1:-\${MYSQL_$1:-}}\""; }
sql_string() { printf "'%s'" "$(printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g")"; }
sql_name() { printf '`%s`' "$(printf '%s' "$1" | sed 's/`/``/g')"; }
line() { printf '%s\n' "$1"; }  # not echo: dash's echo would eat the backslashes
case "${1:-}" in -*) set -- mariadbd "$@" ;; esac
if [ "${1:-}" = mariadbd ] && [ "$(id -u)" = 0 ]; then
    mkdir -p /var/lib/mysql /run/mysqld
    chown mysql:mysql /var/lib/mysql /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
        root_password="$(pick ROOT_PASSWORD)"
        [ -n "$root_password" ] \
            || root_password="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
            --auth-root-authentication-method=normal >/dev/null
        mariadbd --user=mysql --datadir=/var/lib/mysql --skip-networking \
            --socket=/run/mysqld/init.sock &
        pid=$!
        tries=120
        until mariadb-admin --socket=/run/mysqld/init.sock -uroot ping >/dev/null 2>&1; do
            tries=$((tries - 1))
            [ "$tries" -gt 0 ] || { echo "no server for initialisation" >&2; exit 1; }
            sleep 0.5
        done
        {
            line "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$root_password");"
            # mariadb-install-db also made password-less root accounts for these hosts.
            here="$(sql_string "$(hostname)")"
            line "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@$here;"
            db="$(pick DATABASE)"
            user="$(pick USER)"
            [ -z "$db" ] || line "CREATE DATABASE IF NOT EXISTS $(sql_name "$db");"
            if [ -n "$user" ]; then
                account="$(sql_string "$user")@'%'"
                line "CREATE USER $account IDENTIFIED BY $(sql_string "$(pick PASSWORD)");"
                [ -z "$db" ] || line "GRANT ALL ON $(sql_name "$db").* TO $account;"
            fi
        } | mariadb --socket=/run/mysqld/init.sock -uroot
        kill "$pid"
        wait "$pid" || true
        echo "initialised /var/lib/mysql"
    fi
    set -- "$@" --user=mysql
fi
exec "$@"
"""

_REDIS_ENTRYPOINT = r"""#!/bin/sh
# Like the official image: options alone run redis-server, which drops to the redis user.
set -eu
case "${1:-}" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
    mkdir -p /data
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
"""

ADDON_RECIPES: dict[str, dict[str, str]] = {
    "postgres": {
        # postgresql-common would create a "main" cluster at install time: not in an image.
        "install": "mkdir -p /etc/postgresql-common; "
        "echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf; "
        f"apt-get update -q; {_INSTALL} ca-certificates postgresql postgresql-client; "
        'ln -s "$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)" /usr/local/lib/postgresql-bin; '
        "mkdir -p /var/run/postgresql /var/lib/postgresql/data; "
        "chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql; "
        "chmod 3777 /var/run/postgresql",
        "entrypoint": _POSTGRES_ENTRYPOINT,
        "tail": "ENV PGDATA=/var/lib/postgresql/data "
        "PATH=/usr/local/lib/postgresql-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "VOLUME /var/lib/postgresql/data\n"
        "EXPOSE 5432\n"
        # SIGINT is PostgreSQL's fast shutdown: SIGTERM would wait for every client to leave.
        "STOPSIGNAL SIGINT\n"
        'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]\n'
        'CMD ["postgres"]',
    },
    "mariadb": {
        # The package initialises /var/lib/mysql at install time: emptied, so the entrypoint
        # sets up users and passwords on a volume's first start.
        "install": f"apt-get update -q; {_INSTALL} ca-certificates mariadb-server mariadb-client; "
        "rm -rf /var/lib/mysql; mkdir -p /var/lib/mysql /run/mysqld; "
        "chown mysql:mysql /var/lib/mysql /run/mysqld; "
        "printf '[mysqld]\\nbind-address = 0.0.0.0\\nskip-name-resolve\\n' "
        "> /etc/mysql/mariadb.conf.d/99-slipway.cnf",
        "entrypoint": _MARIADB_ENTRYPOINT,
        "tail": "VOLUME /var/lib/mysql\n"
        "EXPOSE 3306\n"
        'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]\n'
        'CMD ["mariadbd"]',
    },
    "redis": {
        "install": f"apt-get update -q; {_INSTALL} ca-certificates redis-server redis-tools; "
        "mkdir -p /data; chown redis:redis /data",
        "entrypoint": _REDIS_ENTRYPOINT,
        "tail": "VOLUME /data\nWORKDIR /data\nEXPOSE 6379\n"
        'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]\n'
        'CMD ["redis-server"]',
    },
}

_ADDON_DOCKERFILE = """\
FROM {rootfs}
ARG DEBIAN_FRONTEND=noninteractive
COPY host-ca-bundle.crt /usr/local/share/ca-certificates/host-bundle.crt
COPY host-ca-bundle.crt {ca}
ENV LANG=C.UTF-8
RUN set -eu; \\
    {install}; \\
    update-ca-certificates; \\
    apt-get clean; \\
    rm -rf /var/lib/apt/lists/*
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
LABEL {label}={kind}
{tail}
"""

OFFLINE_ADDON_PREFIX = "slipway/"


def addon_dockerfile(kind: str) -> str:
    recipe = ADDON_RECIPES[kind]
    return _ADDON_DOCKERFILE.format(
        rootfs=ROOTFS_TAG,
        ca=CA_FILE,
        install=recipe["install"],
        label=LABEL,
        kind=f"addon-{kind}",
        tail=recipe["tail"],
    )


def buildable_addon(tag: str) -> bool:
    """Only Slipway's own names are built here; an official name is pulled from a registry."""
    return tag.startswith(OFFLINE_ADDON_PREFIX)


class AddOnImageBuilder(BaseImageBuilder):
    """Builds the add-on images on the same debootstrapped root filesystem."""

    def ensure_addons(self, images: dict[str, str], force: bool = False) -> dict[str, str]:
        unknown = sorted(set(images) - set(ADDON_RECIPES))
        if unknown:
            raise BaseImageError(
                f"no add-on recipe for {', '.join(unknown)}; known: {', '.join(ADDON_RECIPES)}"
            )
        outcome = {}
        for kind, tag in images.items():
            outcome[kind] = self._ensure_addon(kind, tag, force)
        return outcome

    def _ensure_addon(self, kind: str, tag: str, force: bool) -> str:
        if not force and self.exists(tag):
            self.write(f"addon {kind}: {tag} exists\n")
            return "exists"
        if not buildable_addon(tag):
            # Never build Debian's server under an official name: a later pull would bring
            # another major version that cannot read the data directory.
            self.write(
                f"addon {kind}: {tag} is missing; pull it from a registry, or set "
                f"PAAS_ADDON_IMAGE_{kind.upper()}={OFFLINE_ADDON_PREFIX}{kind}:{SUITE} "
                "to build it from Debian's packages\n"
            )
            return "missing"
        if not self.exists(ROOTFS_TAG):
            self.build_rootfs()
        self.build_addon(kind, tag, nocache=force)
        return "built"

    def build_addon(self, kind: str, tag: str, nocache: bool = False) -> None:
        files = {
            "Dockerfile": addon_dockerfile(kind),
            "docker-entrypoint.sh": ADDON_RECIPES[kind]["entrypoint"],
        }
        self.build_context(f"addon {kind}", tag, files, nocache)
