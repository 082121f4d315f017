"""The terminal view's keys on their own: which device a key chooses and what is (not) sent.
The whole path through a real terminal, broker and daemon is in test_monitor_terminal."""

from __future__ import annotations

from edge_ser.monitor.keys import Controls

DEVICES = ["kiosk-a", "kiosk-b", "robot"]


def controls() -> tuple[Controls, list[tuple[str, str]]]:
    sent: list[tuple[str, str]] = []

    def send(device_id: str, command: str) -> str:
        sent.append((device_id, command))
        return f"monitor-{len(sent)}"

    return Controls(send), sent


def test_tab_walks_round_the_devices_and_digits_choose_one() -> None:
    keys, _ = controls()
    assert keys.keep_valid(DEVICES) == "kiosk-a"
    for expected in ("kiosk-b", "robot", "kiosk-a"):
        assert keys.press("\t", DEVICES, connected=True)
        assert keys.selected == expected
    keys.press("3", DEVICES, connected=True)
    assert keys.selected == "robot"
    keys.press("7", DEVICES, connected=True)
    assert keys.selected == "robot" and keys.message == "no device 7: 3 shown"


def test_command_keys_go_to_the_chosen_device_only_when_connected() -> None:
    keys, sent = controls()
    keys.press("2", DEVICES, connected=True)
    keys.press("r", DEVICES, connected=True)
    keys.press("p", DEVICES, connected=False)
    assert sent == [("kiosk-b", "reset_adaptation")]
    assert keys.message == "pause not sent to kiosk-b: the monitor is not connected"
    keys.press("u", DEVICES, connected=True)
    assert sent[-1] == ("kiosk-b", "resume") and keys.message.startswith("sent resume to kiosk-b (id monitor-2)")


def test_a_chosen_device_that_goes_away_hands_over_to_the_first_and_q_quits() -> None:
    keys, sent = controls()
    keys.press("3", DEVICES, connected=True)
    assert keys.keep_valid(DEVICES[:2]) == "kiosk-a"
    assert keys.press("s", [], connected=True) and sent == []
    assert keys.message == "status: no device to send it to"
    assert keys.press("q", DEVICES, connected=True) is False
