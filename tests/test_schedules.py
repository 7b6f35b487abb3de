import pytest

from wmprune.pruning.schedules import build_schedule


def test_cubic_at_known_points():
    # Zhu & Gupta eq. 1 with s_f = 0.9 over steps 100..500, updated every 100 steps.
    schedule = build_schedule("cubic", 0.9, start_epoch=1, end_epoch=5, every_steps=100, steps_per_epoch=100)
    assert schedule.target(0) == 0.0
    assert schedule.target(99) == 0.0
    assert schedule.target(100) == 0.0
    assert schedule.target(200) == pytest.approx(0.9 * (1 - 0.75 ** 3))
    assert schedule.target(300) == pytest.approx(0.9 * (1 - 0.5 ** 3))
    assert schedule.target(399) == pytest.approx(0.9 * (1 - 0.5 ** 3))  # held between updates
    assert schedule.target(500) == 0.9
    assert schedule.target(10_000) == 0.9


def test_update_steps_include_the_end():
    schedule = build_schedule("linear", 0.5, start_epoch=0, end_epoch=1, every_steps=30, steps_per_epoch=100)
    updates = [step for step in range(0, 200) if schedule.is_update(step)]
    assert updates == [0, 30, 60, 90, 100]
    assert schedule.target(60) == pytest.approx(0.5 * 0.6)


def test_oneshot_jumps_at_start():
    schedule = build_schedule("oneshot", 0.8, start_epoch=3, end_epoch=6, every_steps=10, steps_per_epoch=10)
    assert schedule.target(29) == 0.0
    assert schedule.is_update(30) and schedule.target(30) == 0.8
