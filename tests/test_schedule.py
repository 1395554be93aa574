"""Behaviour of keyframed schedules: constants, interpolation, holds, cross-fades, the notation, errors."""

import math

import pytest

from dreamvid.config.schedule import Schedule
from dreamvid.core.errors import ConfigError

# ---- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [1.02, "1.02", " 1.02 ", "0:(1.02)", "50:(1.02)"])
def test_constant_is_the_same_everywhere(text):
    s = Schedule.parse(text, name="zoom")
    assert s.is_constant
    for frame in (0, 1, 49, 50, 51, 10_000):
        assert s.at(frame) == pytest.approx(1.02)


def test_int_constant_reads_as_float():
    s = Schedule.parse(3)
    assert s.at(7) == 3.0 and isinstance(s.at(7), float)


def test_linear_hits_keyframes_and_midpoints_are_means():
    s = Schedule.parse("0:(1.02), 120:(1.05), 240:(1.0)")
    assert not s.is_constant
    assert s.at(0) == pytest.approx(1.02)
    assert s.at(120) == pytest.approx(1.05)
    assert s.at(240) == pytest.approx(1.0)
    assert s.at(60) == pytest.approx((1.02 + 1.05) / 2)
    assert s.at(180) == pytest.approx((1.05 + 1.0) / 2)
    assert s.at(30) == pytest.approx(1.02 + 0.25 * (1.05 - 1.02))


def test_holds_first_value_before_and_last_value_after():
    s = Schedule.parse("10:(2), 20:(4)")
    assert s.at(0) == s.at(5) == s.at(10) == 2.0
    assert s.at(20) == s.at(21) == s.at(100_000) == 4.0


def test_keyframes_in_any_order_are_sorted():
    assert Schedule.parse("120:(1.05), 0:(1.02)") == Schedule.parse("0:(1.02), 120:(1.05)")


def test_smooth_passes_through_keyframes():
    text = "0:(1.0), 40:(3.0), 100:(2.0), 130:(5.0)"
    s = Schedule.parse(text, interpolation="smooth")
    for frame, value in zip(s.frames, s.values):
        assert s.at(frame) == pytest.approx(value)


def test_smooth_monotone_keys_stay_within_neighbours_and_monotone():
    # keys rising at uneven rates: a plain cubic spline would overshoot around the steep step
    s = Schedule.parse("0:(1.0), 10:(1.01), 20:(1.5), 30:(1.51), 90:(1.52)", interpolation="smooth")
    previous = -math.inf
    for k in range(len(s.frames) - 1):
        f0, f1 = s.frames[k], s.frames[k + 1]
        lo, hi = sorted((s.values[k], s.values[k + 1]))
        for i in range(11):
            v = s.at(f0 + (f1 - f0) * i / 10)
            assert lo - 1e-12 <= v <= hi + 1e-12
            assert v >= previous - 1e-12
            previous = v


def test_smooth_does_not_overshoot_a_peak():
    s = Schedule.parse("0:(1.0), 50:(2.0), 100:(1.0)", interpolation="smooth")
    assert max(s.at(f) for f in range(0, 101)) == pytest.approx(2.0)
    assert min(s.at(f) for f in range(0, 101)) == pytest.approx(1.0)


def test_smooth_eases_in_and_out_and_is_continuous():
    lin = Schedule.parse("0:(0), 100:(1)")
    smooth = Schedule.parse("0:(0), 100:(1)", interpolation="smooth")
    assert smooth.at(50) == pytest.approx(0.5)  # symmetric ease
    assert smooth.at(10) < lin.at(10)  # starts slower ...
    assert smooth.at(90) > lin.at(90)  # ... and arrives slower
    three = Schedule.parse("0:(0), 50:(1), 100:(3)", interpolation="smooth")
    eps = 1e-6
    assert three.at(50 - eps) == pytest.approx(three.at(50 + eps), abs=1e-5)


def test_fractional_frames_interpolate():
    s = Schedule.parse("0:(0), 10:(1)")
    assert s.at(2.5) == pytest.approx(0.25)


# ---- names ---------------------------------------------------------------------------------


def test_name_constant():
    s = Schedule.parse("mixed4c", kind=str, name="layer")
    assert s.is_constant and s.names == ["mixed4c"]
    assert s.weights_at(0) == {"mixed4c": 1.0}
    assert s.weights_at(999) == {"mixed4c": 1.0}


