import numpy as np
import pytest

from ssdiff.schedule import DEFAULT_SCHEDULE, ddim_steps, respaced_betas, uniform_steps


def test_linear_betas_match_ddpm():
    betas = DEFAULT_SCHEDULE.betas
    assert len(betas) == 1000
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(2e-2)
    assert DEFAULT_SCHEDULE.alpha_bar[0] == pytest.approx(1 - 1e-4)
    # alpha-bar at the last step of the linear schedule (Ho et al.): about 4.04e-5
    assert DEFAULT_SCHEDULE.alpha_bar[-1] == pytest.approx(4.0358e-5, rel=1e-3)
    assert DEFAULT_SCHEDULE.alpha_bar_at(-1) == 1.0


def test_ssd_reference_example():
    assert uniform_steps(549, 5) == [0, 137, 274, 412, 549]


@pytest.mark.parametrize("t0,count", [(550, 25), (550, 85), (750, 15), (100, 100)])
def test_uniform_steps_hit_both_ends(t0, count):
    steps = uniform_steps(t0 - 1, count)
    assert steps[0] == 0 and steps[-1] == t0 - 1
    assert len(steps) == count and steps == sorted(set(steps))


def test_duplicates_collapse_like_the_reference_set():
    assert uniform_steps(3, 10) == [0, 1, 2, 3]


def test_respaced_betas_reproduce_alpha_bar():
    steps = ddim_steps(50)
    betas = respaced_betas(DEFAULT_SCHEDULE.alpha_bar, steps)
    assert np.allclose(np.cumprod(1 - betas), DEFAULT_SCHEDULE.alpha_bar[steps])
