"""The Textual designer driven by its pilot: build a 3-step pipeline, set a parameter,
validate an error and fix it, save, re-open, run it on a real server, see results."""

from __future__ import annotations

import asyncio

from textual.widgets import Checkbox, Input, OptionList, Select, Static

from openhcs.textual_tui.app import OpenHCSApp
from tests.frontend.fixtures import assert_gone, demo_plate, free_port, threads_config

SIZE = (160, 80)


async def until(pilot, signal, condition, timeout: float) -> None:
    """Wait (on the model's or controller's change events, no sleeps) until ``condition()``."""
    ready = asyncio.Event()

    def check(*_args) -> None:
        if condition():
            ready.set()

    signal.connect(check)
    try:
        check()
        await asyncio.wait_for(ready.wait(), timeout)
    finally:
        signal.disconnect(check)
    await pilot.pause()


async def pick(pilot, screen, search: str, button: str = "#use-function") -> None:
    screen.query_one("#function-search", Input).value = search
    await pilot.pause()
    assert screen.query_one("#functions", OptionList).option_count >= 1
    await pilot.click(button)
    await pilot.pause()


async def type_into(pilot, editor: Input, text: str) -> None:
    editor.focus()
    editor.value = ""
    await pilot.press(*text, "enter")
    await pilot.pause()


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def test_build_validate_fix_save_reopen_and_run(tmp_path, isolated_dirs):
    plate = demo_plate(tmp_path)
    app = OpenHCSApp(port=free_port(), global_config=threads_config(), use_zmq=True)
    pids = []

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            app.controller.add_plate(plate)
            await pilot.press("f5")
            await pilot.pause()
            screen, model = app.screen, app.designer
            assert screen.query_one("#designer-plate", Select).value == str(plate)
            assert model.plate.path == plate
            await pilot.click("#new-empty")
            await pilot.click("#add-step")
            await pilot.pause()
            await pick(pilot, screen, "flatfield")
            assert model.steps[0].display_name == "correct_flatfield"
            await pilot.click("#add-step")
            await pilot.pause()
            await pick(pilot, screen, "subtract_background")
            radius = screen.query_one("#param-radius", Input)
            assert radius.placeholder == "int, default 25"          # defaults shown
            await type_into(pilot, radius, "ten")                  # refused at once
            assert "not a whole number" in text_of(screen, "#param-error")
            assert radius.value == "" and model.steps[1].branch().calls[0].kwargs == {}
            await type_into(pilot, radius, "10")
            assert model.steps[1].branch().calls[0].kwargs == {"radius": 10}
            await pilot.click("#add-step")                         # third step: no function yet
            await pilot.pause()
            assert screen.query_one("#designer-steps", OptionList).highlighted == 2
            screen.query_one("#vary-channel", Checkbox).value = True   # stack channels: no group-by
            await pilot.pause()
            screen.query_one("#group-by", Select).value = "site"       # group by site: un-stacked
            await pilot.pause()
            assert (model.steps[2].variable_components, model.steps[2].group_by) == (("channel",), "site")

            await pilot.click("#validate")                         # the error, at its step and field
            await until(pilot, model.changed, lambda: bool(model.issues), 30)
            assert text_of(screen, "#designer-issues").startswith("step 3 · function: ")
            assert "choose a function" in text_of(screen, "#step-issue")
            await pick(pilot, screen, "measure_nuclei")            # fix it
            await type_into(pilot, screen.query_one("#step-name", Input), "count nuclei")
            assert model.steps[2].display_name == "count nuclei" and not model.issues
            await pilot.click("#validate")
            await until(pilot, model.changed, lambda: model.status.startswith("Valid"), 30)

            path = tmp_path / "designed.py"
            screen.query_one("#pipeline-file", Input).value = str(path)
            await pilot.click("#save-pipeline")
            await pilot.pause()
            first = path.read_bytes()
            assert b'(subtract_background, {"radius": 10})' in first
            await pilot.click("#new-default")
            await pilot.pause()
            assert screen.query_one("#designer-steps", OptionList).option_count == 4
            screen.query_one("#pipeline-file", Input).value = str(path)
            await pilot.click("#open-pipeline")
            await pilot.pause()
            assert [d.display_name for d in model.steps] == ["correct_flatfield", "subtract_background",
                                                             "count nuclei"]
            again = tmp_path / "again.py"
            screen.query_one("#pipeline-file", Input).value = str(again)
            await pilot.click("#use-in-plates")                   # saves, then the plate manager runs it
            await pilot.pause()
            assert again.read_bytes() == first
            assert app.controller.pipeline.path == again

            await pilot.press("f1")
            await pilot.pause()
            assert "correct_flatfield → subtract_background → count nuclei" in str(
                app.screen.query_one("#steps").render())
            await pilot.click("#run-all")
            await until(pilot, app.controller.changed, lambda: app.controller.runs[plate].state == "running", 60)
            pids.append(app.controller._zmq.server_pid)
            await until(pilot, app.controller.changed, lambda: plate in app.controller.results, 120)
            assert app.controller.runs[plate].state == "complete"
            await pilot.press("f2")
            await pilot.pause()
            assert app.screen.query_one("#results-table").row_count == 4

    asyncio.run(scenario())
    assert_gone(pids[0])


def test_chain_per_channel_and_preview(tmp_path, isolated_dirs):
    plate = demo_plate(tmp_path)
    app = OpenHCSApp(port=free_port(), global_config=threads_config(), use_zmq=True)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            app.controller.add_plate(plate)
            await pilot.press("f5")
            await pilot.pause()
            screen, model = app.screen, app.designer
            await pilot.click("#new-default")
            await pilot.pause()
            await pick(pilot, screen, "normalize_percentile", "#add-to-chain")   # a chain
            assert model.steps[0].kind == "chain"
            assert screen.query_one("#chain", OptionList).highlighted == 1
            await type_into(pilot, screen.query_one("#param-high", Input), "99")
            assert model.steps[0].branch().calls[1].kwargs == {"high": 99.0}
            screen.query_one("#designer-steps", OptionList).highlighted = 1
            await pilot.pause()
            await pilot.click("#per-component")                               # per-channel dict
            await pilot.pause()
            assert model.steps[1].kind == "per-component"
            screen.query_one("#pattern-key", Select).value = "2"
            await pilot.pause()
            await pick(pilot, screen, "denoise")
            assert model.function_steps()[1].func["2"].__name__ == "denoise"
            await pilot.click("#duplicate-step")
            await pilot.pause()
            assert model.steps[2].display_name == "background copy"
            await pilot.click("#step-up")
            await pilot.click("#remove-step")
            await pilot.pause()
            assert [d.display_name for d in model.steps] == ["flatfield", "background", "stitch", "measure"]
            screen.query_one("#designer-steps", OptionList).highlighted = 1
            await pilot.pause()
            await pilot.click("#preview")
            await until(pilot, model.changed, lambda: model.status.startswith("after"), 60)
            assert "after 'background' on A01 site 1: 2 image(s)" in text_of(screen, "#designer-status")

    asyncio.run(scenario())
