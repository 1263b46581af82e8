"""Start the GUI: platform choice, the QApplication, and the demo run (live, screenshot, or
headless).

With no display (no ``DISPLAY``/``WAYLAND_DISPLAY`` on Linux) the app renders offscreen instead
of crashing in Qt's platform plugin: ``trackbox demo`` then saves screenshots and says how to
see the live window.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtCore import QCoreApplication

    from core.cli.context import Opened
    from core.workspace.facade import Workspace
    from desktop.mainwindow import MainWindow
    from desktop.workers import Workers

START = time.monotonic()
log = logging.getLogger(__name__)


def choose_platform() -> bool:
    """Pick the Qt platform; returns True when nothing will be visible (offscreen)."""
    chosen = os.environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0] in ("offscreen", "minimal")
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return True
    return False


def tune_gc() -> None:
    """Move every object alive after start-up (Qt wrappers, modules, the window) out of the
    collector's reach. A sync on a worker allocates hundreds of thousands of objects; the
    full collections that triggers scan everything while holding the GIL, which froze the
    GUI thread 150–180 ms at a time (bench/gui_folder.py max_stall); frozen, ~20 ms."""
    import gc

    gc.collect()
    gc.freeze()


def tune_gil() -> None:
    """Hand the GIL to the GUI thread sooner. The GUI thread takes the GIL again for every
    Python call a paint makes (each ``data()`` of a model, each slot); while a sync runs on a
    worker, each of those waits up to the switch interval (CPython's default 5 ms), and a
    paint with a dozen of them froze the window 40-60 ms (bench/gui_folder.py max_stall).
    At 1 ms the sync loses nothing measurable."""
    sys.setswitchinterval(0.001)


def _quiet_offscreen_messages(mode: object, context: object, message: str) -> None:
    """The offscreen plugin warns about window features it cannot have; nobody can act on
    that. Everything else still goes to stderr."""
    if "does not support" in message:
        return
    print(message, file=sys.stderr)


def _start_window() -> tuple[QCoreApplication, Workers, MainWindow]:
    """The QApplication (named for settings and the window manager), the job runner and the
    main window, as every entry point starts them."""
    from PySide6.QtWidgets import QApplication

    from desktop.mainwindow import MainWindow
    from desktop.workers import Workers

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Trackbox")
    app.setOrganizationName("Trackbox")
    workers = Workers(app)
    return app, workers, MainWindow(workers)


def _attach(window: MainWindow, workspace: Workspace) -> None:
    """The window is painted and the workspace open: tune the runtime for a GUI thread that
    shares the GIL with syncs, then attach the workspace (its first sync starts now)."""
    tune_gc()
    tune_gil()
    window.set_workspace(workspace)


def run_demo(args: argparse.Namespace) -> int:
    headless = choose_platform()
    from PySide6.QtCore import QTimer, qInstallMessageHandler
    from PySide6.QtWidgets import QWidget

    from desktop.demo import DemoEnvironment, default_demo_dir, start_demo

    if headless:
        qInstallMessageHandler(_quiet_offscreen_messages)
    data_dir: Path = (args.data_dir or default_demo_dir()).expanduser().resolve()
    app, workers, window = _start_window()
    window.show()

    if args.exit_when_shown:  # used by bench/startup.py: process start → window shown
        QTimer.singleShot(0, app.quit)
        app.exec()
        return 0

    env: dict[str, DemoEnvironment] = {}
    outcome = {"code": 0}
    screenshot_mode = args.screenshot is not None or headless
    quit_after = args.quit_after if args.quit_after is not None else 0.0
    shots: list[Path] = []
    staged: list[bool] = []
    dialog_name = getattr(args, "screenshot_dialog", None)
    shot_path = (
        Path(args.screenshot)
        if args.screenshot is not None
        else data_dir / "screenshots" / "main-window.png"
    )

    def save_widget(widget: QWidget) -> None:
        """Save a PNG of ``widget``, then quit once ``--quit-after`` has passed."""
        try:
            shot_path.parent.mkdir(parents=True, exist_ok=True)
            if not widget.grab().save(str(shot_path), "PNG"):
                raise OSError(f"could not write {shot_path}")
            shots.append(shot_path)
        except OSError as exc:
            print(f"trackbox: {exc}", file=sys.stderr)
            outcome["code"] = 1
        remaining = max(0.0, quit_after - (time.monotonic() - START))
        QTimer.singleShot(int(remaining * 1000), app.quit)

    def finish() -> None:
        if dialog_name and args.screenshot is not None:
            from desktop.screenshots import stage

            stage(window, dialog_name, save_widget)
        else:
            save_widget(window)

    def on_shown(_row_id: int) -> None:
        if screenshot_mode and not shots and not staged:
            staged.append(True)
            # let the pane lay out and paint before grabbing
            QTimer.singleShot(300, finish)

    def ready(environment: DemoEnvironment) -> None:
        env["demo"] = environment
        _attach(window, environment.workspace)

    def failed(exc: BaseException) -> None:
        print(f"trackbox: the demo could not start: {exc}", file=sys.stderr)
        outcome["code"] = 1
        if screenshot_mode:
            app.quit()
        else:
            window.statusBar().showMessage(f"The demo could not start: {exc}")

    def give_up() -> None:
        if not shots:
            print(
                "trackbox: no message was shown in time; saving the window as it is",
                file=sys.stderr,
            )
            outcome["code"] = 1
            finish()

    window.message_shown.connect(on_shown)
    window.status_connection.setText("Preparing the demo…")
    window.statusBar().showMessage(f"Preparing the demo in {data_dir}…")
    workers.run(lambda: start_demo(data_dir), ready, failed)
    if screenshot_mode:
        QTimer.singleShot(int(max(120.0, quit_after) * 1000), give_up)
    app.exec()
    workers.wait()
    if "demo" in env:
        env["demo"].close()
    if headless and args.screenshot is None and shots:
        print("Trackbox demo ran without a display, so it rendered offscreen.")
        for shot in shots:
            print(f"Screenshot of the main window: {shot}")
        print("To use the live window, run it on a desktop, or on a virtual screen:")
        print('  xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/trackbox demo')
        print(f"Demo data (mailbox, CRM database) is kept in {data_dir}")
    return outcome["code"]


def run_gui(args: argparse.Namespace) -> int:
    """The client on a real profile; the setup wizard first when there is none."""
    choose_platform()
    from PySide6.QtWidgets import QMessageBox

    from core.config.profiles import Profiles
    from desktop.wizard import SetupWizard

    app, workers, window = _start_window()
    opened: dict[str, Workspace] = {}

    def open_profile(name: str | None) -> None:
        from core.cli.context import CREDENTIALS, CliError, open_workspace
        from desktop.errors import SIGN_IN_AGAIN
        from desktop.signin import signed_out_profile

        window.show()
        window.statusBar().showMessage("Opening your profile…")

        def warn(text: str) -> None:
            QMessageBox.warning(window, "Trackbox", f"The profile could not be opened: {text}")

        def failed(exc: BaseException) -> None:
            text = exc.message if isinstance(exc, CliError) else str(exc)
            window.statusBar().showMessage(text)
            if isinstance(exc, CliError) and exc.code == CREDENTIALS:
                # Nobody signed in (Microsoft / AD FS): the banner signs in, then reopens.
                workers.run(lambda: signed_out_profile(name), offer, lambda _e: warn(text))
                return
            warn(text)

        def offer(found: tuple[str, str] | None) -> None:
            if found is None:
                warn(window.statusBar().currentMessage())
                return
            window.signin_banner.show_signed_out(*found)
            window.status.set_connection(False, detail=SIGN_IN_AGAIN)
            window.statusBar().showMessage(SIGN_IN_AGAIN)

        def ready(result: Opened) -> None:
            opened["ws"] = result.workspace
            _attach(window, result.workspace)

        workers.run(lambda: open_workspace(name), ready, failed)

    def reconnect(name: str) -> None:
        """Options › Accounts saved a new connection: drop the workspace, open it again."""
        window.detach_workspace()
        old = opened.pop("ws", None)
        if old is not None:
            old.close()
        open_profile(name)

    window.reconnect_requested.connect(reconnect)
    window.signin_banner.profile_signed_in.connect(open_profile)
    if args.setup or not Profiles().names():
        wizard = SetupWizard(workers)
        wizard.profile_saved.connect(open_profile)
        wizard.rejected.connect(app.quit)
        wizard.show()
    else:
        open_profile(args.profile)
    app.exec()
    if window.workspace is not None:
        window.detach_workspace()
    workers.wait()
    if "ws" in opened:
        opened["ws"].close()
    return 0
