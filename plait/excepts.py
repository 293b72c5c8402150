"""The exception names a Jina user's program catches (`from jina.excepts import BadServer`
becomes `from plait.excepts import BadServer`), bound to plait's own errors (plait.errors) so
that `except` catches what it caught on Jina:

    BadServer                  ExecutorError: an Executor raised; the response carried the error
    BaseJinaException          PlaitError: every plait error
    RuntimeFailToStart         RuntimeFailedToStart: a process did not become ready
    PortAlreadyUsed            RuntimeFailedToStart: a port was taken (said in the message)
    InternalNetworkError       a deployment or server cannot be reached (a ConnectionError)
    BadServerFlow              InternalNetworkError: the server failed the call itself
    BadClientInput, BadConfigSource, NotSupportedError   BadRequest, BadConfig, UnknownOption

As on Jina, a server that cannot be reached or answers too late is also a `ConnectionError`.
"""

from __future__ import annotations

from plait.errors import (BadConfig, BadRequest, ExecutorError, InternalNetworkError, PlaitError,
                          RuntimeFailedToStart, UnknownOption)

BaseJinaException = PlaitError
BadServer = ExecutorError
BadServerFlow = InternalNetworkError
RuntimeFailToStart = RuntimeFailedToStart
PortAlreadyUsed = RuntimeFailedToStart
BadClientInput = BadRequest
BadConfigSource = BadConfig
NotSupportedError = UnknownOption

__all__ = ['BadClientInput', 'BadConfigSource', 'BadServer', 'BadServerFlow', 'BaseJinaException', 'ExecutorError',
           'InternalNetworkError', 'NotSupportedError', 'PortAlreadyUsed', 'RuntimeFailToStart']
