"""Assertions shared by the dream tests."""


def assert_gradient_ascent(dreamer, image, rounds: int = 3, steps: int = 3) -> None:
    """The objective rises after every `steps` ascent steps, `rounds` times (after lucid's
    assert_gradient_ascent)."""
    values = [dreamer.objective_value(image)]
    for _ in range(rounds):
        image = dreamer.ascend(image, iterations=steps)
        values.append(dreamer.objective_value(image))
    assert all(b > a for a, b in zip(values, values[1:])), values
