"""The result model of a benchmark section (rows of per-repetition values beside the
raw-grpcio floor, with an optional target) and its Markdown rendering."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from stats import median


@dataclass
class Target:
    """What a figure is reported against (never asserted): `ratio_max` / `ratio_min` bound
    plait/floor, `max` / `min` bound the plait value itself, in the row's unit."""

    kind: str  # 'ratio_max' | 'ratio_min' | 'max' | 'min'
    value: float

    def describe(self, unit: str) -> str:
        return {'ratio_max': f'<= {self.value:g}x floor', 'ratio_min': f'>= {self.value:g}x floor',
                'max': f'< {self.value:g} {unit}', 'min': f'>= {self.value:g} {unit}'}[self.kind]

    def met(self, plait: float, floor: float) -> bool | None:
        is_ratio = self.kind.startswith('ratio_')
        if math.isnan(plait) or (is_ratio and (floor is None or math.isnan(floor))):
            return None
        value = plait / floor if is_ratio else plait
        return {'ratio_max': value <= self.value, 'ratio_min': value >= self.value,
                'max': value < self.value, 'min': value >= self.value}[self.kind]


@dataclass
class Row:
    """One figure: a value per repetition for plait and (optionally) for the floor."""

    metric: str
    unit: str
    plait: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    target: Target | None = None
    note: str = ''


@dataclass
class Table:
    """A free-form table (e.g. the slowest imports of the probe)."""

    title: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    key: str
    title: str
    notes: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ''

    def row(self, metric: str, unit: str, target: Target | None = None, note: str = '') -> Row:
        """The row named `metric`, created on first use (repetitions append to it)."""
        for existing in self.rows:
            if existing.metric == metric:
                return existing
        new = Row(metric, unit, target=target, note=note)
        self.rows.append(new)
        return new

    def not_measured(self, metric: str, reason: str) -> None:
        self.rows.append(Row(metric, '', note=f'not measured: {reason}'))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Section:
        rows = []
        for r in data.get('rows', []):
            target = Target(**r['target']) if r.get('target') else None
            rows.append(Row(r['metric'], r['unit'], r['plait'], r['floor'], target, r.get('note', '')))
        tables = [Table(**t) for t in data.get('tables', [])]
        return cls(data['key'], data['title'], data.get('notes', []), rows, tables,
                   data.get('seconds', 0.0), data.get('error', ''))


# -- rendering --------------------------------------------------------------------------------
_DECIMALS = {'ms': 2, 's': 3, 'MB': 1, 'req/s': 0, 'docs/s': 0, 'µs': 0, 'x': 1, 'docs': 1}


def fmt(value: float, unit: str) -> str:
    if value is None or math.isnan(value):
        return 'n/a'
    decimals = _DECIMALS.get(unit, 2)
    return f'{value:,.{decimals}f}'


def _cell(values: list[float], unit: str) -> str:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return '–'
    text = f'{fmt(median(clean), unit)} {unit}'
    if len(clean) > 1 and fmt(min(clean), unit) != fmt(max(clean), unit):
        text += f' <sub>({fmt(min(clean), unit)}–{fmt(max(clean), unit)})</sub>'
    return text


def render_section(section: Section) -> str:
    out = [f'## {section.title}', '']
    if section.error:
        out += [f'**Section failed:** `{section.error}`', '']
    out += [f'- {note}' for note in section.notes]
    if section.notes:
        out.append('')
    if section.rows:
        out += ['| figure | plait | raw-grpcio floor | plait / floor | target | met? |',
                '|---|---|---|---|---|---|']
        for row in section.rows:
            if not row.plait and row.note.startswith('not measured'):
                out.append(f'| {row.metric} | {row.note} | | | | |')
                continue
            p, f = median(row.plait), median(row.floor)
            ratio = f'{p / f:.2f}x' if row.floor and f and not math.isnan(f) and not math.isnan(p) else ''
            target = row.target.describe(row.unit) if row.target else ''
            met = row.target.met(p, f) if row.target else None
            verdict = {True: 'yes', False: '**no**', None: ''}[met]
            metric = row.metric + (f' <sub>{row.note}</sub>' if row.note else '')
            out.append(f'| {metric} | {_cell(row.plait, row.unit)} | {_cell(row.floor, row.unit)} | '
                       f'{ratio} | {target} | {verdict} |')
        out.append('')
    for table in section.tables:
        out += [f'**{table.title}**', '', '| ' + ' | '.join(table.header) + ' |',
                '|' + '---|' * len(table.header)]
        out += ['| ' + ' | '.join(cells) + ' |' for cells in table.rows]
        out.append('')
    if section.seconds:
        out += [f'<sub>section took {section.seconds:.0f} s</sub>', '']
    return '\n'.join(out)


def targets_summary(sections: list[Section]) -> list[str]:
    """The targets at a glance: every figure that has one."""
    lines = ['## Targets at a glance', '',
             '| section | figure | plait (median) | floor (median) | target | met? |',
             '|---|---|---|---|---|---|']
    for section in sections:
        for row in section.rows:
            if row.target is None:
                continue
            p, f = median(row.plait), median(row.floor)
            met = row.target.met(p, f)
            floor_text = f'{fmt(f, row.unit)} {row.unit}' if row.floor and not math.isnan(f) else '–'
            ratio = f' ({p / f:.2f}x)' if row.target.kind.startswith('ratio_') and row.floor and f else ''
            verdict = {True: 'yes', False: '**no**', None: 'not measured'}[met]
            letter = section.title.split('.')[0]
            lines.append(f'| {letter} | {row.metric} | {fmt(p, row.unit)} {row.unit}{ratio} | '
                         f'{floor_text} | {row.target.describe(row.unit)} | {verdict} |')
    if len(lines) == 4:
        lines.append('| | no figure with a target was measured in this run | | | | |')
    return lines + ['']
