"""Procrastinate: idle (see ``benchmarks._scenarios.idle``)."""

from benchmarks._scenarios import idle
from benchmarks.scenarios._procrastinate import ProcrastinateAdapter

run = idle(ProcrastinateAdapter())
