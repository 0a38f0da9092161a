"""Profile registry: matching advertised names and services."""

from __future__ import annotations

import pytest

from affectstream.device import gatt
from affectstream.device.profiles import PROFILES, get_profile, match_profile
from affectstream.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "services", "expected"),
    [
        ("Polar H10 A1B2C3D4", [gatt.HEART_RATE_SERVICE], "polar"),
        ("Muse-1A2B", [], "muse"),
        ("AS-EDA-00F1", [], "eda"),
        ("Ganglion-3f2a", [], "ganglion"),
        ("Wahoo TICKR", ["180d"], "hr"),
        (None, [gatt.EDA_SERVICE], "eda"),
        (None, [gatt.PMD_SERVICE.upper()], "polar"),
        (None, ["0xfe8d"], "muse"),
        ("Phone", [gatt.BATTERY_SERVICE], None),
    ],
)
def test_match_profile(name: str | None, services: list[str], expected: str | None) -> None:
    profile = match_profile(name, services)
    assert (profile.name if profile else None) == expected


def test_registry() -> None:
    assert set(PROFILES) == {"hr", "polar", "eda", "muse", "ganglion"}
    assert get_profile("polar").stream("ecg").sfreq == 130
    with pytest.raises(ConfigError, match="Unknown device profile"):
        get_profile("fitbit")
    with pytest.raises(ConfigError):
        get_profile("hr").stream("ecg")
