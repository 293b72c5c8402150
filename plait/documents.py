"""Documents: a general-purpose `Document` and `DocumentArray` on docarray v2, plus the
(de)serialisation of document batches to and from the wire."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from docarray import BaseDoc, DocList
from docarray.typing import AnyEmbedding, AnyTensor


class Document(BaseDoc):
    """A document for any modality: text, uri, tags, embedding, tensor, raw bytes."""

    parent_id: Optional[str] = None
    text: Optional[str] = None
    uri: Optional[str] = None
    mime_type: Optional[str] = None
    tags: dict[str, Any] = {}
    embedding: Optional[AnyEmbedding] = None
    tensor: Optional[AnyTensor] = None
    blob: Optional[bytes] = None


class DocumentArray(DocList[Document]):
    """A list of `Document` with the conveniences of docarray v1 (`.texts`, `.embeddings`...)."""

    def __init__(self, docs: Optional[Iterable[Document]] = None):
        super().__init__(docs if docs is not None else [])

    @property
    def texts(self) -> list[Optional[str]]:
        return [d.text for d in self]

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self]

    @property
    def tags(self) -> list[dict]:
        return [d.tags for d in self]
