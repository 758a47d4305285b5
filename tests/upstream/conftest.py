"""The cloud central system for the upstream tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.upstream.cloud import Cloud


@pytest.fixture
async def cloud() -> AsyncIterator[Cloud]:
    async with Cloud() as running:
        yield running
