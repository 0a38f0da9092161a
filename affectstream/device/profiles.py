"""Device profiles: the registry of supported wearables and matching advertisements to them.

Each protocol module defines its :class:`~affectstream.device.driver.Profile` (what the
device advertises and streams) and :class:`~affectstream.device.driver.ProfileDriver`
(how to start it and decode it); this module collects them in :data:`PROFILES` and finds the
profile a scanned device matches.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from affectstream.device import eda_band, ganglion, gatt, heart_rate, muse, polar
from affectstream.device.driver import Profile
from affectstream.errors import ConfigError

#: Profiles by name, specific ones first: :func:`match_profile` tries them in this order,
#: so the generic heart-rate profile ("hr") comes last.
PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (polar.PROFILE, muse.PROFILE, eda_band.PROFILE, ganglion.PROFILE, heart_rate.PROFILE)
}


def normalize_uuid(uuid: str) -> str:
    """Lower-case 128-bit form of a UUID given as 16-bit (``"180d"``) or 128-bit string.

    Parameters
    ----------
    uuid : str
        UUID string.

    Returns
    -------
    str
    """
    text = uuid.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    if len(text) == 4:
        return gatt.sig_uuid(int(text, 16))
    return text


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``.

    Parameters
    ----------
    name : str
        One of ``"hr"``, ``"polar"``, ``"eda"``, ``"muse"``, ``"ganglion"``.

    Returns
    -------
    Profile

    Raises
    ------
    ConfigError
        If the name is unknown.
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"Unknown device profile {name!r}; known profiles are {sorted(PROFILES)}."
        ) from None


def match_profile(name: str | None, service_uuids: Iterable[str] = ()) -> Profile | None:
    """Find the profile a device matches by advertised name or services.

    Specific profiles are tried before the generic heart-rate profile, so a Polar H10 that
    also advertises the Heart Rate service is recognised as ``polar``.

    Parameters
    ----------
    name : str or None
        Advertised (local) name.
    service_uuids : iterable of str
        Advertised service UUIDs.

    Returns
    -------
    Profile or None
    """
    advertised = {normalize_uuid(u) for u in service_uuids}
    for profile in PROFILES.values():  # insertion order: specific first, "hr" last
        if name and any(fnmatch.fnmatchcase(name, p) for p in profile.name_patterns):
            return profile
        if advertised & set(profile.service_uuids):
            return profile
    return None
