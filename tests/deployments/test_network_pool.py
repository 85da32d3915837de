"""Each app's network on a subnet of PAAS_NETWORK_POOL, against the real engine.

The engine's default address pools hold about 30 networks; these tests make more than that
through ensure_app_network and reach a container on the last one from the host. Every
network and container made here is removed again, pass or fail.
"""

import ipaddress
import threading
import time
import urllib.request
import uuid

import docker
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from apps.models import App
from deployments.adapters.runtime import ContainerSpec, NetworkPoolExhausted
from deployments.adapters.runtime.docker import DockerRuntime
from deployments.workers.networks import ensure_app_network

BASE_IMAGE = "slipway/python:bookworm"
SERVE = ["python3", "-m", "http.server", "--bind", "0.0.0.0", "8000"]
# A pool of its own for the small tests, so they know which subnet comes first.
TEST_POOL = "10.214.8.0/24"


@pytest.fixture(scope="module")
def engine():
    return docker.from_env()


@pytest.fixture
def runtime(engine):
    return DockerRuntime(engine)


@pytest.fixture
def cleanup(engine, settings):
    """Names of networks (and their containers) to remove after the test, pass or fail."""
    names: list[str] = []
    yield names
    instance = f"slipway.instance={settings.PAAS_INSTANCE}"
    for name in names:
        for network in engine.networks.list(names=[name], filters={"label": instance}):
            if network.name != name:
                continue
            network.reload()
            for container_id in network.attrs.get("Containers") or {}:
                try:
                    engine.containers.get(container_id).remove(force=True)
                except docker.errors.NotFound:
                    pass
            try:
                network.remove()
            except docker.errors.NotFound:
                pass


@pytest.fixture
def new_app(make_app, cleanup):
    """An app with a unique name whose network the cleanup removes."""
    run = uuid.uuid4().hex[:6]

    def make(suffix="web"):
        app = make_app(f"pool-{run}-{suffix}")
        cleanup.append(app.network)
        return app

    return make


@pytest.fixture
def test_pool(settings, runtime):
    settings.PAAS_NETWORK_POOL, settings.PAAS_NETWORK_PREFIX = TEST_POOL, 26
    pool = ipaddress.ip_network(TEST_POOL)
    taken = [s for s in runtime.used_subnets() if ipaddress.ip_network(s).overlaps(pool)]
    assert not taken, f"the engine already has networks on the test pool {TEST_POOL}: {taken}"
    return pool


def foreign_network(engine, cleanup, settings, name, subnet):
    """A network Slipway did not allocate (made as another installation or a person would)."""
    name = f"{settings.PAAS_INSTANCE}-foreign-{uuid.uuid4().hex[:6]}-{name}"
    cleanup.append(name)
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
    labels = {"slipway.instance": settings.PAAS_INSTANCE}
    return engine.networks.create(name, driver="bridge", labels=labels, ipam=ipam)


def engine_subnet(engine, network_id):
    return engine.networks.get(network_id).attrs["IPAM"]["Config"][0]["Subnet"]


def db_subnet(app):
    return App.objects.values_list("subnet", flat=True).get(pk=app.pk)


@pytest.mark.django_db
def test_subnets_are_unique_lowest_first_and_what_the_network_has(
    runtime, engine, new_app, test_pool
):
    apps = [new_app(str(i)) for i in range(3)]
    ids = [ensure_app_network(app, runtime) for app in apps]
    expected = ["10.214.8.0/26", "10.214.8.64/26", "10.214.8.128/26"]
    assert [db_subnet(app) for app in apps] == expected
    assert [engine_subnet(engine, network_id) for network_id in ids] == expected
    gateway = engine.networks.get(ids[0]).attrs["IPAM"]["Config"][0]["Gateway"]
    assert gateway == "10.214.8.1"
    assert engine.networks.get(ids[0]).attrs["Internal"] is False  # the host's router reaches it
    # Again: the same network, the same subnet, nothing new allocated.
    assert ensure_app_network(App.objects.get(pk=apps[1].pk), runtime) == ids[1]
    assert db_subnet(apps[1]) == expected[1]


@pytest.mark.django_db
def test_a_subnet_an_engine_network_overlaps_is_skipped(
    runtime, engine, new_app, cleanup, settings, test_pool
):
    foreign_network(engine, cleanup, settings, "exact", "10.214.8.0/26")
    foreign_network(engine, cleanup, settings, "inside", "10.214.8.96/28")  # in the 2nd /26
    app = new_app()
    network_id = ensure_app_network(app, runtime)
    assert db_subnet(app) == "10.214.8.128/26" == engine_subnet(engine, network_id)


@pytest.mark.django_db
def test_another_app_taking_the_candidate_first_moves_on_to_the_next(
    runtime, engine, new_app, test_pool
):
    # The other app's update lands between this allocation's read and its own update.
    rival, app = new_app("rival"), new_app("late")
    real_used = runtime.used_subnets

    def used_after_the_rival_won():
        App.objects.filter(pk=rival.pk).update(subnet="10.214.8.0/26")
        return real_used()

    runtime.used_subnets = used_after_the_rival_won
    network_id = ensure_app_network(app, runtime)
    assert db_subnet(app) == "10.214.8.64/26" == engine_subnet(engine, network_id)
    assert db_subnet(rival) == "10.214.8.0/26"


@pytest.mark.django_db
def test_a_subnet_another_worker_gave_the_same_app_meanwhile_is_kept(
    runtime, engine, new_app, test_pool
):
    app = new_app()
    real_used = runtime.used_subnets

    def used_after_the_other_worker_allocated():
        App.objects.filter(pk=app.pk).update(subnet="10.214.8.192/26")
        return real_used()

    runtime.used_subnets = used_after_the_other_worker_allocated
    network_id = ensure_app_network(app, runtime)
    assert app.subnet == db_subnet(app) == "10.214.8.192/26" == engine_subnet(engine, network_id)


