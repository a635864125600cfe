from __future__ import annotations

import pytest

from protocol_pair import World


@pytest.fixture
def world():
    return World()
