"""Aggregate measurements (median per cell) and render the comparison as one markdown table."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence

import attrs

JOBRUNNER = "jobrunner"
CEILING = "sql"
LIBRARY_ORDER = (JOBRUNNER, "procrastinate", "pgqueuer", "graphile", CEILING)
LIBRARY_TITLES = {
    JOBRUNNER: "jobrunner",
    "procrastinate": "Procrastinate",
    "pgqueuer": "PgQueuer",
    "graphile": "graphile-worker",
    CEILING: "bare SQL (ceiling)",
}
SCENARIO_ORDER = ("drain", "latency", "enqueue", "sleep", "idle")
SCENARIO_TITLES = {
    "drain": "no-op drain",
    "latency": "enqueue→start latency",
    "enqueue": "enqueue, no worker",
    "sleep": "10 ms handler, concurrency 200",
    "idle": "idle worker, 10 s",
}


@attrs.frozen(kw_only=True)
class Measurement:
    """One run of one scenario module: its metrics, or why it has none."""

    library: str
    scenario: str
    metrics: Mapping[str, float] = attrs.field(factory=dict)
    note: str | None = None
    failure: str | None = None  # "timeout", "n/a" or "error"
    detail: str | None = None


def higher_is_better(metric: str) -> bool:
    """Throughputs (``… jobs/s``) are better high; times, queries, CPU and memory low."""
    return metric.endswith("jobs/s")


def order_key(name: str, order: Sequence[str]) -> tuple[int, str]:
    return (order.index(name), "") if name in order else (len(order), name)


def format_value(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@attrs.frozen(kw_only=True)
class Cell:
    value: float | None
    text: str


def _cell(runs: Sequence[Measurement], metric: str) -> Cell | None:
    values = [run.metrics[metric] for run in runs if metric in run.metrics]
    if values:
        value = statistics.median(values)
        return Cell(value=value, text=format_value(value))
    failures = [run.failure for run in runs if run.failure]
    return Cell(value=None, text=failures[0]) if failures else None


def _ratio(value: float | None, other: float | None) -> str:
    if value is None or other is None or other == 0:
        return ""
    return f"{value / other:.2f}×"


def _best(values: Iterable[float], metric: str) -> float | None:
    values = list(values)
    if not values:
        return None
    return max(values) if higher_is_better(metric) else min(values)


@attrs.frozen(kw_only=True)
class Table:
    measurements: Sequence[Measurement]

    def libraries(self) -> list[str]:
        found = {m.library for m in self.measurements}
        return sorted(found, key=lambda name: order_key(name, LIBRARY_ORDER))

    def scenarios(self) -> list[str]:
        found = {m.scenario for m in self.measurements}
        return sorted(found, key=lambda name: order_key(name, SCENARIO_ORDER))

    def runs(self, library: str, scenario: str) -> list[Measurement]:
        return [m for m in self.measurements if m.library == library and m.scenario == scenario]

    def metrics(self, scenario: str) -> list[str]:
        names: dict[str, None] = {}
        for m in self.measurements:
            if m.scenario == scenario:
                names.update(dict.fromkeys(m.metrics))
        return list(names) or ["(no result)"]

    def rows(self) -> list[list[str]]:
        libraries = self.libraries()
        peers = [lib for lib in libraries if lib not in (JOBRUNNER, CEILING)]
        rows = []
        for scenario in self.scenarios():
            for metric in self.metrics(scenario):
                cells = {lib: _cell(self.runs(lib, scenario), metric) for lib in libraries}
                ours = cells.get(JOBRUNNER)
                ours_value = ours.value if ours else None
                best = _best(
                    (c.value for lib in peers if (c := cells[lib]) and c.value is not None), metric
                )
                ceiling = cells.get(CEILING)
                title = SCENARIO_TITLES.get(scenario, scenario)
                rows.append(
                    [
                        f"{title}: {metric}",
                        *(cells[lib].text if cells[lib] else "" for lib in libraries),  # type: ignore[union-attr]
                        _ratio(ours_value, best),
                        _ratio(ours_value, ceiling.value if ceiling else None),
                    ]
                )
        return rows

    def header(self) -> list[str]:
        titles = [LIBRARY_TITLES.get(lib, lib) for lib in self.libraries()]
        return ["scenario: metric", *titles, "jobrunner / best peer", "jobrunner / ceiling"]

    def notes(self) -> list[str]:
        """Distinct notes and failure details, in scenario order."""
        seen: dict[str, None] = {}
        for scenario in self.scenarios():
            for m in self.measurements:
                if m.scenario != scenario:
                    continue
                if m.note:
                    seen[m.note] = None
                if m.failure and m.detail:
                    seen[f"{m.library} {scenario}: {m.failure}: {m.detail}"] = None
        return list(seen)

    def markdown(self) -> str:
        header = self.header()
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows()]
        return "\n".join(lines)
