"""Claim-ahead: how many jobs a worker may claim beyond its free slots.

A claim takes a round trip to the database; slots whose jobs finish in about that time would
sit empty waiting for it. So a worker claims ahead as many jobs as its full slots finish during
one claim round trip, three times over (for slack), using a recent slow round trip and the
measured mean run time: jobs of a few milliseconds get a buffer, jobs of seconds get none.
"""

from __future__ import annotations

import math

import attrs


@attrs.define
class ClaimAhead:
    concurrency: int
    cap: int  # the claim_ahead setting; 0 turns claim-ahead off
    jobs: int = attrs.field(default=0, init=False)  # the next claim may take this many extra
    claim_at: int = attrs.field(default=1, init=False)  # free slots worth a claim
    _ended: int = attrs.field(default=0, init=False)  # attempts ended since the last sizing
    _busy: float = attrs.field(default=0.0, init=False)  # and the seconds they ran
    _mean_run: float = attrs.field(default=math.inf, init=False)  # seconds per attempt
    _round_trip: float = attrs.field(default=0.0, init=False)  # a claim's, slow to forget

    def ended(self, ran: float) -> None:
        """An attempt ended after running `ran` seconds (or waiting them, if it never ran)."""
        self._ended += 1
        self._busy += ran

    def after_claim(self, round_trip: float) -> None:
        """Size the next claim after one that took `round_trip` seconds."""
        if not self.cap:
            return
        if self._ended:
            self._mean_run = max(self._busy / self._ended, 1e-6)
            self._busy, self._ended = 0.0, 0
        # A round trip varies several-fold with the database's other work: size for the recent
        # slow ones (a peak that decays by 10 % per claim).
        self._round_trip = max(round_trip, 0.9 * self._round_trip)
        self.jobs = min(self.cap, int(3 * self.concurrency * self._round_trip / self._mean_run))
        # Claim once half of them are free: the other half covers the claim's round trip.
        self.claim_at = max(1, self.jobs // 2)

    def off(self) -> None:
        """Claim none ahead until the next sizing (stopping, or the estimate proved wrong)."""
        self.jobs, self.claim_at = 0, 1
