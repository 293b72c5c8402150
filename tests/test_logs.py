"""Library manners of plait's logging, each case in a fresh interpreter (logging is global)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {'PATH': '/usr/bin:/bin', 'PLAIT_LOG_NO_COLOR': '1', **env}
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env=full_env)


def test_a_program_that_configured_logging_gets_plaits_records_in_its_own_setup():
    out = run('''
        import logging, sys
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='USER %(name)s %(levelname)s %(message)s')
        from plait.logs import get_logger
        get_logger('executor0').info('ready at %s', '127.0.0.1:1')
        plait = logging.getLogger('plait')
        print('handlers', plait.handlers, 'propagate', plait.propagate, 'level', plait.level)
    ''')
    assert out.returncode == 0, out.stderr
    assert 'USER plait.executor0 INFO ready at 127.0.0.1:1' in out.stdout
    assert 'handlers [] propagate True level 0' in out.stdout   # nothing added, nothing changed
    assert out.stderr == ''


def test_plait_log_level_still_applies_to_a_configured_program():
    out = run('''
        import logging, sys
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='USER %(message)s')
        from plait.logs import get_logger
        get_logger('x').info('hidden')
        get_logger('x').warning('shown')
    ''', PLAIT_LOG_LEVEL='WARNING')
    assert out.stdout.splitlines() == ['USER shown'], out


def test_without_configuration_plait_writes_its_readable_lines():
    out = run('''
        from plait.logs import get_logger
        get_logger('executor0').info('ready at %s', '127.0.0.1:1')
    ''')
    assert out.returncode == 0 and out.stdout == ''
    assert out.stderr.startswith('INFO    executor0@') and 'ready at 127.0.0.1:1 [' in out.stderr


def test_configuring_logging_later_moves_plaits_lines_there_without_duplicates():
    out = run('''
        import logging, sys
        from plait.logs import get_logger
        log = get_logger('gateway')
        log.info('before')
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='USER %(message)s')
        log.info('after')
    ''')
    assert out.returncode == 0, out.stderr
    assert 'before' in out.stderr and 'after' not in out.stderr
    assert out.stdout.splitlines() == ['USER after']
