"""Regenerate the *_pb2.py modules from the .proto files here (`make proto`)."""

import pathlib
import re
import sys

import docarray
from grpc_tools import protoc

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent.parent
DOCARRAY_PROTO_DIR = pathlib.Path(docarray.__file__).parent / 'proto'
GRPC_INCLUDE = pathlib.Path(protoc.__file__).parent / '_proto'


def main() -> int:
    files = sorted(str(p.relative_to(ROOT)) for p in HERE.glob('*.proto'))
    args = ['protoc', f'-I{ROOT}', f'-I{DOCARRAY_PROTO_DIR}', f'-I{GRPC_INCLUDE}',
            f'--python_out={ROOT}', f'--pyi_out={ROOT}', f'--grpc_python_out={ROOT}', *files]
    if protoc.main(args) != 0:
        return 1
    # docarray registers docarray.proto itself; point the generated import at its module.
    for path in HERE.glob('*_pb2*.py'):
        text = path.read_text()
        fixed = re.sub(r'^import docarray_pb2 as docarray__pb2$',
                       'from plait.proto._docarray import docarray_pb2 as docarray__pb2',
                       text, flags=re.M)
        if fixed != text:
            path.write_text(fixed)
    return 0


if __name__ == '__main__':
    sys.exit(main())
