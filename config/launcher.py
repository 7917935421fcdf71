"""The run command: the whole service on one machine (``make run``).

Starts embedded PostgreSQL and Redis unless ``DATABASE_URL`` / ``REDIS_URL`` are set,
migrates, seeds the demo once, then runs gunicorn, one Celery worker and Celery beat
until Ctrl-C, when it stops them all and the embedded servers, keeping data in ``var/``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

from config.embedded import EmbeddedServices

BASE_DIR = Path(__file__).resolve().parent.parent


class Launcher:
    def __init__(self) -> None:
        self.var_dir = Path(os.environ.get("VAR_DIR", BASE_DIR / "var")).resolve()
        self.port = int(os.environ.get("PORT", "8000"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.services = EmbeddedServices(self.var_dir)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def _environment(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
        os.environ.setdefault("VAR_DIR", str(self.var_dir))
        os.environ.setdefault("PUBLIC_BASE_URL", self.url)
        os.environ["PORT"] = str(self.port)
        os.environ["PYTHONUNBUFFERED"] = "1"

    def _manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True)

    def _spawn(self, name: str, command: list[str]) -> None:
        # A session of its own: Ctrl-C reaches only the launcher, which then stops the
        # web server first and the worker last, so no task is cut off by the terminal.
        self.processes[name] = subprocess.Popen(command, cwd=BASE_DIR, start_new_session=True)

    def _wait_until_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            self._check_children()
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        if not self.stopping:
            raise RuntimeError(f"the web server did not become healthy within {timeout:.0f} seconds")

    def _check_children(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None and not self.stopping:
                raise RuntimeError(f"{name} exited unexpectedly with code {process.returncode}")

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        self.var_dir.mkdir(parents=True, exist_ok=True)
        (self.var_dir / "mail").mkdir(exist_ok=True)
        self._environment()
        try:
            started = self.services.start()
            for variable in started:
                print(f"Embedded {variable.split('_')[0].lower()} started ({variable} not set).", flush=True)
            self._manage("migrate", "--noinput")
            python = sys.executable
            self._spawn("web", [python, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"])
            self._spawn(
                "worker",
                [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO", "--concurrency", "2"],
            )
            self._spawn(
                "beat",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    str(self.var_dir / "celerybeat-schedule"),
                ],
            )
            self._wait_until_healthy()
            if not self.stopping:
                self._manage("demo_seed")
                print(
                    f"\nBalance 360 is running at {self.url}/  (API docs: {self.url}/api/docs/)\n"
                    f"Emails are written to {self.var_dir / 'mail'}. Press Ctrl-C to stop.\n",
                    flush=True,
                )
            while not self.stopping:
                self._check_children()
                time.sleep(0.5)
            return 0
        except (RuntimeError, subprocess.CalledProcessError) as error:
            print(f"balance360: {error}", file=sys.stderr, flush=True)
            return 1
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        self.stopping = True
        for name in ("web", "beat", "worker"):
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.services.stop()
        print("Balance 360 stopped; data kept in", self.var_dir, flush=True)


if __name__ == "__main__":
    sys.exit(Launcher().run())
