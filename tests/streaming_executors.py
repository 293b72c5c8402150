"""Executors of the streaming tests (importable by name in worker processes). The generator
writes what it did to files the tests name in `parameters`: `progress` (how many documents it
has yielded so far) and `closed` (written by its `finally`)."""

from __future__ import annotations

import asyncio
import time

from docarray import BaseDoc

from plait import Executor, requests


class Prompt(BaseDoc):
    text: str = ''


class Token(BaseDoc):
    text: str = ''
    blob: bytes = b''


def _note(path: str | None, text: str) -> None:
    if path:
        with open(path, 'w') as f:
            f.write(text)


class Generator(Executor):
    @requests(on='/gen')
    async def gen(self, doc: Prompt, parameters: dict, **kwargs) -> Token:
        """`n` tokens `<text>-<i>`, `delay` s apart, each with `size` bytes of blob; raises at `fail_at`."""
        blob = b'x' * int(parameters.get('size', 0))
        try:
            for i in range(int(parameters.get('n', 5))):
                if parameters.get('fail_at') == i:
                    raise ValueError(f'no token {i}')
                await asyncio.sleep(float(parameters.get('delay', 0)))
                yield Token(text=f'{doc.text}-{i}', blob=blob)
                _note(parameters.get('progress'), str(i + 1))
        finally:
            _note(parameters.get('closed'), 'closed')

    @requests(on='/sync_gen')
    def sync_gen(self, doc: Prompt, parameters: dict, **kwargs) -> Token:
        try:
            for i in range(int(parameters.get('n', 3))):
                time.sleep(float(parameters.get('delay', 0)))
                yield Token(text=f'sync-{doc.text}-{i}')
        finally:
            _note(parameters.get('closed'), 'closed')

    @requests(on='/wrong_type')
    async def wrong_type(self, doc: Prompt, **kwargs) -> Token:
        yield Prompt(text='not a token')



class GeneratorAndSingle(Generator):
    """Generator, and a single-document endpoint that is no generator."""

    @requests(on='/upper')
    def upper(self, doc: Prompt, **kwargs) -> Prompt:
        return Prompt(text=doc.text.upper())


class Upper(Executor):
    @requests
    async def upper(self, doc: Prompt, **kwargs) -> Prompt:
        return Prompt(text=doc.text.upper())


class Exclaim(Executor):
    @requests
    def exclaim(self, doc: Token, **kwargs) -> Token:
        return Token(text=doc.text + '!', blob=doc.blob)
