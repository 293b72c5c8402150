"""Executors for the export tests, loaded by the Flow YAMLs beside this file (`py_modules:`)
and imported by name by exported containers (the exporter copies this file into the image)."""

from plait import DocumentArray, Executor, requests


class Tagger(Executor):
    """Appends `suffix` and its shard id to each document's text, so a test sees every hop."""

    def __init__(self, suffix: str = '', **kwargs):
        super().__init__(**kwargs)
        self.suffix = suffix

    @requests
    def tag(self, docs: DocumentArray, **kwargs) -> DocumentArray:
        for doc in docs:
            doc.text = f'{doc.text}|{self.suffix}{self.runtime_args.shard_id}'
        return docs
