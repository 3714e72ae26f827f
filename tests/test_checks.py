"""bnnbook._checks.check_count: the one integer check every module uses for counts and sizes."""

import numpy as np
import pytest

from bnnbook._checks import check_count


def test_integers_at_or_above_the_minimum_come_back_as_int():
    assert check_count("n", 3) == 3
    value = check_count("n", np.int64(2), minimum=2)
    assert value == 2 and type(value) is int
    assert check_count("num_warmup", 0, minimum=0) == 0


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3", None])
def test_anything_else_is_a_value_error_naming_the_argument_and_the_hint(bad):
    with pytest.raises(ValueError, match=rf"^n={bad!r} must be an integer >= 1 \(the number of points\)$"):
        check_count("n", bad, hint="the number of points")


def test_the_minimum_is_in_the_message():
    with pytest.raises(ValueError, match=r"^num_repeats=1 must be an integer >= 2$"):
        check_count("num_repeats", 1, minimum=2)
