"""Memory after large messages: a gateway and an executor that served 50 MB requests come
back near the memory they had before (no message kept alive, freed heap pages handed back to
the OS), and the trimmer that hands them back does nothing for small messages.

Prints `MEASURE memory.large ...` (run with -s)."""

from __future__ import annotations

import asyncio
import time

import grpc
from flow_helpers import wait_until


from plait import Document, DocumentArray, Executor, Flow, requests
from plait.clients.base import build_requests
from plait.proto.jina_data_pb2 import DataRequestProto
from plait.request import DataRequest
from plait.serve.memory import Trimmer
from plait.wire.constants import CALL_PATH, SINGLE_PATH

MB = 1024 * 1024
MAX_GROWTH = 1.2  # RSS after / RSS before


class BlobSize(Executor):
    @requests
    def size(self, docs: DocumentArray, **kwargs) -> None:
        for doc in docs:
            doc.tags['size'] = len(doc.blob or b'')


def rss_mib(pid: int, field: str = 'VmRSS') -> float:
    """Resident memory of `pid` now (VmRSS) or at its highest so far (VmHWM)."""
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise AssertionError(f'no {field} for {pid}')


def _settled_rss(pid: int, limit: float, wait: float = 10.0) -> float:
    """RSS of `pid` once it is under `limit`, or what it is after `wait` seconds."""
    wait_until(lambda: rss_mib(pid) <= limit, wait, 0.2)
    return rss_mib(pid)


def _large_requests(count: int, size: int) -> list[bytes]:
    docs = DocumentArray([Document(blob=bytes([i]) * size) for i in range(count)])
    return [r.SerializeToString() for r in build_requests('/', docs, 1, None, None)]


def test_gateway_and_executor_memory_comes_back_after_50_mb_requests() -> None:
    options = [('grpc.max_send_message_length', -1), ('grpc.max_receive_message_length', -1)]
    bodies = _large_requests(3, 50 * MB)
    with Flow(quiet=True).add(uses=BlobSize) as f:
        gateway = f.process_of('gateway').pid
        executor = f.process_of('executor0/rep-0').pid
        with grpc.insecure_channel(f'127.0.0.1:{f.port}', options=options) as channel:
            small = _large_requests(1, 10)[0]
            for _ in range(20):  # warm: connections and lazy imports in place
                channel.unary_unary(SINGLE_PATH)(small, timeout=30)
            before = {'gateway': rss_mib(gateway), 'executor': rss_mib(executor)}
            for body in bodies[:2]:  # unary calls
                reply = DataRequestProto.FromString(channel.unary_unary(SINGLE_PATH)(body, timeout=60))
                assert DataRequest(reply).docs[0].tags['size'] == 50 * MB
            replies = list(channel.stream_stream(CALL_PATH)(iter(bodies[2:]), timeout=60))  # a Call stream
            assert len(replies) == 1
            del replies, reply
            peak = rss_mib(gateway, 'VmHWM')
        after = {name: _settled_rss(pid, before[name] * MAX_GROWTH)
                 for name, pid in (('gateway', gateway), ('executor', executor))}
    print(f"MEASURE memory.large: requests=3x50MiB gateway_rss_before_mib={before['gateway']:.1f} "
          f"gateway_rss_peak_mib={peak:.1f} gateway_rss_after_mib={after['gateway']:.1f} "
          f"executor_rss_before_mib={before['executor']:.1f} executor_rss_after_mib={after['executor']:.1f}",
          flush=True)
    assert peak > before['gateway'] + 40, 'the large messages did not pass through the gateway'
    for name in ('gateway', 'executor'):
        assert after[name] <= before[name] * MAX_GROWTH, f'{name} RSS {before[name]:.0f} -> {after[name]:.0f} MiB'


def test_trimmer_trims_once_after_a_burst_of_large_messages_and_never_for_small_ones() -> None:
    async def scenario() -> tuple[int, int]:
        trimmer = Trimmer(large_bytes=1000, delay=0.05)
        for _ in range(50):
            trimmer.after(999)
        await asyncio.sleep(0.2)
        small = trimmer.trims
        for _ in range(5):  # a burst: one trim, once it has calmed
            trimmer.after(1000)
            await asyncio.sleep(0.01)
        deadline = time.monotonic() + 5
        while trimmer.trims == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        return small, trimmer.trims

    small, burst = asyncio.run(scenario())
    assert small == 0
    assert burst == 1
