"""Executors of the Flow topology tests (floating, external, reduce): importable by name in
worker processes."""

from __future__ import annotations

from typing import Any

from plait import DocumentArray, Executor, requests


class Suffix(Executor):
    """Appends `|<its deployment's name>` to each document's text: the path a document took."""

    @requests
    def suffix(self, docs: DocumentArray, **kwargs: Any) -> None:
        for doc in docs:
            doc.text = f'{doc.text}|{self.runtime_args.name}'
