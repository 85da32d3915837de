"""Which piece of PAAS_NETWORK_POOL a new network gets: apps the lowest free one, the build
network the highest (a build node's bridge, which the manager's engine does not see, then
meets an app's overlay only once the pool is full). Checked against a brute-force reading
of the same rule, on pools and blocked networks hypothesis makes up."""

from ipaddress import IPv4Network

from hypothesis import given
from hypothesis import strategies as st

from deployments.workers.networks import lowest_free

POOL = IPv4Network("10.200.0.0/20")
PREFIX = 24


def blocked_networks():
    """Networks in and around the pool, narrower and wider than a piece."""
    around = st.integers(int(POOL.network_address) - 4096, int(POOL.broadcast_address) + 4096)
    network = st.builds(
        lambda address, prefix: IPv4Network((address, prefix), strict=False),
        around,
        st.integers(16, 30),
    )
    return st.lists(network, max_size=20)


def reference(blocked, from_top):
    pieces = list(POOL.subnets(new_prefix=PREFIX))
    for piece in reversed(pieces) if from_top else pieces:
        if not any(piece.overlaps(network) for network in blocked):
            return piece
    return None


@given(blocked_networks())
def test_the_lowest_and_the_highest_free_piece_are_the_ones_that_overlap_nothing(blocked):
    assert lowest_free(POOL, PREFIX, blocked) == reference(blocked, from_top=False)
    assert lowest_free(POOL, PREFIX, blocked, from_top=True) == reference(blocked, from_top=True)


def test_the_highest_free_piece_of_an_empty_pool_is_its_last():
    assert lowest_free(POOL, PREFIX, [], from_top=True) == IPv4Network("10.200.15.0/24")
    wide = IPv4Network("10.0.0.0/8")  # millions of pieces: computed, not listed
    assert lowest_free(wide, 28, [], from_top=True) == IPv4Network("10.255.255.240/28")
