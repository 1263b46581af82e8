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
    from PySide6.QtWidgets import QWidget

    from core.cli.context import Opened
    from core.workspace.facade import Workspace
    from desktop.demo import DemoEnvironment
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
    """The demo: the window at once, the demo CRM and mailbox prepared on a worker; with
    ``--screenshot`` (or no display) a PNG of the window or a staged dialog, then exit."""
    headless = choose_platform()
    from PySide6.QtCore import QTimer, qInstallMessageHandler

    if headless:
        qInstallMessageHandler(_quiet_offscreen_messages)
    app, workers, window = _start_window()
    window.show()

    if args.exit_when_shown:  # used by bench/startup.py: process start → window shown
        QTimer.singleShot(0, app.quit)
        app.exec()
        return 0

    from desktop.demo import default_demo_dir  # after the window: the first paint needs none

    data_dir: Path = (args.data_dir or default_demo_dir()).expanduser().resolve()
    run = _DemoRun(args, app, workers, window, data_dir, headless=headless)
    run.start()
    app.exec()
    workers.wait()
    run.close()
    if headless and args.screenshot is None and run.shots:
        _explain_offscreen(run.shots, data_dir)
    return run.code


class _DemoRun:
    """One demo run: the callbacks of the demo's start on a worker and of the screenshot,
    and the state they share. Every method runs on the GUI thread."""

    def __init__(
        self,
        args: argparse.Namespace,
        app: QCoreApplication,
        workers: Workers,
        window: MainWindow,
        data_dir: Path,
        *,
        headless: bool,
    ) -> None:
        self.app, self.workers, self.window, self.data_dir = app, workers, window, data_dir
        self.dialog_name: str | None = getattr(args, "screenshot_dialog", None)
        self.staging = args.screenshot is not None  # a dialog is staged only when asked
        self.screenshot_mode = args.screenshot is not None or headless
        self.quit_after: float = args.quit_after if args.quit_after is not None else 0.0
        self.shot_path = (
            Path(args.screenshot)
            if args.screenshot is not None
            else data_dir / "screenshots" / "main-window.png"
        )
        self.environment: DemoEnvironment | None = None
        self.code = 0
        self.shots: list[Path] = []
        self.staged = False

    def start(self) -> None:
        """Prepare the demo on a worker; in screenshot mode, give up after a while."""
        from PySide6.QtCore import QTimer

        from desktop.demo import start_demo

        window, data_dir = self.window, self.data_dir
        window.message_shown.connect(self._on_shown)
        window.status_connection.setText("Preparing the demo…")
        window.statusBar().showMessage(f"Preparing the demo in {data_dir}…")
        self.workers.run(lambda: start_demo(data_dir), self._ready, self._failed)
        if self.screenshot_mode:
            QTimer.singleShot(int(max(120.0, self.quit_after) * 1000), self._give_up)

    def close(self) -> None:
        """Stop the demo's CRM emulator and close its workspace, once the app has quit."""
        if self.environment is not None:
            self.environment.close()

    def _ready(self, environment: DemoEnvironment) -> None:
        self.environment = environment
        _attach(self.window, environment.workspace)

    def _failed(self, exc: BaseException) -> None:
        print(f"trackbox: the demo could not start: {exc}", file=sys.stderr)
        self.code = 1
        if self.screenshot_mode:
            self.app.quit()
        else:
            self.window.statusBar().showMessage(f"The demo could not start: {exc}")

    def _on_shown(self, _row_id: int) -> None:
        """The first message is on screen: the moment for the screenshot."""
        from PySide6.QtCore import QTimer

        if self.screenshot_mode and not self.shots and not self.staged:
            self.staged = True
            # let the pane lay out and paint before grabbing
            QTimer.singleShot(300, self._finish)

    def _give_up(self) -> None:
        """No message was shown in time: a picture of the window as it is beats none."""
        if not self.shots:
            print(
                "trackbox: no message was shown in time; saving the window as it is",
                file=sys.stderr,
            )
            self.code = 1
            self._finish()

    def _finish(self) -> None:
        """Grab the window, or stage the dialog asked for and grab that when it is filled."""
        if self.dialog_name and self.staging:
            from desktop.screenshots import stage

            stage(self.window, self.dialog_name, self._save_widget)
        else:
            self._save_widget(self.window)

    def _save_widget(self, widget: QWidget) -> None:
        """Save a PNG of ``widget``, then quit once ``--quit-after`` has passed."""
        from PySide6.QtCore import QTimer

        shot_path = self.shot_path
        try:
            shot_path.parent.mkdir(parents=True, exist_ok=True)
            if not widget.grab().save(str(shot_path), "PNG"):
                raise OSError(f"could not write {shot_path}")
            self.shots.append(shot_path)
        except OSError as exc:
            print(f"trackbox: {exc}", file=sys.stderr)
            self.code = 1
        remaining = max(0.0, self.quit_after - (time.monotonic() - START))
        QTimer.singleShot(int(remaining * 1000), self.app.quit)


