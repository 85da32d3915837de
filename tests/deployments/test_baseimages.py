"""Offline base images: where the packages come from, and what the built images can do.

The image tests use the real Docker Engine (scripts/services starts it); a missing engine
fails them. None of them needs the database.
"""

import io
import tarfile
import time
import urllib.request

import docker
import pytest
from django.conf import settings
from django.core.management import call_command

from deployments.adapters.baseimages import (
    AptSource,
    BaseImageError,
    dockerfile,
    find_mirror,
    image_sources_list,
    parse_deb822_sources,
    parse_one_line_sources,
)

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""

ONE_LINE = """\
# deb http://old.example/debian bookworm main
deb [arch=amd64 signed-by=/k/docker.gpg] https://download.docker.com/linux/debian bookworm stable
deb-src http://ftp.example.org/debian bookworm main
deb [ trusted=yes ] http://ftp.example.org/debian/ bookworm main non-free-firmware
"""


def test_it_reads_deb822_stanzas_across_comments():
    assert parse_deb822_sources(DEB822) == [
        AptSource(
            "http://deb.debian.org/debian", ("bookworm", "bookworm-updates"), ("main", "contrib")
        ),
        AptSource("http://deb.debian.org/debian-security", ("bookworm-security",), ("main",)),
    ]


def test_it_skips_disabled_deb822_stanzas():
    text = (
        "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\n"
        "Components: main\nEnabled: no\n"
    )
    assert parse_deb822_sources(text) == []


def test_it_reads_one_line_sources_with_options():
    assert parse_one_line_sources(ONE_LINE) == [
        AptSource("https://download.docker.com/linux/debian", ("bookworm",), ("stable",)),
        AptSource("http://ftp.example.org/debian", ("bookworm",), ("main", "non-free-firmware")),
    ]


def test_it_picks_the_debian_mirror_not_a_third_party_repository():
    sources = parse_one_line_sources(ONE_LINE)
    assert find_mirror(sources) == "http://ftp.example.org/debian"


def test_it_picks_the_bookworm_mirror_from_deb822():
    assert find_mirror(parse_deb822_sources(DEB822)) == "http://deb.debian.org/debian"


def test_the_override_wins():
    sources = parse_deb822_sources(DEB822)
    assert find_mirror(sources, override="https://mirror.internal/debian/") == (
        "https://mirror.internal/debian"
    )


def test_it_fails_clearly_without_a_debian_mirror():
    ubuntu = parse_one_line_sources("deb http://archive.ubuntu.com/ubuntu jammy main\n")
    with pytest.raises(BaseImageError, match="PAAS_APT_MIRROR"):
        find_mirror(ubuntu)


def test_the_image_gets_the_hosts_debian_suites():
    assert image_sources_list(parse_deb822_sources(DEB822)) == (
        "deb http://deb.debian.org/debian bookworm main contrib\n"
        "deb http://deb.debian.org/debian bookworm-updates main contrib\n"
        "deb http://deb.debian.org/debian-security bookworm-security main\n"
    )


def test_the_image_gets_only_the_override_when_set():
    text = image_sources_list(parse_deb822_sources(DEB822), override="http://m.internal/debian")
    assert text == "deb http://m.internal/debian bookworm main\n"


def test_dockerfiles_trust_the_host_bundle_and_clean_apt_lists():
    for kind in ("python", "node", "go", "static"):
        text = dockerfile(kind, "http://deb.debian.org/debian")
        assert text.startswith("FROM slipway/debian:bookworm\n")
        assert "/usr/local/share/ca-certificates/host-bundle.crt" in text
        assert "update-ca-certificates" in text
        assert "--no-install-recommends" in text
        assert "rm -rf /var/lib/apt/lists/*" in text


# --- Against the real Docker Engine -------------------------------------------------------


@pytest.fixture(scope="module")
def engine():
    client = docker.from_env()
    client.ping()  # no engine: the test errors, it is not skipped
    call_command("paas_base_images", stdout=io.StringIO())
    return client


def run_in(client, kind, command):
    image = settings.PAAS_BASE_IMAGES[kind]
    out = client.containers.run(image, ["sh", "-c", command], remove=True, stderr=True)
    return out.decode()


def test_the_command_leaves_every_configured_image_present(engine):
    for tag in settings.PAAS_BASE_IMAGES.values():
        engine.images.get(tag)


def test_a_second_run_only_says_exists(engine):
    out = io.StringIO()
    call_command("paas_base_images", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines == [f"{kind}: {tag} exists" for kind, tag in settings.PAAS_BASE_IMAGES.items()]


def test_python_image_runs_python_and_pip(engine):
    out = run_in(engine, "python", "python -c 'import ssl,sys;print(sys.version)' && pip --version")
    assert out.startswith("3.")
    assert "pip " in out


def test_python_image_trusts_the_host_ca_bundle(engine):
    out = run_in(
        engine,
        "python",
        "python -c 'import ssl;print(ssl.create_default_context().cert_store_stats()[\"x509_ca\"])'"
        " && test -s /usr/local/share/ca-certificates/host-bundle.crt && echo bundled",
    )
    count, bundled = out.split()
    assert int(count) > 0
    assert bundled == "bundled"


def test_node_image_runs_node_and_npm(engine):
    node, npm = run_in(engine, "node", "node --version && npm --version").split()
    assert node.startswith("v")
    assert npm[0].isdigit()


def test_go_image_builds_a_program(engine):
    program = 'package main\nimport "fmt"\nfunc main() { fmt.Println("hi from go") }\n'
    command = (
        f"mkdir -p /tmp/hello && cd /tmp/hello && printf '%s' '{program}' > main.go && "
        "go mod init hello >/dev/null 2>&1 && go run ."
    )
    assert run_in(engine, "go", command).strip().endswith("hi from go")


def _tar_with(name, content):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _get_when_ready(url, deadline):
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_static_image_serves_files_over_http(engine):
    container = engine.containers.create(
        settings.PAAS_BASE_IMAGES["static"],
        environment={"PORT": "8080"},
        ports={"8080/tcp": ("127.0.0.1", None)},
    )
    try:
        container.put_archive("/srv", _tar_with("hello.txt", b"hello from busybox\n"))
        container.start()
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}/hello.txt"
        status, body = _get_when_ready(url, time.monotonic() + 15)
        assert (status, body) == (200, b"hello from busybox\n")
    finally:
        container.remove(force=True)
