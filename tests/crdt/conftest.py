import pytest

from crdt_fixtures import make_campaign


@pytest.fixture
def campaign():
    return make_campaign()
