"""Writing exported YAML: plain block style, keys in the order built, and no anchors/aliases
(a repeated dict is written out again, as a person would)."""

from __future__ import annotations

from typing import Any, Iterable

import yaml


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def yaml_text(documents: Iterable[Any]) -> str:
    """One YAML stream holding `documents`, separated by `---`."""
    return yaml.dump_all(list(documents), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         allow_unicode=True, width=100)
