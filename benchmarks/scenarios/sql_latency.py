"""Bare-SQL ceiling: latency (see ``benchmarks._scenarios.latency``)."""

from benchmarks._scenarios import latency
from benchmarks.scenarios._sql import SqlAdapter

run = latency(SqlAdapter())
