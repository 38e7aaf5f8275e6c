"""The CPU-heavy half of a report PDF — drawing its chart (matplotlib) and HTML → PDF (xhtml2pdf) — run in
long-lived child processes, so the HES's gevent loop keeps serving while it runs (both hold the GIL for up to
seconds, which a thread pool does not help). Each HES process keeps up to ``MAX_CHILDREN`` children of
``python -m app.services.reports.render_pdf serve``, started on first use (a start costs the imports, about a
second) and reused; the parent waits on their pipes with ``select``, which is gevent's cooperative one once the
process is patched. One job on a child's stdin is ``MODE SIZE\n`` and SIZE bytes; its answer on stdout is
``ok SIZE\n`` or ``err SIZE\n`` and SIZE bytes (the result, or the reason):

    pdf    HTML (UTF-8) in, PDF bytes out
    chart  a ``Chart`` as JSON in, PNG bytes out (nothing when there is nothing to draw)

A child past ``TIMEOUT_SECONDS`` or gone is killed and replaced by the next render. This module imports
neither Flask nor pandas, so a child starts quickly."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

PALETTE = ("#0f766e", "#f59e0b", "#dc2626", "#6366f1", "#0ea5e9", "#84cc16")
MODULE = "app.services.reports.render_pdf"  # this module's name, also when it runs as ``__main__``
TIMEOUT_SECONDS = 120
MAX_CHILDREN = 2  # renders at once per HES process; more wait their turn rather than crowd the cores
PIPE_CHUNK = 4096  # at most PIPE_BUF: a write after "writable" never blocks
_ROOT = Path(__file__).resolve().parents[3]  # the directory holding the ``app`` package
_lock = threading.Lock()  # made at import; only held for list operations, never across a wait
_idle: list[_Child] = []
_slots: threading.BoundedSemaphore | None = None  # made on first use: gevent's own once the process is patched


class RenderError(RuntimeError):
    """The child failed, or ran past ``TIMEOUT_SECONDS``."""


@dataclass(frozen=True)
class Chart:
    """What a report's chart shows: named series over labels, as bars or lines, or a donut of parts."""

    labels: Sequence[str] = ()
    series: Sequence[tuple[str, Sequence[float]]] = ()
    kind: str = "bar"  # "bar", "line" or "donut" (series: one value per label; centre: the middle text)
    ylabel: str = "kWh"
    colours: Sequence[str] = ()
    centre: str = ""


