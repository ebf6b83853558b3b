"""Procrastinate: drain (see ``benchmarks._scenarios.drain``)."""

from benchmarks._scenarios import drain
from benchmarks.scenarios._procrastinate import ProcrastinateAdapter

run = drain(ProcrastinateAdapter())
