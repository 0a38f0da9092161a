"""WindowConfig validation: bad values give a ConfigError that names the parameter."""

from __future__ import annotations

import pytest

from affectstream.errors import ConfigError
from affectstream.signal import WindowConfig


def test_defaults_are_sixty_second_windows_every_five_seconds() -> None:
    config = WindowConfig()
    assert (config.window, config.step) == (60.0, 5.0)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"window": 0.0}, "window"),
        ({"step": -1.0}, "step"),
        ({"window": 10.0, "step": 20.0}, "step"),
        ({"window": 3.0, "step": 1.0}, "window"),
        ({"min_quality": 1.5}, "min_quality"),
        ({"line_freq": 55.0}, "line_freq"),
        ({"scr_min_amplitude": float("nan")}, "scr_min_amplitude"),
        ({"origin": float("inf")}, "origin"),
    ],
)
def test_bad_values_raise_config_error_naming_the_parameter(
    kwargs: dict[str, float], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        WindowConfig(**kwargs)  # type: ignore[arg-type]


def test_config_is_frozen() -> None:
    config = WindowConfig()
    with pytest.raises(AttributeError):
        config.window = 30.0  # type: ignore[misc]
