"""The serving event loop: uvloop when installed, asyncio's own with PLAIT_UVLOOP=0."""

from __future__ import annotations

import asyncio

import pytest

from plait import Client, Document, DocumentArray, Executor, Flow, requests
from plait.serve import event_loop


class LoopName(Executor):
    @requests
    async def name(self, docs: DocumentArray, **kwargs) -> None:
        for doc in docs:
            doc.text = type(asyncio.get_running_loop()).__module__


def test_executors_serve_on_uvloop() -> None:
    with Flow(quiet=True).add(uses=LoopName) as f:
        docs = Client(port=f.port).post('/', Document(text='which loop?'))
    assert docs.texts == ['uvloop']


@pytest.mark.parametrize('value', ['0', 'false', 'off'])
def test_plait_uvloop_0_keeps_asyncio_loop(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv('PLAIT_UVLOOP', value)
    assert event_loop.loop_factory() is None

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert event_loop.run(loop_module()).startswith('asyncio')


def test_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('PLAIT_UVLOOP', raising=False)

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert event_loop.run(loop_module()) == "uvloop"
