"""The network's CPU threads: every free core alone, fewer beside busy processes, fixed when told."""

import pytest
import torch

from ssdiff import threads
from ssdiff.cli import main


@pytest.fixture()
def governor(monkeypatch):
    """A fresh adaptive governor on 2 cores whose CPU readings the test supplies, and torch's count restored."""
    fresh = threads._Governor()
    monkeypatch.setattr(threads, "_GOVERNOR", fresh)
    monkeypatch.setattr(fresh, "cores", lambda: 2)
    clock = {"now": 100.0}
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock["now"])
    readings = []
    monkeypatch.setattr(threads, "_cpu_ticks", lambda: readings.pop(0))
    saved = torch.get_num_threads()
    yield fresh, clock, readings
    torch.set_num_threads(saved)


def look(clock, readings, busy, ours, seconds=1.0):
    """One look after ``seconds``: all CPUs' and this process's busy ticks since the start."""
    clock["now"] += seconds
    readings.append((busy, ours))
    threads.adapt()


def test_threads_follow_the_other_processes_load(governor):
    _, clock, readings = governor
    ticks = threads._TICKS
    torch.set_num_threads(2)
    look(clock, readings, 0, 0)  # the first look only takes a reading
    assert torch.get_num_threads() == 2
    look(clock, readings, 2.0 * ticks, 2.0 * ticks)  # we used both cores: nobody else
    assert torch.get_num_threads() == 2
    look(clock, readings, 4.0 * ticks, 3.0 * ticks)  # another process took a whole core
    assert torch.get_num_threads() == 1
    look(clock, readings, 6.0 * ticks, 4.0 * ticks)  # still there
    assert torch.get_num_threads() == 1
    look(clock, readings, 7.0 * ticks, 5.0 * ticks)  # gone again
    assert torch.get_num_threads() == 2


def test_looks_are_spaced_and_a_callers_own_count_stands(governor):
    fresh, clock, readings = governor
    look(clock, readings, 0, 0)
    clock["now"] += threads.INTERVAL / 2
    threads.adapt()  # too soon: no reading taken (none supplied, pop would fail)
    torch.set_num_threads(1)
    fresh.last_set = 2  # ssdiff had set 2 before the caller chose 1
    threads.adapt()
    assert fresh.fixed == 1 and torch.get_num_threads() == 1


def test_a_fixed_count_is_kept_and_restored_after_a_command(governor, monkeypatch):
    fresh, clock, readings = governor
    torch.set_num_threads(2)
    with threads.configured(1):
        assert torch.get_num_threads() == 1 and threads.os.environ[threads.ENV] == "1"
        look(clock, readings, 0, 0)  # a fixed count takes no reading and changes nothing
        assert torch.get_num_threads() == 1 and readings
    assert torch.get_num_threads() == 2 and fresh.fixed is None
    assert threads.ENV not in threads.os.environ


@pytest.mark.parametrize("text,expected", [("auto", None), ("", None), ("3", 3)])
def test_thread_counts_parse(text, expected):
    assert threads.parse_threads(text) == expected


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_a_bad_thread_count_is_one_line_before_any_work(value, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["degrade", str(tmp_path), "--task", "colorization", "--out", str(tmp_path / "o"), "--threads", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--threads" in err[0] and "positive integer or auto" in err[0]
    assert not (tmp_path / "o").exists()


def test_every_command_takes_threads(capsys):
    for command in ("demo", "examples", "restore", "degrade", "bench", "tune", "train", "models", "app"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--threads" in capsys.readouterr().out
