"""Aggregate measurements (median per cell) and render the comparison as one markdown table.

Columns are the libraries; jobrunner's variants (``jobrunner``, the tuned script, and the
``jobrunner-cli*`` rows, the ``jobrunner run`` command) share the jobrunner column, one row
each per metric, with a "jobrunner as" column naming the variant. Variants are never peers:
each variant's ratios divide its own figure by the best real peer's and the ceiling's.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence

import attrs

JOBRUNNER = "jobrunner"
DEFAULT_CLI = "jobrunner-cli"  # the command users run, with its default logging
QUIET_CLI = "jobrunner-cli-quiet"  # the same with --log-level warning: no per-job lines
VARIANT_ORDER = (
    JOBRUNNER,
    "jobrunner-fifo",
    "jobrunner-limited",
    DEFAULT_CLI,
    "jobrunner-cli-json",
    QUIET_CLI,
    "jobrunner-cli-pyimpl",
)
VARIANT_TITLES = {
    JOBRUNNER: "tuned script",
    "jobrunner-fifo": "tuned, fairness off (FIFO)",
    "jobrunner-limited": "tuned, global limit 1,000",
    DEFAULT_CLI: "`jobrunner run`",
    "jobrunner-cli-json": "`jobrunner run`, JSON logs",
    QUIET_CLI: "`jobrunner run --log-level warning`",
    "jobrunner-cli-pyimpl": "`jobrunner run`, psycopg's pure-Python implementation",
}
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


def is_jobrunner(library: str) -> bool:
    """jobrunner itself or one of its variants (``jobrunner-…``): a row, never a peer."""
    return library == JOBRUNNER or library.startswith(JOBRUNNER + "-")


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
        """The columns: ``jobrunner`` (for all its variants) if measured, then the others."""
        found = {m.library for m in self.measurements}
        others = sorted(
            (lib for lib in found if not is_jobrunner(lib)),
            key=lambda name: order_key(name, LIBRARY_ORDER),
        )
        return ([JOBRUNNER] if any(map(is_jobrunner, found)) else []) + others

    def variants(self) -> list[str]:
        found = {m.library for m in self.measurements if is_jobrunner(m.library)}
        return sorted(found, key=lambda name: order_key(name, VARIANT_ORDER))

    def shows_variants(self) -> bool:
        return self.variants() not in ([], [JOBRUNNER])

    def scenarios(self) -> list[str]:
        found = {m.scenario for m in self.measurements}
        return sorted(found, key=lambda name: order_key(name, SCENARIO_ORDER))

    def runs(self, library: str, scenario: str) -> list[Measurement]:
        return [m for m in self.measurements if m.library == library and m.scenario == scenario]

    def cell(self, library: str, scenario: str, metric: str) -> Cell | None:
        return _cell(self.runs(library, scenario), metric)

    def metrics(self, scenario: str) -> list[str]:
        names: dict[str, None] = {}
        for m in self.measurements:
            if m.scenario == scenario:
                names.update(dict.fromkeys(m.metrics))
        return list(names) or ["(no result)"]

    def value(self, library: str, scenario: str, metric: str) -> float | None:
        cell = self.cell(library, scenario, metric)
        return cell.value if cell else None

    def rows(self) -> list[list[str]]:
        return [
            row
            for scenario in self.scenarios()
            for metric in self.metrics(scenario)
            for row in self._metric_rows(scenario, metric)
        ]

    def _metric_rows(self, scenario: str, metric: str) -> list[list[str]]:
        """One row per jobrunner variant measured (at least one row): its figure and ratios;
        the other libraries' figures on the first row only."""
        others = [lib for lib in self.libraries() if lib != JOBRUNNER]
        peers = [lib for lib in others if lib != CEILING]
        cells = {lib: self.cell(lib, scenario, metric) for lib in others}
        best = _best(
            (c.value for lib in peers if (c := cells[lib]) and c.value is not None),
            metric,
        )
        ceiling = self.value(CEILING, scenario, metric)
        label = f"{SCENARIO_TITLES.get(scenario, scenario)}: {metric}"
        variants = [v for v in self.variants() if self.cell(v, scenario, metric) is not None]
        rows = []
        for index, variant in enumerate(variants or [None]):
            ours = self.cell(variant, scenario, metric) if variant else None
            row = [label]
            if self.shows_variants():
                row.append(VARIANT_TITLES.get(variant, variant) if variant else "")
            if JOBRUNNER in self.libraries():
                row.append(ours.text if ours else "")
            row += [(c.text if (c := cells[lib]) and index == 0 else "") for lib in others]
            ours_value = ours.value if ours else None
            rows.append([*row, _ratio(ours_value, best), _ratio(ours_value, ceiling)])
        return rows

    def header(self) -> list[str]:
        titles = [LIBRARY_TITLES.get(lib, lib) for lib in self.libraries()]
        variant = ["jobrunner as"] if self.shows_variants() else []
        return [
            "scenario: metric",
            *variant,
            *titles,
            "jobrunner / best peer",
            "jobrunner / ceiling",
        ]

    def logging_costs(self) -> list[str]:
        """Worker CPU per log line, from each logging CLI variant's no-op drain and the quiet
        one's: (CPU µs/job − quiet CPU µs/job) / (log lines/job − quiet log lines/job)."""
        cpu, lines = "worker CPU µs/job", "log lines/job"
        quiet_cpu, quiet_lines = (
            self.value(QUIET_CLI, "drain", cpu),
            self.value(QUIET_CLI, "drain", lines),
        )
        if quiet_cpu is None or quiet_lines is None:
            return []
        costs = []
        for variant in self.variants():
            ours_cpu, ours_lines = (
                self.value(variant, "drain", cpu),
                self.value(variant, "drain", lines),
            )
            if ours_cpu is None or ours_lines is None or ours_lines <= quiet_lines:
                continue  # the quiet variant itself, the tuned script, or nothing measured
            per_line = (ours_cpu - quiet_cpu) / (ours_lines - quiet_lines)
            costs.append(
                f"logging cost, {VARIANT_TITLES.get(variant, variant)}: "
                f"{format_value(per_line)} µs of worker CPU per log line in the no-op drain "
                f"(({format_value(ours_cpu)} − {format_value(quiet_cpu)}) CPU µs/job ÷ "
                f"({format_value(ours_lines)} − {format_value(quiet_lines)}) log lines/job, "
                f"against {VARIANT_TITLES[QUIET_CLI]})"
            )
        return costs

    def notes(self) -> list[str]:
        """Distinct notes and failure details, in scenario order."""
        seen: dict[str, None] = {}
        for scenario in self.scenarios():
            for m in self.measurements:
                if m.scenario != scenario:
                    continue
                if m.note:
                    seen[m.note] = None
                if m.failure and m.detail:  # its first line: a table note is one line
                    first = m.detail.strip().splitlines()[0]
                    seen[f"{m.library} {scenario}: {m.failure}: {first}"] = None
        return list(seen) + self.logging_costs()

    def markdown(self) -> str:
        header = self.header()
        labels = 2 if self.shows_variants() else 1  # left-aligned: the metric and the variant
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] * labels + ["---:"] * (len(header) - labels)) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows()]
        return "\n".join(lines)
