"""Bare-SQL ceiling: idle (see ``benchmarks._scenarios.idle``)."""

from benchmarks._scenarios import idle
from benchmarks.scenarios._sql import SqlAdapter

run = idle(SqlAdapter())
