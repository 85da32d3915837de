"""apps.validators.parse_placement: what it takes comes back in one form Swarm reads; what
it refuses holds something Swarm would not (or a shell would)."""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from apps.validators import PLACEMENT_MAX, parse_placement

ATTRIBUTES = st.sampled_from(
    ["node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch"]
) | st.from_regex(r"node\.labels\.[A-Za-z0-9_.-]{1,20}", fullmatch=True)
VALUES = st.from_regex(r"[A-Za-z0-9_.:-]{1,20}", fullmatch=True)
CONSTRAINTS = st.tuples(ATTRIBUTES, st.sampled_from(["==", "!="]), VALUES)


@given(st.lists(CONSTRAINTS, min_size=0, max_size=PLACEMENT_MAX), st.sampled_from(["", " "]))
def test_valid_constraints_come_back_normalised(parts, space):
    text = ",".join(f"{space}{a}{space}{op}{space}{v}" for a, op, v in parts)
    assert parse_placement(text) == [f"{a}{op}{v}" for a, op, v in parts]


@given(CONSTRAINTS, st.sampled_from(list(";|&$`'\"()<>\n\\ {}*?!#")))
def test_a_constraint_with_a_character_swarm_does_not_take_is_refused(constraint, char):
    attribute, op, value = constraint
    with pytest.raises(ValidationError):
        parse_placement(f"{attribute}{op}{value}{char}x")


def test_more_than_the_maximum_is_refused():
    with pytest.raises(ValidationError, match="At most"):
        parse_placement(",".join(["node.role==worker"] * (PLACEMENT_MAX + 1)))
