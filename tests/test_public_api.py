"""The public API is exactly what plait/__init__.py lists; probes import nothing heavy."""

import subprocess
import sys

import plait

EXPECTED = ['AsyncClient', 'Client', 'Deployment', 'Document', 'DocumentArray', 'Executor', 'Flow',
            '__version__', 'dynamic_batching', 'monitor', 'requests']


def test_all_is_pinned_and_sorted():
    assert plait.__all__ == sorted(EXPECTED)


def test_every_name_resolves():
    for name in plait.__all__:
        assert getattr(plait, name) is not None


def test_importing_plait_is_light():
    code = 'import sys, plait; print(",".join(m for m in ("docarray", "fastapi", "grpc") if m in sys.modules))'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ''


def test_the_testing_helpers_are_pinned():
    import plait.testing

    assert plait.testing.__all__ == ['ExecutorHarness', 'FakeReplica', 'GatewayHarness']
