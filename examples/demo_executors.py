"""The example Executors `make demo` serves: a text cleaner and a word counter."""

from __future__ import annotations

import re

from plait import DocumentArray, Executor, requests


class Cleaner(Executor):
    """Collapses whitespace and lower-cases each document's text."""

    @requests
    def clean(self, docs: DocumentArray, **kwargs):
        for doc in docs:
            doc.text = re.sub(r'\s+', ' ', (doc.text or '')).strip().lower()


class WordCounter(Executor):
    """Tags each document with its word count; `/stats` returns totals as results."""

    @requests
    def count(self, docs: DocumentArray, **kwargs):
        for doc in docs:
            doc.tags['words'] = len((doc.text or '').split())

    @requests(on='/stats')
    def stats(self, docs: DocumentArray, **kwargs):
        return {'documents': len(docs), 'words': sum(len((d.text or '').split()) for d in docs)}
