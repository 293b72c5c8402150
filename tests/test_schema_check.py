"""Chained executors whose documents cannot meet are refused when the Flow starts, naming both
(as Jina's gateway refuses them); executors without document types take anything."""

from __future__ import annotations

from typing import Any

import pytest
from docarray import BaseDoc, DocList

from plait import Client, Document, Executor, Flow, requests
from plait.errors import BadConfig


class Question(BaseDoc):
    text: str = ''


class Answer(BaseDoc):
    text: str = ''
    score: float = 0.0


class Asker(Executor):
    @requests(on='/ask')
    def ask(self, docs: DocList[Question], **kwargs: Any) -> DocList[Question]:
        return docs


class Answerer(Executor):
    @requests(on='/ask')
    def answer(self, docs: DocList[Question], **kwargs: Any) -> DocList[Answer]:
        return DocList[Answer]([Answer(text=d.text, score=1.0) for d in docs])


class Ranker(Executor):
    @requests
    def rank(self, docs: DocList[Answer], **kwargs: Any) -> DocList[Answer]:
        return docs


class Untyped(Executor):
    @requests
    def anything(self, docs, **kwargs: Any) -> None:
        pass


def test_a_chain_whose_documents_meet_starts_and_serves() -> None:
    f = Flow(quiet=True).add(uses=Asker, name='asker').add(uses=Answerer, name='answerer').add(uses=Ranker)
    with f, Client(port=f.port) as client:
        docs = client.post('/ask', DocList[Question]([Question(text='q')]), return_type=DocList[Answer])
    assert docs[0].score == 1.0


def test_a_chain_whose_documents_cannot_meet_is_refused_naming_both() -> None:
    f = Flow(quiet=True).add(uses=Asker, name='asker').add(uses=Ranker, name='ranker')
    with pytest.raises(BadConfig, match=r'the output of asker at /ask \(Question.*does not fit the input of ranker '
                                        r'at /default \(Answer'):
        with f:
            pass
    assert not f.running


def test_executors_without_document_types_take_anything() -> None:
    f = Flow(quiet=True).add(uses=Asker, name='asker').add(uses=Untyped, name='untyped').add(uses=Ranker)
    with f, Client(port=f.port) as client:
        assert len(client.post('/ask', Document(text='q'))) == 1