@pytest.mark.parametrize("interpolation", ["linear", "smooth"])
@pytest.mark.parametrize("fade", [None, 30])
def test_cross_fade_sums_to_one_and_moves_to_the_next_name(interpolation, fade):
    s = Schedule.parse("0:(mixed4c), 150:(mixed5a), 300:(mixed3b)", kind=str, interpolation=interpolation, fade=fade)
    assert s.names == ["mixed4c", "mixed5a", "mixed3b"]
    previous_b = 0.0
    for frame in range(0, 151):
        w = s.weights_at(frame)
        assert sum(w.values()) == pytest.approx(1.0)
        assert all(0.0 <= x <= 1.0 for x in w.values())
        assert set(w) <= {"mixed4c", "mixed5a"}
        b = w.get("mixed5a", 0.0)
        assert b >= previous_b - 1e-12  # the new name only gains weight
        previous_b = b
    assert s.weights_at(0) == {"mixed4c": 1.0}
    assert s.weights_at(150) == {"mixed5a": 1.0}
    assert s.weights_at(300) == s.weights_at(5000) == {"mixed3b": 1.0}


def test_cross_fade_window():
    s = Schedule.parse("0:(mixed4c), 150:(mixed5a)", kind=str, fade=30)
    assert s.weights_at(119) == {"mixed4c": 1.0}  # held until the fade starts
    assert s.weights_at(120) == {"mixed4c": 1.0}
    assert s.weights_at(135) == pytest.approx({"mixed4c": 0.5, "mixed5a": 0.5})
    whole = Schedule.parse("0:(mixed4c), 150:(mixed5a)", kind=str)  # fade over the whole interval
    assert whole.weights_at(75) == pytest.approx({"mixed4c": 0.5, "mixed5a": 0.5})
    short = Schedule.parse("0:(a), 10:(b)", kind=str, fade=30)  # fade longer than the interval
    assert short.weights_at(5) == pytest.approx({"a": 0.5, "b": 0.5})


def test_repeated_name_is_held_and_composite_values_are_opaque():
    s = Schedule.parse("0:(mixed4c:1.0;mixed3b:0.5), 50:(mixed4c:1.0;mixed3b:0.5), 100:(mixed5a)", kind=str)
    assert s.names == ["mixed4c:1.0;mixed3b:0.5", "mixed5a"]
    assert s.weights_at(25) == {"mixed4c:1.0;mixed3b:0.5": 1.0}


def test_numbers_and_names_do_not_mix_queries():
    with pytest.raises(TypeError):
        Schedule.parse("mixed4c", kind=str).at(0)
    with pytest.raises(TypeError):
        Schedule.parse("1.0").weights_at(0)


# ---- notation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind",
    [
        ("1.02", float),
        ("0:(1.02), 120:(1.05), 240:(1.0)", float),
        ("10:(0.1), 20:(-3.5)", float),
        ("mixed4c", str),
        ("0:(mixed4c), 150:(mixed5a)", str),
    ],
)
def test_str_round_trips(text, kind):
    s = Schedule.parse(text, kind=kind)
    assert str(s) == text
    assert Schedule.parse(str(s), kind=kind) == s


def test_spacing_and_trailing_comma_are_tolerated():
    assert Schedule.parse(" 0 : ( 1.5 ) ,120:(2),") == Schedule.parse("0:(1.5), 120:(2)")


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("0:(1.02), x", "keyframe 2"),
        ("0:1.02", "FRAME:(VALUE)"),
        ("abc", "neither a number nor keyframes"),
        ("-5:(1.0)", "negative frame"),
        ("0:(1.0), 0:(2.0)", "two keyframes"),
        ("0:(1.0), 10:(2.0), 10:(3.0)", "two keyframes"),
        ("0:(fast)", "not a number"),
        ("0:(nan)", "not finite"),
        ("0:(inf), 10:(1)", "not finite"),
        ("1.5:(2)", "whole number"),
        ("0:(1.0", "parentheses"),
        (float("nan"), "not finite"),
    ],
)
def test_malformed_numeric_schedules_raise_config_error_naming_the_fix(text, expected):
    with pytest.raises(ConfigError) as info:
        Schedule.parse(text, name="zoom")
    message = str(info.value)
    assert expected in message
    assert message.startswith("zoom schedule")
    assert "\n" not in message
    # every message says what to write instead
    assert any(hint in message for hint in ("write", "use", "keep", "start at", "give"))


@pytest.mark.parametrize("text", ["", "0:()", "0:(mixed4c), 10:(a,b)", "0:(mixed4c), 0:(mixed5a)", "0:(mixed4c"])
def test_malformed_name_schedules_raise_config_error(text):
    with pytest.raises(ConfigError, match="layer schedule"):
        Schedule.parse(text, name="layer", kind=str)


def test_number_for_a_name_schedule_and_bad_options_raise_config_error():
    with pytest.raises(ConfigError):
        Schedule.parse(3.0, kind=str)
    with pytest.raises(ConfigError, match="linear, smooth"):
        Schedule.parse("1.0", interpolation="cubic")
    with pytest.raises(ConfigError, match="fade"):
        Schedule.parse("0:(a), 10:(b)", kind=str, fade=0)
    with pytest.raises(ConfigError):
        Schedule.parse(None)