class _Child:
    """One long-lived renderer: a job at a time over its stdin and stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", MODULE, "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, cwd=_ROOT)
        self.inp, self.out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self.buffer = b""

    def run(self, mode: str, data: bytes, timeout: float) -> tuple[str, bytes]:
        """(status, body) of one job; raises ``RenderError`` past ``timeout`` seconds or with the child gone."""
        self.timeout, self.deadline = timeout, time.monotonic() + timeout
        message = memoryview(f"{mode} {len(data)}\n".encode() + data)
        while message:
            self._wait(write=True)
            try:
                message = message[os.write(self.inp, message[:PIPE_CHUNK]):]
            except BlockingIOError:  # gevent's pipes are non-blocking; wait again
                continue
        status, size = self._read_until(b"\n").split()
        return status.decode(), self._read(int(size))

    def _wait(self, write: bool = False) -> None:
        left = self.deadline - time.monotonic()
        fds = ([], [self.inp]) if write else ([self.out], [])
        if left <= 0 or not any(select.select(*fds, [], left)[:2]):
            raise RenderError(f"took longer than {self.timeout:g} s")

    def _fill(self) -> None:
        self._wait()
        chunk = os.read(self.out, 1 << 16)
        if not chunk:
            raise RenderError(f"the renderer exited ({self.proc.poll()})")
        self.buffer += chunk

    def _read_until(self, mark: bytes) -> bytes:
        while mark not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(mark, 1)
        return line

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return body

    def kill(self) -> None:
        """Stop the child and let it go (the next render starts another)."""
        self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


def in_child(mode: str, data: bytes, timeout: float = TIMEOUT_SECONDS) -> bytes:
    """Run ``mode`` ("pdf" or "chart") on ``data`` in a renderer child and return the result."""
    global _slots
    with _lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(MAX_CHILDREN)
    with _slots:
        with _lock:
            child = _idle.pop() if _idle else None
        child, done = child or _Child(), False
        try:
            status, body = child.run(mode, data, timeout)
            done = True
        except (RenderError, OSError, ValueError) as exc:  # timed out, gone, or an answer out of protocol
            raise RenderError(f"{mode} rendering failed: {exc}") from exc
        finally:  # a child left mid-job (also by a killed greenlet) is not reused
            if done:
                with _lock:
                    _idle.append(child)
            else:
                child.kill()
    if status != "ok":
        raise RenderError(f"{mode} rendering failed: {body.decode(errors='replace')}")
    return body


def stop_children() -> None:
    """Stop the idle renderer children (the next render starts one again)."""
    with _lock:
        children, _idle[:] = list(_idle), []
    for child in children:
        child.kill()


def pdf_of(html: str) -> bytes:
    """``html`` as PDF bytes, rendered in a child process."""
    return in_child("pdf", html.encode("utf-8"))


def png_of(chart: Chart) -> bytes | None:
    """``chart`` as PNG bytes (None without data), drawn in a child process."""
    return in_child("chart", json.dumps(asdict(chart)).encode("utf-8")) or None


def html_to_pdf(html: str) -> bytes:
    """``html`` as PDF bytes, in this process; raises ``RenderError`` when xhtml2pdf reports errors."""
    from xhtml2pdf import pisa

    out = io.BytesIO()
    status = pisa.CreatePDF(html, dest=out, encoding="utf-8")
    if status.err:
        raise RenderError(f"xhtml2pdf reported {status.err} error(s)")
    return out.getvalue()


def draw_chart(chart: Chart) -> bytes | None:
    """The chart as PNG bytes (None without data), in this process."""
    if chart.kind == "donut":
        return _donut(chart)
    if not chart.labels or not chart.series:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 3.0), dpi=150)  # the shared template shows charts at 390 × 180
    ax = fig.add_subplot(1, 1, 1)
    labels, series = list(chart.labels), list(chart.series)
    positions = range(len(labels))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        if chart.kind == "line":
            ax.plot(positions, values, label=name, color=colour, linewidth=1.8)
        else:
            ax.bar([p + (i - (len(series) - 1) / 2) * width for p in positions], values, width=width, label=name,
                   color=colour)
    step = max(1, len(labels) // 14)
    ax.set_xticks(list(positions)[::step], [labels[i] for i in range(0, len(labels), step)], fontsize=7,
                  rotation=30, ha="right")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel(chart.ylabel, fontsize=8)
    ax.grid(axis="y", color="#e2e8f0", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    if len(series) > 1:
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _donut(chart: Chart) -> bytes | None:
    """A donut of (label, value, colour) parts with a legend; None when all are zero."""
    parts = [(label, values[0], colour) for (label, values), colour in zip(chart.series, chart.colours, strict=True)]
    shown = [(label, value, colour) for label, value, colour in parts if value > 0]
    if not shown:
        return None
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    fig = Figure(figsize=(5.2, 2.4), dpi=150)
    ax = fig.add_axes((0.0, 0.0, 0.5, 1.0))
    ax.pie([v for _, v, _ in shown], colors=[c for _, _, c in shown], startangle=90, counterclock=False,
           wedgeprops={"width": 0.32, "edgecolor": "white", "linewidth": 2})
    ax.set_aspect("equal")
    if chart.centre:
        ax.text(0, 0, chart.centre, ha="center", va="center", fontsize=15, fontweight="bold", color="#0f172a")
    legend = fig.add_axes((0.52, 0.0, 0.48, 1.0))
    legend.axis("off")
    total = sum(v for _, v, _ in parts) or 1
    for i, (label, value, colour) in enumerate(parts):
        y = 0.7 - i * 0.2
        legend.add_patch(FancyBboxPatch((0.0, y - 0.035), 0.06, 0.07, color=colour, boxstyle="round,pad=0.01"))
        legend.text(0.1, y, f"{label}: {value:g} ({100 * value / total:.1f}%)", va="center", fontsize=9,
                    color="#1e293b")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _render(mode: str, data: bytes) -> bytes:
    if mode == "pdf":
        return html_to_pdf(data.decode("utf-8"))
    if mode == "chart":
        return draw_chart(Chart(**json.loads(data))) or b""
    raise RenderError(f"unknown mode {mode!r}: pdf or chart")


def serve() -> None:
    """The child: jobs from stdin, answers on stdout, until stdin closes (the HES process has gone)."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while header := inp.readline():
        mode, size = header.decode().split()
        data = inp.read(int(size))
        try:
            status, body = "ok", _render(mode, data)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller as its reason
            status, body = "err", f"{type(exc).__name__}: {exc}".encode()
        out.write(f"{status} {len(body)}\n".encode() + body)
        out.flush()


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        sys.exit(f"usage: python -m {MODULE} serve  (jobs on stdin; see the module's docstring)")
    serve()
