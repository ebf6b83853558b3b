"""`Plugin.view`: a plugin registers the dashboard's view of a job type (no web framework)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from jobrunner import ConfigurationError, Job, Plugin


def test_a_view_is_registered_once_per_type():
    plugin = Plugin("hooked")

    @plugin.view("hooked.job", template="views/hooked.html", title="Hooked", children=True)
    def context(job: Job, children: Sequence[Job]) -> dict[str, Any]:
        return {"n": len(children)}

    view = plugin.views["hooked.job"]
    assert (view.type, view.template, view.title, view.with_children) == (
        "hooked.job",
        "views/hooked.html",
        "Hooked",
        True,
    )
    assert view.module == __name__ and view.context is context
    assert view.context(Job(id=1, type="hooked.job"), []) == {"n": 0}
    with pytest.raises(ConfigurationError, match="a view of 'hooked.job' exists"):
        plugin.view("hooked.job", template="other.html")(context)
    assert Plugin("plain").views == {}
