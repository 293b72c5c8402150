"""A Docker engine for the end-to-end container tests: Debian's docker.io and docker-compose,
installed with apt and the daemon started when missing and root (as `make test` does for
Chromium); and the base image an exported Dockerfile names, pulled or, with no registry
reachable, a stand-in built once from Debian packages (debootstrap + `docker import`) that
trusts this host's certificate bundle, so pip inside the build reaches the package index
through the same TLS-intercepting proxy the host uses. The stand-in stays in the engine's image
store (label `org.plait.stand-in`) and is reused by every later run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from typing import Optional

STAND_IN_LABEL = 'org.plait.stand-in'
DEBIAN_MIRROR = 'http://deb.debian.org/debian'
APT_PACKAGES = ['docker.io', 'docker-compose']


class Unavailable(Exception):
    """Docker cannot run here; the message says why (the tests skip with it)."""


def run(command: list[str], timeout: float, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run `command` with a bound, capturing text output; raise with its output when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f'{" ".join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}')
    return result


def _is_root() -> bool:
    return os.geteuid() == 0


def _apt_install(packages: list[str]) -> None:
    if not (_is_root() and shutil.which('apt-get')):
        raise Unavailable(f'{", ".join(packages)} missing, and not root with apt-get to install them')
    env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
    try:
        run(['apt-get', 'update', '-qq'], timeout=300, env=env)
        run(['apt-get', 'install', '-y', '-qq', *packages], timeout=600, env=env)
    except (AssertionError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f'apt-get could not install {", ".join(packages)}: {str(e)[-500:]}') from None


def compose_command() -> list[str]:
    """`docker-compose` (v1, as Debian packages it) or `docker compose` (v2)."""
    if shutil.which('docker-compose'):
        return ['docker-compose']
    if shutil.which('docker') and run(['docker', 'compose', 'version'], timeout=30, check=False).returncode == 0:
        return ['docker', 'compose']
    raise Unavailable('neither docker-compose nor docker compose is installed')


def _daemon_answers() -> bool:
    try:
        return run(['docker', 'info', '--format', '{{.ServerVersion}}'], timeout=20, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


class Engine:
    """The Docker engine the tests use; `close()` stops the daemon if this object started it."""

    def __init__(self, log_dir: str) -> None:
        self.daemon: Optional[subprocess.Popen] = None
        missing = [p for p, tool in zip(APT_PACKAGES, ('dockerd', 'docker-compose')) if not shutil.which(tool)]
        if missing or not shutil.which('docker'):
            _apt_install(missing or ['docker.io'])
        self.compose = compose_command()
        if not _daemon_answers():
            self._start_daemon(os.path.join(log_dir, 'dockerd.log'))

    def _start_daemon(self, log_path: str) -> None:
        if not _is_root():
            raise Unavailable('the Docker daemon is not running, and only root can start it')
        with open(log_path, 'w') as log:
            self.daemon = subprocess.Popen(['dockerd'], stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while not _daemon_answers():
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                self.close()
                with open(log_path) as f:
                    raise Unavailable(f'dockerd did not start: {f.read()[-800:]}')
            time.sleep(0.5)

    def close(self) -> None:
        if self.daemon is None or self.daemon.poll() is not None:
            return
        self.daemon.terminate()
        try:
            self.daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait(timeout=10)


def image_id(name: str) -> Optional[str]:
    result = run(['docker', 'image', 'inspect', '--format', '{{.Id}}', name], timeout=30, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def base_images(dockerfile: str) -> list[str]:
    """The images a Dockerfile's stages start FROM (not its own stages)."""
    stages: set[str] = set()
    bases = []
    for image, stage in re.findall(r'^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$', dockerfile, re.M | re.I):
        if image not in stages and image not in bases:
            bases.append(image)
        if stage:
            stages.add(stage)
    return bases


def host_ca_bundle() -> str:
    """The certificate bundle this host's pip trusts."""
    for variable in ('PIP_CERT', 'REQUESTS_CA_BUNDLE', 'SSL_CERT_FILE'):
        path = os.environ.get(variable)
        if path and os.path.isfile(path):
            return path
    return '/etc/ssl/certs/ca-certificates.crt'


def _debian_suite() -> str:
    with open('/etc/os-release') as f:
        found = re.search(r'^VERSION_CODENAME=(\w+)', f.read(), re.M)
    return found.group(1) if found else 'bookworm'


def ensure_base_image(name: str) -> str:
    """Make `name` available: already there, pulled, or (for python:X.Y-slim) a stand-in built
    from Debian packages; how it was made available."""
    if image_id(name):
        return 'present'
    try:
        if run(['docker', 'pull', '-q', name], timeout=180, check=False).returncode == 0:
            return 'pulled'
    except subprocess.TimeoutExpired:
        pass
    build_stand_in(name)
    return 'stand-in built'


def build_stand_in(name: str) -> None:
    """`python:X.Y-slim` from Debian's python3 (which must be X.Y), with python3-venv, the CA
    certificates of this host and a pip configured to trust them."""
    wanted = re.fullmatch(r'python:(\d+\.\d+)-slim', name)
    if not wanted:
        raise Unavailable(f'the base image {name} is not available and no stand-in can be built for it')
    if not shutil.which('debootstrap'):
        _apt_install(['debootstrap'])
    rootfs = tempfile.mkdtemp(prefix='plait-stand-in-', dir='/var/tmp')
    try:
        suite = _debian_suite()
        run(['debootstrap', '--variant=minbase', '--include=python3,python3-venv,ca-certificates', suite, rootfs,
             DEBIAN_MIRROR], timeout=900)
        if not os.path.exists(os.path.join(rootfs, f'usr/bin/python{wanted.group(1)}')):
            raise Unavailable(f'Debian {suite} does not ship Python {wanted.group(1)}, which {name} names')
        for cache in ('var/cache/apt/archives', 'var/lib/apt/lists'):
            shutil.rmtree(os.path.join(rootfs, cache), ignore_errors=True)
        shutil.copyfile(host_ca_bundle(), os.path.join(rootfs, 'etc/ssl/certs/ca-certificates.crt'))
        with open(os.path.join(rootfs, 'etc/pip.conf'), 'w') as f:
            f.write('[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n')
        changes = ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'ENV LANG=C.UTF-8',
                   f'LABEL {STAND_IN_LABEL}=debian-{suite}', 'CMD ["python3"]']
        tar = subprocess.Popen(['tar', '-C', rootfs, '-c', '.'], stdout=subprocess.PIPE)
        try:
            imported = subprocess.run(['docker', 'import', *[a for c in changes for a in ('--change', c)], '-', name],
                                      stdin=tar.stdout, capture_output=True, text=True, timeout=300)
        finally:
            tar.stdout.close()
            tar.wait(timeout=60)
        if imported.returncode != 0:
            raise AssertionError(f'docker import failed: {imported.stderr}')
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
