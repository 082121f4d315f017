"""The Tk window: a "Devices" tab drawing the DeviceBoard, and a "Recording" tab that analyses a
WAV file or a few seconds from the microphone.

Thin on purpose: the window never parses MQTT nor runs recognition on its own thread. It polls
``board.snapshot()`` on a Tk timer (Tk is single-threaded; the MQTT callbacks must not touch
widgets) and hands slow work to a worker thread whose result comes back through the same timer.
Widgets that tests inspect are attributes with stable names (``DevicePanel.emotion``, ``bars``…).
"""

from __future__ import annotations

import queue
import threading
import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import filedialog, ttk

from edge_ser.errors import ConfigError, EdgeSerError
from edge_ser.monitor.client import COMMANDS, MonitorClient
from edge_ser.monitor.colours import colour
from edge_ser.monitor.devices import Device, Snapshot
from edge_ser.monitor.recording import Analysis, RecordingAnalyser, microphone_available

REFRESH_MS = 250
BAR_W, BAR_H = 220, 16
TIMELINE_W, TIMELINE_H, BLOCK_W = 460, 26, 22
RECORD_S = 5.0


class DevicePanel:
    """One device's frame: status, current emotion, a bar per class, commands, timeline."""

    def __init__(self, parent: tk.Misc, device_id: str, send: Callable[[str, str], None]) -> None:
        self.frame = ttk.LabelFrame(parent, text=device_id, padding=6)
        self.status = ttk.Label(self.frame, width=28)
        self.status.grid(row=0, column=0, sticky="w")
        self.emotion = tk.Label(self.frame, font=("TkDefaultFont", 16, "bold"), anchor="w", width=18)
        self.emotion.grid(row=1, column=0, sticky="w")
        self.bars = tk.Canvas(self.frame, width=BAR_W + 130, height=BAR_H, highlightthickness=0)
        self.bars.grid(row=0, column=1, rowspan=3, padx=8)
        buttons = ttk.Frame(self.frame)
        buttons.grid(row=2, column=0, sticky="w")
        self.buttons = {c: ttk.Button(buttons, text=c, width=7, command=_bind(send, device_id, c)) for c in COMMANDS}
        for button in self.buttons.values():
            button.pack(side="left")
        self.result = ttk.Label(self.frame, foreground="#555555")
        self.result.grid(row=3, column=0, columnspan=2, sticky="w")
        self.timeline = tk.Canvas(self.frame, width=TIMELINE_W, height=TIMELINE_H, background="white",
                                  highlightthickness=1, highlightbackground="#cccccc")
        self.timeline.grid(row=4, column=0, columnspan=2, sticky="w", pady=(4, 0))
        self._drawn: tuple[object, ...] = ()

    def update(self, d: Device) -> None:
        online = {None: "status unknown", True: "online", False: "OFFLINE"}[d.online]
        mode = {None: "", True: " · paused", False: " · listening"}[d.paused]
        self.status.configure(text=online + mode, foreground="#1a7f37" if d.online else "#b42318")
        text = "—" if d.emotion is None else f"{d.emotion} {d.confidence or 0:.2f}"
        self.emotion.configure(text=text, foreground=colour(d.emotion) if d.emotion else "#555555")
        if d.last_result is not None:
            r = d.last_result
            verdict = "ok" if r.get("ok") else f"failed: {r.get('error')}"
            self.result.configure(text=f"{r.get('command')} (id {r.get('id')}) -> {verdict}")
        key = (tuple(d.probabilities.items()), tuple(u.event_id for u in d.timeline))
        if key != self._drawn:  # redraw canvases only when something changed
            self._drawn = key
            self._draw_bars(d.probabilities)
            self._draw_timeline(d)

    def _draw_bars(self, probabilities: dict[str, float]) -> None:
        self.bars.delete("all")
        self.bars.configure(height=max(1, len(probabilities)) * (BAR_H + 2))
        for i, (label, p) in enumerate(probabilities.items()):
            y = i * (BAR_H + 2)
            self.bars.create_text(0, y + BAR_H / 2, text=label, anchor="w", tags=(f"name:{label}",))
            self.bars.create_rectangle(80, y, 80 + BAR_W * max(0.0, min(1.0, p)), y + BAR_H, fill=colour(label),
                                       outline="", tags=(f"bar:{label}",))
            self.bars.create_text(85 + BAR_W, y + BAR_H / 2, text=f"{p:.2f}", anchor="w", tags=(f"value:{label}",))

    def _draw_timeline(self, d: Device) -> None:
        """Newest utterance at the right; older ones scroll off to the left."""
        self.timeline.delete("all")
        shown = list(d.timeline)[-(TIMELINE_W // BLOCK_W):]
        x = TIMELINE_W - len(shown) * BLOCK_W
        for u in shown:
            self.timeline.create_rectangle(x + 1, 3, x + BLOCK_W - 1, TIMELINE_H - 3, fill=colour(u.label),
                                           outline="", tags=("utterance", f"seq:{u.seq}", f"label:{u.label}"))
            x += BLOCK_W


def _bind(send: Callable[[str, str], None], device_id: str, command: str) -> Callable[[], None]:
    return lambda: send(device_id, command)


class MonitorWindow:
    """The whole window over one MonitorClient (None: the Recording tab only, no broker)."""

    def __init__(self, root: tk.Tk, client: MonitorClient | None, analyser: Callable[[], RecordingAnalyser]) -> None:
        self.root, self.client = root, client
        root.title("edge-ser monitor")
        root.minsize(760, 420)
        self.tabs = ttk.Notebook(root)
        self.tabs.pack(fill="both", expand=True)
        devices = ttk.Frame(self.tabs, padding=8)
        self.tabs.add(devices, text="Devices")
        self.connection = tk.Label(devices, anchor="w", font=("TkDefaultFont", 11, "bold"))
        self.connection.pack(fill="x")
        self.warning = ttk.Label(devices, foreground="#b26b00", anchor="w")
        self.warning.pack(fill="x")
        self.device_area = ttk.Frame(devices)
        self.device_area.pack(fill="both", expand=True)
        self.panels: dict[str, DevicePanel] = {}
        self.recording = RecordingTab(self.tabs, analyser)
        self.tabs.add(self.recording.frame, text="Recording")
        self._refresh()

    def _send(self, device_id: str, command: str) -> None:
        if self.client is not None:
            cmd_id = self.client.send_command(device_id, command)
            self.panels[device_id].result.configure(text=f"{command} (id {cmd_id}) sent, waiting for the result…")

    def show(self, snapshot: Snapshot) -> None:
        """Bring the widgets in line with ``snapshot``: panels appear and disappear with devices."""
        if snapshot.connected:
            self.connection.configure(text="connected", foreground="#1a7f37")
        else:
            self.connection.configure(text=f"DISCONNECTED: {snapshot.connection_error or 'not connected yet'}",
                                      foreground="#b42318")
        self.warning.configure(text=snapshot.warnings[-1] if snapshot.warnings else "")
        seen = {d.device_id for d in snapshot.devices}
        for gone in set(self.panels) - seen:
            self.panels.pop(gone).frame.destroy()
        for d in snapshot.devices:
            panel = self.panels.get(d.device_id)
            if panel is None:
                panel = self.panels[d.device_id] = DevicePanel(self.device_area, d.device_id, self._send)
                panel.frame.pack(fill="x", pady=3)
            panel.update(d)

    def _refresh(self) -> None:
        if self.client is not None:
            self.show(self.client.board.snapshot())
        self.recording.poll()
        self.root.after(REFRESH_MS, self._refresh)


class RecordingTab:
    """Open a WAV (or record from the microphone), then show its timeline plot and utterances."""

    def __init__(self, parent: tk.Misc, analyser: Callable[[], RecordingAnalyser]) -> None:
        self.frame = ttk.Frame(parent, padding=8)
        self._make_analyser = analyser
        self._analyser: RecordingAnalyser | None = None
        self._results: queue.SimpleQueue[Analysis | str] = queue.SimpleQueue()
        bar = ttk.Frame(self.frame)
        bar.pack(fill="x")
        ttk.Button(bar, text="Open WAV…", command=self._choose).pack(side="left")
        self.record_button = ttk.Button(bar, text=f"Record {RECORD_S:.0f} s", command=self.record)
        self.record_button.pack(side="left", padx=4)
        if not microphone_available():
            self.record_button.configure(state="disabled", text="no microphone")
        self.message = ttk.Label(bar, anchor="w")
        self.message.pack(side="left", padx=8)
        self.image_label = ttk.Label(self.frame)
        self.image_label.pack()
        self.utterances = tk.Listbox(self.frame, height=6, font=("TkFixedFont", 10))
        self.utterances.pack(fill="x")
        self.image: tk.PhotoImage | None = None
        self.last: Analysis | None = None
        self.busy = False  # one analysis at a time: the analyser holds a single stream

    def _choose(self) -> None:
        path = filedialog.askopenfilename(filetypes=[("WAV audio", "*.wav *.WAV"), ("all files", "*")])
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> None:
        self._start(f"analysing {Path(path).name}…", lambda a: a.analyse_file(path))

    def record(self) -> None:
        self._start(f"recording {RECORD_S:.0f} s…",
                    lambda a: a.analyse_signal(a.record(RECORD_S), "microphone recording"))

    def _start(self, message: str, work: Callable[[RecordingAnalyser], Analysis]) -> None:
        if self.busy:
            return
        self.busy = True
        self.message.configure(text=message)

        def run() -> None:
            try:
                if self._analyser is None:
                    self._analyser = self._make_analyser()
                self._results.put(work(self._analyser))
            except EdgeSerError as exc:
                self._results.put(str(exc))

        threading.Thread(target=run, name="edge-ser-monitor-analyse", daemon=True).start()

    def poll(self) -> None:
        """Show a finished analysis (called on the Tk thread by the window's timer)."""
        try:
            result = self._results.get_nowait()
        except queue.Empty:
            return
        self.busy = False
        if isinstance(result, str):
            self.message.configure(text=result)
            return
        self.last = result
        self.message.configure(text=f"{result.name}: {result.duration_s:.1f} s, "
                                    f"{len(result.utterances)} utterance(s)")
        self.utterances.delete(0, "end")
        for row in result.utterances:
            self.utterances.insert("end", row.text())
            self.utterances.itemconfigure("end", foreground=colour(row.label))
        if result.plot is not None:
            self.image = tk.PhotoImage(file=str(result.plot))
            self.image_label.configure(image=self.image, text="")
        else:
            self.image_label.configure(image="", text=result.plot_error or "")


def run_window(client: MonitorClient | None, analyser: Callable[[], RecordingAnalyser]) -> None:
    """Open the window and run Tk's loop until it is closed."""
    try:
        root = tk.Tk()
    except tk.TclError as exc:
        raise ConfigError(f"cannot open a window ({exc}); over SSH use `edge-ser monitor --tui`") from None
    MonitorWindow(root, client, analyser)
    root.mainloop()
