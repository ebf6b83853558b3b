"""Procrastinate: enqueue (see ``benchmarks._scenarios.enqueue``)."""

from benchmarks._scenarios import enqueue
from benchmarks.scenarios._procrastinate import ProcrastinateAdapter

run = enqueue(ProcrastinateAdapter())