def _explain_offscreen(shots: list[Path], data_dir: Path) -> None:
    """Without a display the user saw nothing: say where the pictures are and how to see
    the live window."""
    print("Trackbox demo ran without a display, so it rendered offscreen.")
    for shot in shots:
        print(f"Screenshot of the main window: {shot}")
    print("To use the live window, run it on a desktop, or on a virtual screen:")
    print('  xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/trackbox demo')
    print(f"Demo data (mailbox, CRM database) is kept in {data_dir}")


def run_gui(args: argparse.Namespace) -> int:
    """The client on a real profile; the setup wizard first when there is none."""
    choose_platform()
    from core.config.profiles import Profiles
    from desktop.wizard import SetupWizard

    app, workers, window = _start_window()
    run = _ProfileRun(workers, window)
    window.reconnect_requested.connect(run.reconnect)
    window.signin_banner.profile_signed_in.connect(run.open_profile)
    if args.setup or not Profiles().names():
        wizard = SetupWizard(workers)
        wizard.profile_saved.connect(run.open_profile)
        wizard.rejected.connect(app.quit)
        wizard.show()
    else:
        run.open_profile(args.profile)
    app.exec()
    if window.workspace is not None:
        window.detach_workspace()
    workers.wait()
    run.close()
    return 0


class _ProfileRun:
    """The window's life on a real profile: opening it on a worker, signing in again when
    nobody is signed in, reopening after Options › Accounts. Every method runs on the GUI
    thread."""

    def __init__(self, workers: Workers, window: MainWindow) -> None:
        self.workers, self.window = workers, window
        self.workspace: Workspace | None = None

    def open_profile(self, name: str | None) -> None:
        """Show the window and open profile ``name`` (None: the default) on a worker."""
        from core.cli.context import open_workspace

        self.window.show()
        self.window.statusBar().showMessage("Opening your profile…")
        self.workers.run(
            lambda: open_workspace(name), self._ready, lambda exc: self._failed(name, exc)
        )

    def reconnect(self, name: str) -> None:
        """Options › Accounts saved a new connection: drop the workspace, open it again."""
        self.window.detach_workspace()
        self.close()
        self.open_profile(name)

    def close(self) -> None:
        """Close the open workspace, if any."""
        old, self.workspace = self.workspace, None
        if old is not None:
            old.close()

    def _ready(self, result: Opened) -> None:
        self.workspace = result.workspace
        _attach(self.window, result.workspace)

    def _failed(self, name: str | None, exc: BaseException) -> None:
        from core.cli.context import CREDENTIALS, CliError
        from desktop.signin import signed_out_profile

        text = exc.message if isinstance(exc, CliError) else str(exc)
        self.window.statusBar().showMessage(text)
        if isinstance(exc, CliError) and exc.code == CREDENTIALS:
            # Nobody signed in (Microsoft / AD FS): the banner signs in, then reopens.
            self.workers.run(
                lambda: signed_out_profile(name), self._offer_sign_in, lambda _e: self._warn(text)
            )
            return
        self._warn(text)

    def _offer_sign_in(self, found: tuple[str, str] | None) -> None:
        """Show the sign-in banner for the profile's account, or the error when there is
        nothing to sign in to."""
        from desktop.errors import SIGN_IN_AGAIN

        window = self.window
        if found is None:
            self._warn(window.statusBar().currentMessage())
            return
        window.signin_banner.show_signed_out(*found)
        window.status.set_connection(False, detail=SIGN_IN_AGAIN)
        window.statusBar().showMessage(SIGN_IN_AGAIN)

    def _warn(self, text: str) -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.warning(self.window, "Trackbox", f"The profile could not be opened: {text}")
