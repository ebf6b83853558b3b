"""jobrunner, fairness off (strict FIFO): drain (see ``benchmarks._scenarios.drain``)."""

from benchmarks._scenarios import drain
from benchmarks.scenarios._jobrunner import FifoAdapter

run = drain(FifoAdapter())
