"""A wheel of the plait that is running, so an exported image installs exactly the plait that
exported it (also a development checkout that no package index has). Repacked from the
installed package and its metadata, with no build tool and no network; byte-for-byte the same
for the same code, so Docker's layer cache keeps the install step between exports."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import zipfile

from plait.errors import BadConfig

_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same code gives the same file
_SKIP_DIRS = {'__pycache__'}
_SKIP_SUFFIXES = ('.pyc', '.pyo')


def _metadata() -> tuple[str, str, str]:
    """(version, METADATA text, entry_points.txt text) of the installed plait distribution."""
    try:
        dist = importlib.metadata.distribution('plait')
    except importlib.metadata.PackageNotFoundError:
        raise BadConfig('plait is not installed as a package, so its wheel cannot be put in the image: '
                        "install it (pip install -e .) or name where the image gets plait with "
                        "--plait-package 'plait==VERSION'") from None
    text = dist.read_text('METADATA') or dist.read_text('PKG-INFO')
    if not text:
        raise BadConfig(f'the metadata of the installed plait ({dist}) is missing; reinstall plait')
    return dist.metadata['Version'], text, dist.read_text('entry_points.txt') or ''


def _package_files(package_dir: str) -> list[tuple[str, str]]:
    """(path inside the wheel, file on disk) for every file of the plait package, sorted."""
    root = os.path.dirname(package_dir)
    found = []
    for folder, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in files:
            if not name.endswith(_SKIP_SUFFIXES):
                path = os.path.join(folder, name)
                found.append((os.path.relpath(path, root).replace(os.sep, '/'), path))
    return sorted(found)


def _record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
    return f'{arcname},sha256={digest},{len(data)}'


def _entry(arcname: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _write(archive: zipfile.ZipFile, arcname: str, data: bytes, record: list[str]) -> None:
    archive.writestr(_entry(arcname), data)
    record.append(_record_line(arcname, data))


def plait_requirements() -> list[str]:
    """The running plait's own dependencies (its extras left out), as pip requirement lines."""
    try:
        requires = importlib.metadata.requires('plait') or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [r for r in requires if 'extra' not in r.partition(';')[2]]


def wheel_name(version: str) -> str:
    return f'plait-{version}-py3-none-any.whl'


def build_plait_wheel(folder: str) -> str:
    """Write a wheel of the running plait into `folder`; its path."""
    import plait

    version, metadata, entry_points = _metadata()
    dist_info = f'plait-{version}.dist-info'
    path = os.path.join(folder, wheel_name(version))
    os.makedirs(folder, exist_ok=True)
    record: list[str] = []
    with zipfile.ZipFile(path, 'w') as archive:
        for arcname, source in _package_files(os.path.dirname(os.path.abspath(plait.__file__))):
            with open(source, 'rb') as f:
                _write(archive, arcname, f.read(), record)
        wheel = 'Wheel-Version: 1.0\nGenerator: plait export\nRoot-Is-Purelib: true\nTag: py3-none-any\n'
        _write(archive, f'{dist_info}/METADATA', metadata.encode(), record)
        _write(archive, f'{dist_info}/WHEEL', wheel.encode(), record)
        if entry_points:
            _write(archive, f'{dist_info}/entry_points.txt', entry_points.encode(), record)
        record.append(f'{dist_info}/RECORD,,')
        archive.writestr(_entry(f'{dist_info}/RECORD'), '\n'.join(record) + '\n')
    return path
