"""One Executor per framework for the gateway-to-executor directions."""

try:
    from plait import DocumentArray, Executor, requests

    class PlaitUpper(Executor):
        @requests
        def up(self, docs: DocumentArray, **kwargs):
            for doc in docs:
                doc.text = (doc.text or '').upper()
except ImportError:  # in the Jina environment
    from docarray import DocList
    from docarray.documents import TextDoc
    from jina import Executor, requests

    class JinaUpper(Executor):
        @requests
        def up(self, docs: DocList[TextDoc], **kwargs) -> DocList[TextDoc]:
            for doc in docs:
                doc.text = (doc.text or '').upper()
            return docs
