"""Plugin resources: opened once per worker, closed on stop, names never silently shared."""

from __future__ import annotations

import pytest

from jobrunner import ConfigurationError, JobContext, NewJob, Plugin, Runner

pytestmark = pytest.mark.anyio


def plugin_with_resource(name: str, events: list[str]) -> Plugin:
    plugin = Plugin(name)

    @plugin.resource("client")
    async def client(env):
        events.append(f"{name} open")
        yield f"{name}-client"
        events.append(f"{name} close")

    @plugin.handler(f"{name}.use", requires=["client"])
    async def use(ctx: JobContext):
        ids = await ctx.enqueue_many([NewJob(type=f"{name}.leaf") for _ in range(2)])
        return {"client": ctx.resource("client"), "children": ids}

    @plugin.handler(f"{name}.leaf")
    async def leaf(ctx: JobContext):
        return ctx.job.parent_id

    return plugin


async def test_resources_open_once_and_close_on_stop(tmp_path):
    events: list[str] = []
    plugin = plugin_with_resource("a", events)
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with Runner(url, plugins=[plugin], env={}, poll_interval=0.1) as runner:
        first = await runner.enqueue("a.use", user_id="u1")
        second = await runner.enqueue("a.use", user_id="u1")
        done = [await runner.wait_for(j, timeout=10) for j in (first, second)]
        leaves = [await runner.wait_for(c, timeout=10) for c in done[0].result["children"]]
    assert events == ["a open", "a close"]
    assert {d.result["client"] for d in done} == {"a-client"}
    assert [(leaf.result, leaf.user_id) for leaf in leaves] == [(first, "u1"), (first, "u1")]


async def test_two_plugins_with_the_same_resource_name_are_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    plugins = [plugin_with_resource("a", []), plugin_with_resource("b", [])]
    with pytest.raises(ConfigurationError, match="both define a resource named 'client'"):
        async with Runner(url, plugins=plugins, env={}):
            pass
