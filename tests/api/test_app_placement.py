"""An app's Swarm placement constraints (App.placement) through the API: checked, kept in
one normal form, refused with a 400 naming the problem (and nothing saved) when Swarm would
not take them or the installation does not run on Swarm."""

import pytest

from apps.models import App

pytestmark = pytest.mark.django_db


def placement_of(name: str) -> str:
    return App.objects.get(name=name).placement


def field_error(response) -> str:
    assert response.status_code == 400, response.content
    return str(response.json())


def test_on_swarm_constraints_are_saved_in_one_form_and_shown(api, make_app, settings):
    settings.PAAS_RUNTIME = "swarm"
    make_app("shop")
    given = " node.labels.disk == ssd,node.role!=manager "
    response = api.patch("/apps/shop", {"placement": given})
    assert response.status_code == 200, response.content
    assert placement_of("shop") == "node.labels.disk==ssd, node.role!=manager"
    assert api.get("/apps/shop").json()["placement"] == "node.labels.disk==ssd, node.role!=manager"
    assert api.patch("/apps/shop", {"placement": ""}).status_code == 200
    assert placement_of("shop") == ""


@pytest.mark.parametrize(
    "placement, says",
    [
        ("disk==ssd", "is not a placement constraint"),
        ("node.labels.disk=ssd", "is not a placement constraint"),
        ("node.labels.disk==ssd; rm -rf /", "is not a placement constraint"),
        ("node.labels.disk==`id`", "is not a placement constraint"),
        ("node.engine.labels.x==y", "is not a placement constraint"),
        (",".join(f"node.labels.k{i}==v" for i in range(6)), "At most 5"),
        ("node.labels.a==b\nnode.role==worker", "is not a placement constraint"),
    ],
)
def test_what_swarm_would_not_take_is_a_400_and_changes_nothing(
    api, make_app, settings, placement, says
):
    settings.PAAS_RUNTIME = "swarm"
    make_app("shop", placement="node.role==worker")
    assert says in field_error(api.patch("/apps/shop", {"placement": placement}))
    assert placement_of("shop") == "node.role==worker"


def test_without_swarm_placement_is_refused(api, make_app, settings):
    settings.PAAS_RUNTIME = "docker"
    make_app("shop")
    error = field_error(api.patch("/apps/shop", {"placement": "node.labels.disk==ssd"}))
    assert "Swarm backend only" in error
    assert placement_of("shop") == ""
