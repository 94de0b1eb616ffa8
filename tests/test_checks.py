"""The notebooks' test helpers: what they accept, what they refuse, and what their messages say.

A student reads these messages when a visible test fails, so each test pins the
part of the message that tells them what to do.
"""

import numpy as np
import pytest

from course_lib import checks


# ------------------------------------------------------------------ check_close

def test_close_values_pass_and_the_tolerance_is_the_documented_one():
    expected = np.array([1.0, -200.0, 0.0])
    rtol, atol = 1e-6, 1e-8
    tol = atol + rtol * np.abs(expected)
    checks.check_close(expected + 0.99 * tol, expected, rtol=rtol, atol=atol)
    for i in range(3):                      # just past the bound on any one entry fails
        off = expected.copy()
        off[i] += 1.01 * tol[i]
        with pytest.raises(AssertionError, match=rf"wrong at index \({i},\)"):
            checks.check_close(off, expected, rtol=rtol, atol=atol)


def test_message_names_the_worst_entry_with_both_values():
    expected = np.zeros((2, 3))
    value = expected.copy()
    value[0, 1], value[1, 2] = 0.5, 3.0
    with pytest.raises(AssertionError, match=r"x is wrong at index \(1, 2\): expected 0, got 3\."):
        checks.check_close(value, expected, name="x")


def test_wrong_sign_is_pointed_out():
    expected = np.array([1.0, -2.0, 3.0])
    with pytest.raises(AssertionError, match="Every entry has the wrong sign"):
        checks.check_close(-expected, expected)
    with pytest.raises(AssertionError) as err:
        checks.check_close(expected + 1, expected)
    assert "sign" not in str(err.value)


def test_hint_is_appended():
    with pytest.raises(AssertionError, match=r"got 2\. Did you average over the batch\?$"):
        checks.check_close(np.array([2.0]), np.array([1.0]), hint="Did you average over the batch?")


def test_non_finite_results_are_explained():
    with pytest.raises(AssertionError, match=r"contains nan at index \(1,\).*overflow in exp"):
        checks.check_close(np.array([0.0, np.nan]), np.array([0.0, 1.0]))


def test_matching_infinities_and_nans_pass():
    checks.check_close(np.array([1.0, -np.inf, np.inf]), np.array([1.0, -np.inf, np.inf]))
    checks.check_close(np.array([np.nan, 2.0]), np.array([np.nan, 2.0]))
    with pytest.raises(AssertionError, match=r"index \(1,\)"):
        checks.check_close(np.array([1.0, np.inf]), np.array([1.0, -np.inf]))


def test_boolean_and_integer_arrays_compare_as_numbers():
    checks.check_close(np.array([1, 0]), np.array([True, False]))
    checks.check_close(np.array([True, False]), np.array([1.0, 0.0]))
    with pytest.raises(AssertionError, match=r"index \(0,\): expected 1, got 0"):
        checks.check_close(np.array([False, False]), np.array([True, False]))


def test_shape_is_checked_before_values():
    with pytest.raises(AssertionError, match=r"shape \(3, 2\) but should have shape \(2, 3\)"):
        checks.check_close(np.zeros((3, 2)), np.zeros((2, 3)))


# --------------------------------------------------------------- check_shape

@pytest.mark.parametrize("shape, hint", [
    ((3, 2), "forget a transpose"),
    ((6,), "number of entries is right"),
    ((2,), "One axis is missing"),
    ((2, 3, 1, 4), None),
    ((2, 3, 4), "one axis too many"),
])
def test_shape_hints(shape, hint):
    with pytest.raises(AssertionError) as err:
        checks.check_shape(np.zeros(shape), (2, 3), name="W")
    message = str(err.value)
    assert message.startswith(f"W has shape {shape} but should have shape (2, 3).")
    if hint:
        assert hint in message
    else:
        assert message.endswith("(2, 3).")


def test_none_and_non_arrays_are_named():
    with pytest.raises(AssertionError, match="dx is None: did you forget a `return` statement"):
        checks.check_close(None, np.zeros(2), name="dx")
    with pytest.raises(AssertionError, match="should be a numeric array"):
        checks.check_shape({"a": 1}, (1,))
    checks.check_shape([[1, 2, 3]], (1, 3))                 # lists are arrays too


# ----------------------------------------------------- check_scalar, check_true

def test_check_scalar():
    checks.check_scalar(2.0, 2.0)
    checks.check_scalar(np.array([2.0]), 2.0)               # a one-entry array is a number
    with pytest.raises(AssertionError, match=r"single number.*shape \(3,\).*sum or average"):
        checks.check_scalar(np.ones(3), 3.0)
    with pytest.raises(AssertionError, match="expected 3, got 2"):
        checks.check_scalar(2.0, 3.0)


def test_check_true():
    checks.check_true(np.bool_(True), "unused")
    with pytest.raises(AssertionError, match="^the loss must decrease$"):
        checks.check_true(False, "the loss must decrease")


# -------------------------------------------------------------------- rng_for

def test_rng_for_depends_on_the_label_and_the_secret(monkeypatch):
    monkeypatch.delenv(checks.SECRET_ENV, raising=False)
    a = checks.rng_for("relu").random(4)
    np.testing.assert_array_equal(a, checks.rng_for("relu").random(4))    # repeatable
    assert not np.array_equal(a, checks.rng_for("sigmoid").random(4))
    monkeypatch.setenv(checks.SECRET_ENV, "grader's secret")
    assert not np.array_equal(a, checks.rng_for("relu").random(4))        # unpredictable when graded
