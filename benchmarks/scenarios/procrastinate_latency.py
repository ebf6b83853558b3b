"""Procrastinate: latency (see ``benchmarks._scenarios.latency``)."""

from benchmarks._scenarios import latency
from benchmarks.scenarios._procrastinate import ProcrastinateAdapter

run = latency(ProcrastinateAdapter())
