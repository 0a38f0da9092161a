"""GATT identifiers of every device profile affectstream speaks.

Sources: Bluetooth SIG assigned numbers (Heart Rate, Battery), Polar's BLE SDK (PMD),
muse-lsl (Muse), OpenBCI_Python (Ganglion). The EDA band profile is affectstream's own open
profile, specified in ``firmware_notes/eda-band.md``.
"""

from __future__ import annotations


def sig_uuid(short: int) -> str:
    """Expand a 16-bit Bluetooth SIG UUID to its 128-bit string form.

    Parameters
    ----------
    short : int
        The 16-bit assigned number, e.g. ``0x180D``.

    Returns
    -------
    str
        Lower-case 128-bit UUID.
    """
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


# Standard Heart Rate service.
HEART_RATE_SERVICE = sig_uuid(0x180D)
HEART_RATE_MEASUREMENT = sig_uuid(0x2A37)
BODY_SENSOR_LOCATION = sig_uuid(0x2A38)

# Standard Battery service.
BATTERY_SERVICE = sig_uuid(0x180F)
BATTERY_LEVEL = sig_uuid(0x2A19)

# Polar Measurement Data (PMD).
PMD_SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

# Muse 2 / Muse S (classic protocol).
MUSE_SERVICE = sig_uuid(0xFE8D)


def muse_uuid(suffix: int) -> str:
    """Return the Muse characteristic UUID ``273eXXXX-4c4d-454d-96be-f03bac821358``.

    Parameters
    ----------
    suffix : int
        The ``XXXX`` part, e.g. ``0x0003`` for TP9.

    Returns
    -------
    str
    """
    return f"273e{suffix:04x}-4c4d-454d-96be-f03bac821358"


MUSE_CONTROL = muse_uuid(0x0001)
MUSE_EEG = {
    "TP9": muse_uuid(0x0003),
    "AF7": muse_uuid(0x0004),
    "AF8": muse_uuid(0x0005),
    "TP10": muse_uuid(0x0006),
    "AUX": muse_uuid(0x0007),
}
MUSE_GYRO = muse_uuid(0x0009)
MUSE_ACC = muse_uuid(0x000A)
MUSE_TELEMETRY = muse_uuid(0x000B)
MUSE_PPG = (muse_uuid(0x000F), muse_uuid(0x0010), muse_uuid(0x0011))

# OpenBCI Ganglion.
GANGLION_SERVICE = sig_uuid(0xFE84)
GANGLION_RECEIVE = "2d30c082-f39f-4ce6-923f-3484ea480596"
GANGLION_SEND = "2d30c083-f39f-4ce6-923f-3484ea480596"
GANGLION_DISCONNECT = "2d30c084-f39f-4ce6-923f-3484ea480596"

# affectstream open EDA band profile (firmware_notes/eda-band.md): base UUID
# ba1dXXXX-d3c8-4bf6-b02e-c9658c440af0.
EDA_SERVICE = "ba1d0001-d3c8-4bf6-b02e-c9658c440af0"
EDA_MEASUREMENT = "ba1d0002-d3c8-4bf6-b02e-c9658c440af0"  # notify
EDA_CONFIG = "ba1d0003-d3c8-4bf6-b02e-c9658c440af0"  # read/write: sample rate
EDA_CONTROL = "ba1d0004-d3c8-4bf6-b02e-c9658c440af0"  # write: start/stop
