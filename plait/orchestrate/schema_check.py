"""Chained executors whose documents cannot meet are refused when the Flow starts, naming both,
as Jina's gateway refuses them: for each deployment and each one that needs it, every endpoint
the first serves is compared with the endpoint of the second that takes its output (the same
endpoint, else its default one): the output document type of the first and the input document
type of the second must have the same fields, of the same JSON types (Jina's comparison).

Less strict than Jina where plait routes differently: a deployment that does not serve the
endpoint is skipped as for any request (Jina refuses the Flow), and an executor without
document types (plait's default `Document`) takes anything. Executors served elsewhere
(`external=True`) are not asked."""

from __future__ import annotations

from typing import Any, Callable, Optional

from plait.errors import BadConfig
from plait.serve.gateway.config import START, DeploymentTarget
from plait.wire.constants import DRY_RUN_ENDPOINT, WIRE_DEFAULT_ENDPOINT

UNTYPED = 'Document'  # plait's default document: an executor that declared no document types
Schemas = dict[str, dict[str, Any]]  # endpoint -> {'input': {'name', 'model'}, 'output': ...}


def _fields(side: dict[str, Any]) -> Optional[dict[str, Any]]:
    """Field name -> JSON type of a published document type; None when it says nothing."""
    model = side.get('model') if isinstance(side, dict) else None
    if side.get('name') == UNTYPED or not isinstance(model, dict) or not isinstance(model.get('properties'), dict):
        return None
    return {name: field.get('type') if isinstance(field, dict) else None for name, field in model['properties'].items()}


def mismatches(targets: list[DeploymentTarget], schemas: dict[str, Schemas]) -> list[str]:
    """What cannot meet along the `needs` edges between `targets` (whose `schemas` are known)."""
    problems = []
    for target in targets:
        for need in target.needs:
            if need == START or need not in schemas or target.name not in schemas:
                continue
            takes = schemas[target.name]
            for endpoint, entry in sorted(schemas[need].items()):
                incoming = endpoint if endpoint in takes else WIRE_DEFAULT_ENDPOINT
                if endpoint == DRY_RUN_ENDPOINT or incoming not in takes:
                    continue
                made, wanted = _fields(entry.get('output', {})), _fields(takes[incoming].get('input', {}))
                if made is not None and wanted is not None and made != wanted:
                    problems.append(f'the output of {need} at {endpoint} ({entry["output"]["name"]}: '
                                    f'{sorted(made)}) does not fit the input of {target.name} at {incoming} '
                                    f'({takes[incoming]["input"]["name"]}: {sorted(wanted)})')
    return problems


def check_flow(targets: list[DeploymentTarget], discover: Callable[[DeploymentTarget], Schemas]) -> None:
    """BadConfig naming every edge whose documents cannot meet (see the module's text). Only the
    deployments on an edge are asked, all at once: a one-executor Flow asks nobody."""
    from concurrent.futures import ThreadPoolExecutor

    linked = {t.name for t in targets if any(n != START for n in t.needs)}
    linked |= {n for t in targets for n in t.needs if n != START}
    asked = [t for t in targets if t.name in linked and not t.external]
    if not asked:
        return
    with ThreadPoolExecutor(max_workers=len(asked)) as pool:
        schemas = dict(zip((t.name for t in asked), pool.map(discover, asked)))
    problems = mismatches(targets, schemas)
    if problems:
        raise BadConfig('chained executors whose documents cannot meet: ' + '; '.join(problems))
