"""Training output a user watches: the progress bar with its ETA, on a terminal and into a log, and
the training-curve plot of a short run."""

from __future__ import annotations

import io
import re
import sys

import pytest

from edge_ser_train.fit import History
from edge_ser_train.progress import Progress, clock_text
from edge_ser_train.report import curves_figure


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after `raw`: a carriage return moves the cursor to the line's
    start, text overwrites from the cursor, ESC[K erases from the cursor to the end of the line."""
    lines, line, cursor = [], "", 0
    for token in re.split(r"(\r|\n|\x1b\[K)", raw):
        if token == "\r":
            cursor = 0
        elif token == "\n":
            lines.append(line)
            line, cursor = "", 0
        elif token == "\x1b[K":
            line = line[:cursor]
        else:
            line = line[:cursor] + token + line[cursor + len(token):]
            cursor += len(token)
    return [*lines, line] if line else lines


def test_into_a_log_it_writes_a_line_now_and_then_with_the_eta() -> None:
    log, clock = io.StringIO(), Clock()
    with Progress(10, "features", "clips", stream=log, interval=30, clock=clock) as progress:
        for _ in range(5):
            clock.now += 8  # 40 s for 5 clips: 8 s a clip, 5 left
            progress.advance()
        clock.now += 50
        progress.advance(5)
    assert log.getvalue().splitlines() == [
        "features: 4/10 clips (40 %), 0:32 elapsed, ETA 0:48",  # the first update 30 s after the start
        "features: 10 clips in 1:30",
    ]
    assert "\r" not in log.getvalue()


def test_epochs_an_early_stop_skips_leave_the_total_not_the_rate() -> None:
    clock = Clock()
    with Progress(10, "training", "epochs", stream=io.StringIO(), clock=clock) as progress:
        clock.now += 20
        progress.advance(2)
        progress.drop(5)  # stopped early: 5 epochs that will not run
        assert progress.text() == "2/5 epochs (40 %), 0:20 elapsed, ETA 0:30"
        progress.drop(9)  # never below what is done
        assert progress.text() == "2/2 epochs (100 %), 0:20 elapsed, done"


def test_on_a_terminal_the_bar_stays_under_what_is_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal, clock = Terminal(), Clock()
    monkeypatch.setattr(sys, "stdout", terminal)
    with Progress(4, "training", "epochs", clock=clock) as progress:
        for epoch in range(4):
            clock.now += 10
            print(f"  epoch {epoch + 1}/4  loss 1.0")
            progress.advance()
            if epoch == 1:
                assert screen(terminal.getvalue())[-1] == (
                    "training [############............] 2/4 epochs (50 %), 0:20 elapsed, ETA 0:20")
    assert sys.stdout is terminal  # given back
    print("after")
    assert screen(terminal.getvalue()) == [
        "  epoch 1/4  loss 1.0", "  epoch 2/4  loss 1.0", "  epoch 3/4  loss 1.0", "  epoch 4/4  loss 1.0",
        "training [########################] 4/4 epochs (100 %), 0:40 elapsed, done",
        "after",
    ]


def test_a_hidden_bar_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(3, "features", "clips", show=False) as progress:
        assert list(progress.track("abc")) == ["a", "b", "c"]
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00"), (59.6, "1:00"), (754, "12:34"), (3723, "1:02:03")])
def test_clock_text(seconds: float, text: str) -> None:
    assert clock_text(seconds) == text


@pytest.mark.parametrize("validated", [False, True])
def test_the_curves_of_a_short_run_have_whole_epochs_and_visible_points(validated: bool) -> None:
    """Three folds of 1 to 3 epochs: ticks at whole epochs only, every epoch a marker (a curve of
    one epoch is otherwise a line of length zero), nothing cut off to the left or right."""
    nan = float("nan")
    histories = [History([1.4, 1.2, 1.1], [1.5, 1.3, 1.35] if validated else [nan] * 3,
                         [0.3, 0.5, 0.45] if validated else [nan] * 3, 1),
                 History([1.3], [1.4] if validated else [nan], [0.4] if validated else [nan], 0),
                 History([1.5, 1.1], [1.6, 1.2] if validated else [nan] * 2, [0.2, 0.4] if validated else [nan] * 2, 1)]
    fig = curves_figure(histories)
    try:
        axes = fig.axes if not validated else fig.axes[:2]
        assert len(axes) == (2 if validated else 1)
        for ax in axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks) and set(ticks) <= {1, 2, 3}
            assert ax.get_xlim()[0] < 1 and ax.get_xlim()[1] > 3
            curves = [line for line in ax.get_lines()  # not the chosen-epoch marks (vertical lines)
                      if not (len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1])]
            assert curves and all(line.get_marker() == "o" for line in curves)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