@pytest.mark.django_db(transaction=True)
def test_concurrent_allocations_get_different_subnets(runtime, engine, new_app, test_pool):
    apps = [new_app(str(i)) for i in range(4)]
    twin = App.objects.get(pk=apps[0].pk)  # a second worker on the first app
    jobs = [*apps, twin]
    start = threading.Barrier(len(jobs))
    ids, errors = {}, []

    def allocate(index, app):
        try:
            start.wait()
            ids[index] = ensure_app_network(app, DockerRuntime(docker.from_env()))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=allocate, args=item) for item in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    subnets = [db_subnet(app) for app in apps]
    assert set(subnets) == {f"10.214.8.{n}/26" for n in (0, 64, 128, 192)}
    assert ids[0] == ids[len(apps)]  # both workers of the first app: one network
    assert [engine_subnet(engine, ids[i]) for i in range(len(apps))] == subnets


@pytest.mark.django_db
def test_a_full_pool_fails_clearly_and_changes_nothing(runtime, engine, new_app, settings):
    settings.PAAS_NETWORK_POOL, settings.PAAS_NETWORK_PREFIX = "10.214.9.0/29", 30
    first, second, third = new_app("1"), new_app("2"), new_app("3")
    kept = [ensure_app_network(app, runtime) for app in (first, second)]
    with pytest.raises(NetworkPoolExhausted) as caught:
        ensure_app_network(third, runtime)
    assert caught.value.code == "network_pool_exhausted" and not caught.value.user_fault
    assert "PAAS_NETWORK_POOL 10.214.9.0/29" in caught.value.message
    assert db_subnet(third) == "" and runtime.network_subnet(third.network) is None
    assert [db_subnet(first), db_subnet(second)] == ["10.214.9.0/30", "10.214.9.4/30"]
    assert [ensure_app_network(app, runtime) for app in (first, second)] == kept


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("pool", "prefix", "says"),
    [
        ("not-a-network", 24, "PAAS_NETWORK_POOL='not-a-network' is not an IPv4 network"),
        ("fd00:5::/48", 64, "is not an IPv4 network"),
        ("10.214.0.1/16", 24, "has host bits set"),
        ("10.214.0.0/16", 16, "must be larger than PAAS_NETWORK_POOL's /16"),
        ("10.214.0.0/16", 8, "must be larger than"),
        ("10.214.0.0/16", 31, "at most 30"),
        ("10.214.0.0/16", "big", "PAAS_NETWORK_PREFIX='big' is not a prefix length"),
    ],
)
def test_a_bad_pool_setting_fails_clearly(runtime, new_app, settings, pool, prefix, says):
    settings.PAAS_NETWORK_POOL, settings.PAAS_NETWORK_PREFIX = pool, prefix
    app = new_app()
    with pytest.raises(ImproperlyConfigured, match="PAAS_NETWORK_") as caught:
        ensure_app_network(app, runtime)
    assert says in str(caught.value)
    assert db_subnet(app) == "" and runtime.network_subnet(app.network) is None


@pytest.mark.django_db
def test_a_network_made_before_subnets_keeps_its_own(runtime, engine, new_app, settings, test_pool):
    app = new_app()
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.214.77.0/24")])
    old = engine.networks.create(app.network, labels=app.resource_labels, ipam=ipam)
    assert ensure_app_network(app, runtime) == old.id
    assert engine_subnet(engine, old.id) == "10.214.77.0/24"
    assert db_subnet(app) == ""  # nothing taken from the pool for it


@pytest.mark.django_db
def test_a_held_subnet_another_network_took_meanwhile_moves_to_a_free_one(
    runtime, engine, new_app, cleanup, settings, test_pool
):
    # The app's network was removed; another installation on this host then took its subnet.
    app = new_app()
    App.objects.filter(pk=app.pk).update(subnet="10.214.8.0/26")
    app.refresh_from_db()
    foreign_network(engine, cleanup, settings, "squatter", "10.214.8.0/26")
    network_id = ensure_app_network(app, runtime)
    assert db_subnet(app) == "10.214.8.64/26" == engine_subnet(engine, network_id)


@pytest.mark.django_db
def test_forty_app_networks_and_the_41st_app_answers_the_host(runtime, engine, new_app, settings):
    settings.PAAS_NETWORK_POOL, settings.PAAS_NETWORK_PREFIX = "10.213.0.0/16", 24  # defaults
    began = time.monotonic()
    apps = [new_app(str(i)) for i in range(41)]
    for app in apps:
        ensure_app_network(app, runtime)
    seconds = time.monotonic() - began
    subnets = {db_subnet(app) for app in apps}
    assert len(subnets) == 41 and all(s.startswith("10.213.") for s in subnets)

    last = App.objects.get(pk=apps[-1].pk)
    spec = ContainerSpec(
        name=f"{last.network}-web",
        image=BASE_IMAGE,
        env={"PORT": "8000"},
        port=8000,
        labels=last.resource_labels,
        network=last.network,
        memory="256m",
        cpus=0.5,
        command=SERVE,
    )
    container_id = runtime.start(spec)
    endpoint = runtime.endpoint(container_id, last.network)
    assert ipaddress.ip_address(endpoint.host) in ipaddress.ip_network(last.subnet)
    runtime.wait_healthy(container_id, endpoint, timeout=30, log=lambda _: None)
    with urllib.request.urlopen(f"http://{endpoint}/", timeout=5) as response:
        assert response.status == 200
    print(f"41 app networks in {seconds:.1f}s")
    assert seconds < 60
