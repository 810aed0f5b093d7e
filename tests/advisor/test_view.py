"""advisor view: the report served on 127.0.0.1 only, the same bytes; the URL printed when there is no display;
Ctrl-C stops it with one line and exit code 130."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from advisor.view import ReportServer, has_display, open_browser
from harness.errors import UserError
from tests.advisor.factories import learning_curve_rows, make_comparison, make_row, save_comparison
from tests.conftest import ROOT

HTML = "<!doctype html><title>r</title><p>ünïcode report</p>\n".encode()


def report_folder(tmp_path: Path) -> Path:
    (tmp_path / "report.html").write_bytes(HTML)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "prompt-0-shot.json").write_text('{"schema": 2}')
    return tmp_path


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def other_address() -> str | None:
    """This machine's address on its main interface (no packet is sent), if it has one besides loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_serves_the_report_and_what_it_links_on_loopback_only(tmp_path):
    folder = report_folder(tmp_path)
    with ReportServer(folder) as server:
        host, port = server.address
        assert host == "127.0.0.1" and port > 0  # a free port, chosen by the system
        assert server.url == f"http://127.0.0.1:{port}/report.html"
        assert fetch(server.url) == HTML
        assert fetch(f"http://127.0.0.1:{port}/runs/prompt-0-shot.json") == b'{"schema": 2}'
        address = other_address()
        if address is not None:  # not reachable from another interface
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
                pass
    with pytest.raises(OSError):  # stopped: the port is closed
        fetch(server.url)


def test_a_folder_without_a_report_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="report.html: no report here") as err:
        ReportServer(tmp_path)
    assert "\n" not in str(err.value)


def test_display_detection():
    assert not has_display({}, "linux")
    assert has_display({"DISPLAY": ":0"}, "linux") and has_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert has_display({}, "darwin") and has_display({}, "win32")


def test_no_display_prints_the_url_and_starts_no_browser(monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    said: list[str] = []
    opened: list[str] = []
    url = "http://127.0.0.1:1234/report.html"
    assert not open_browser(url, said.append, lambda u: opened.append(u) or True)
    assert opened == [] and len(said) == 1 and url in said[0]
    # a display but no browser: the URL again
    monkeypatch.setenv("DISPLAY", ":0")
    said.clear()
    assert not open_browser(url, said.append, lambda u: False) and url in said[0]
    said.clear()
    assert open_browser(url, said.append, lambda u: opened.append(u) or True) and opened == [url] and said == []


def serve_and_stop(args: list[str], tmp_path: Path) -> tuple[bytes, subprocess.CompletedProcess[str]]:
    """Run an advisor command that serves, fetch the URL it prints, Ctrl-C it; (page, finished process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "advisor.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        while not any("Ctrl-C stops" in line for line in lines):
            line = proc.stdout.readline()
            assert line, f"exited before serving: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}"
            lines.append(line)
        url = lines[-1].split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/report.html")
        assert f"open {url}" in proc.stdout.readline()  # no display: the URL to open by hand
        page = fetch(url)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return page, subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines) + out, err)


def test_advisor_view_serves_until_ctrl_c(tmp_path):
    folder = report_folder(tmp_path)
    page, done = serve_and_stop(["view", str(folder)], tmp_path)
    assert page == HTML
    assert done.returncode == 130
    assert done.stderr.strip() == f"advisor: interrupted: stopped serving {folder / 'report.html'}"


def test_advisor_view_without_a_report_is_one_line_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "advisor.cli", "view", str(tmp_path)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "report.html: no report here" in proc.stderr


def test_advisor_report_open_rerenders_then_serves(tmp_path):
    runs = [make_row("prompt", "4-shot", 0.15), *learning_curve_rows()]
    save_comparison(tmp_path, make_comparison([run.stored for run in runs]))
    page, done = serve_and_stop(["report", str(tmp_path), "--open"], tmp_path)
    assert done.stdout.startswith(f"wrote {tmp_path / 'results.json'} and {tmp_path / 'report.html'}")
    assert page == (tmp_path / "report.html").read_bytes() and b"LoRA" in page
    assert done.returncode == 130
