"""Bare-SQL ceiling: enqueue (see ``benchmarks._scenarios.enqueue``)."""

from benchmarks._scenarios import enqueue
from benchmarks.scenarios._sql import SqlAdapter

run = enqueue(SqlAdapter())
