"""The Textual app driven by its pilot against a real execution server process."""

from __future__ import annotations

import asyncio

from textual.widgets import Button, DataTable, DirectoryTree, Input, ProgressBar, Static, TextArea

from openhcs.textual_tui.app import OpenHCSApp
from openhcs.textual_tui.widgets.well_progress import WellRow
from tests.frontend.fixtures import (
    assert_gone,
    demo_plate,
    free_port,
    plate_with_failing_well,
    slow_pipeline_file,
    threads_config,
)

SIZE = (150, 50)


async def wait_for(pilot, app: OpenHCSApp, condition, timeout: float) -> None:
    """Wait (on controller change events, no sleeps) until ``condition()`` holds."""
    ready = asyncio.Event()

    def check(*_args) -> None:
        if condition():
            ready.set()

    app.controller.changed.connect(check)
    try:
        check()
        await asyncio.wait_for(ready.wait(), timeout)
    finally:
        app.controller.changed.disconnect(check)
    await pilot.pause()  # let the widgets draw what the controller announced


async def wait_rows(pilot, table: DataTable, count: int, timeout: float = 60) -> None:
    """Wait for rows that a background request fills in (polls the app's own loop)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while table.row_count < count:
        assert loop.time() < deadline, f"{table.id} has {table.row_count} rows, not {count}"
        await pilot.pause(0.05)


async def add_plate(pilot, app: OpenHCSApp, path) -> None:
    app.screen.query_one("#plate-path", Input).value = str(path)
    await pilot.click("#add-plate")
    await pilot.pause()


def _server_pid(app: OpenHCSApp) -> int | None:
    backend = app.controller._zmq
    return backend.server_pid if backend else None


def test_add_plate_run_progress_reaches_100_and_results_are_shown(tmp_path, isolated_dirs):
    plate = demo_plate(tmp_path)
    app = OpenHCSApp(port=free_port(), global_config=threads_config(), use_zmq=True)
    pids = []

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await add_plate(pilot, app, plate)
            screen = app.screen
            assert screen.query_one("#plates", DataTable).row_count == 1
            assert "4 wells, 4 sites, 2 channels" in str(screen.query_one("#layout", Static).render())
            assert "flatfield → background → stitch → measure" in str(screen.query_one("#steps").render())
            await pilot.click("#run")
            await wait_for(pilot, app, lambda: app.controller.runs[plate].state == "running", 60)
            pids.append(_server_pid(app))
            await wait_for(pilot, app, lambda: plate in app.controller.results, 120)
            assert screen.query_one("#plate-progress", ProgressBar).progress == 100
            rows = list(screen.query(WellRow))
            assert [r.well for r in rows] == ["A01", "A02", "B01", "B02"]
            assert all(r.query_one(ProgressBar).progress == 100 for r in rows)
            assert screen.query_one("#plates", DataTable).get_row_at(0)[-2:] == ["complete", "100%"]
            assert "4 complete, 0 failed, 0 cancelled" in str(screen.query_one("#status").render())
            assert app.current_status == app.controller.status
            manager = screen.query_one("#plate-manager")
            assert manager.current_execution_id == app.controller.runs[plate].execution_id
            await pilot.press("f2")
            await pilot.pause()
            results = app.screen
            table = results.query_one("#results-table", DataTable)
            assert table.row_count == 4 and "object_count" in [c.label.plain for c in table.columns.values()]
            heat = results.query_one("#heatmap", DataTable)
            assert heat.row_count == 2 and len(heat.columns) == 3  # row label + columns 1, 2
            assert heat.get_row_at(0)[0].plain == "A"
            assert "object_count per well" in str(results.query_one("#results-title").render())
            await pilot.press("f3")  # the server manager lists the server this app spawned
            servers = app.screen.query_one("#servers", DataTable)
            await wait_rows(pilot, servers, 1)
            assert servers.get_row_at(0)[1] == str(pids[0])

    asyncio.run(scenario())
    assert_gone(pids[0])


def test_run_then_stop_is_cancelled_gracefully(tmp_path, isolated_dirs):
    plate = demo_plate(tmp_path)
    app = OpenHCSApp(port=free_port(), global_config=threads_config(), use_zmq=True)
    pids = []

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await add_plate(pilot, app, plate)
            app.screen.query_one("#pipeline-path", Input).value = str(slow_pipeline_file(tmp_path))
            await pilot.click("#use-pipeline")
            await pilot.pause()
            assert "Steps: sleep" in str(app.screen.query_one("#steps").render())
            await pilot.click("#run")
            await wait_for(pilot, app, lambda: app.controller.runs[plate].counts()["running"] > 0, 60)
            pids.append(_server_pid(app))
            assert app.screen.query_one("#force", Button).disabled
            await pilot.click("#stop")
            await wait_for(pilot, app, lambda: not app.controller.stop_sequence.active, 60)
            await wait_for(pilot, app, lambda: app.controller.runs[plate].finished, 60)
            assert app.controller.runs[plate].state == "cancelled"
            assert str(app.screen.query_one("#status").render()).startswith("Stopped gracefully")
            assert app.controller.stop_sequence.message().startswith("Stopped gracefully")
            assert app.screen.query_one("#plates", DataTable).get_row_at(0)[-2] == "cancelled"
            states = [r.query_one(".well-state").render() for r in app.screen.query(WellRow)]
            assert all(str(s) == "cancelled" for s in states), states

    asyncio.run(scenario())
    assert_gone(pids[0])


def test_browse_a_failing_plate_then_history_shows_the_failed_well_and_its_traceback(
        tmp_path, isolated_dirs, monkeypatch):
    plate, pipeline = plate_with_failing_well(tmp_path)
    monkeypatch.chdir(tmp_path)
    app = OpenHCSApp(port=free_port(), global_config=threads_config(), use_zmq=True,
                     pipeline=str(pipeline))

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.click("#browse-plate")
            await pilot.pause()
            tree = app.screen.query_one(DirectoryTree)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while not any(str(n.label) == plate.name for n in tree.root.children):
                assert loop.time() < deadline, "the directory tree did not load"
                await pilot.pause(0.05)
            node = next(n for n in tree.root.children if str(n.label) == plate.name)
            tree.move_cursor(node)
            await pilot.press("enter")
            await pilot.pause()
            await pilot.click("#picker-ok")
            await pilot.pause()
            assert [e.path for e in app.controller.plates] == [plate]
            await pilot.click("#run")
            await wait_for(pilot, app, lambda: app.controller.runs[plate].finished, 60)
            run = app.controller.runs[plate]
            assert run.state == "failed" and run.wells["A02"].state == "failed"
            assert "1 failed" in str(app.screen.query_one("#status").render())
            await pilot.press("f4")
            history = app.screen.query_one("#history", DataTable)
            await wait_rows(pilot, history, 1)
            assert history.get_row_at(0)[2] == "failed"
            wells = app.screen.query_one("#history-wells", DataTable)
            await wait_rows(pilot, wells, 2)
            assert [wells.get_row_at(i)[:2] for i in range(2)] == [["A01", "complete"], ["A02", "failed"]]
            wells.move_cursor(row=1)
            await pilot.click("#show-traceback")
            await pilot.pause()
            text = app.screen.query_one("#traceback-text", TextArea).text
            assert "Traceback" in text and "RuntimeError: deliberate failure" in text
            await pilot.press("escape")

    asyncio.run(scenario())


def test_stop_that_times_out_offers_force_kill_and_the_status_says_killed(tmp_path, isolated_dirs):
    from openhcs.core.config import GlobalPipelineConfig

    plate = demo_plate(tmp_path, rows=1, cols=2)
    config = GlobalPipelineConfig(num_workers=2, mode="processes", cancel_grace_seconds=60)
    app = OpenHCSApp(port=free_port(), global_config=config, use_zmq=True, stop_timeout=1.0,
                     pipeline=str(slow_pipeline_file(tmp_path, seconds=60, func="ignore_cancel_step",
                                                     name="stubborn")))
    pids = []

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await add_plate(pilot, app, plate)
            await pilot.click("#run")
            await wait_for(pilot, app, lambda: app.controller.runs[plate].counts()["running"] == 2, 60)
            pids.append(_server_pid(app))
            await pilot.click("#stop")
            force = app.screen.query_one("#force", Button)
            await wait_for(pilot, app, lambda: app.controller.stop_sequence.state == "offer_force", 60)
            assert not force.disabled
            assert str(app.screen.query_one("#status").render()) == "Did not stop within 1 s — force kill?"
            await pilot.click("#force")
            await wait_for(pilot, app, lambda: not app.controller.stop_sequence.active, 60)
            assert str(app.screen.query_one("#status").render()).startswith("Killed by force")
            assert force.disabled

    asyncio.run(scenario())
    assert_gone(pids[0])
