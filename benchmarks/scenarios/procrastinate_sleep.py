"""Procrastinate: sleep (see ``benchmarks._scenarios.sleep``)."""

from benchmarks._scenarios import sleep
from benchmarks.scenarios._procrastinate import ProcrastinateAdapter

run = sleep(ProcrastinateAdapter())
