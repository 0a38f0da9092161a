"""OpenBCI Ganglion: raw and 18/19-bit delta-compressed EEG packets.

Sources: openbci-archive/OpenBCI_Python ``openbci/ganglion.py``; BrainFlow's Ganglion scale.
Newer Ganglion firmware (3.x) may differ.

Byte 0 is the packet id: 0 carries 4 channels as int24 big-endian (one sample); 1-100 carry
two samples × 4 channels as 18-bit deltas, 101-200 as 19-bit deltas (bit-packed big-endian,
sample 1 channels 1-4 then sample 2). A delta is negative when its least-significant bit is
set (then the value is sign-extended from its top bit). Each sample is the previous sample
minus the delta, so the decoder keeps state between packets.

:class:`GanglionDriver` sends ``b``/``s`` and decodes with a :class:`GanglionDecoder`;
:data:`PROFILE` registers it as ``"ganglion"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from affectstream.device import gatt
from affectstream.device.driver import Frame, GattClient, Profile, ProfileDriver, stream_spec
from affectstream.device.payload import int24
from affectstream.errors import DecodeError
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

SAMPLE_RATE = 200.0
N_CHANNELS = 4
CHANNELS = ("ch1", "ch2", "ch3", "ch4")
#: µV per count: 1.2 V reference, gain 1.5 × 51, 24-bit converter.
SCALE_UV = 1.2e6 / (8388607.0 * 1.5 * 51.0)
#: Samples in one cycle of delta packet ids (100 packets × 2 samples).
COUNTER_MODULUS = 200
CMD_START = b"b"
CMD_STOP = b"s"


@dataclass(frozen=True, slots=True)
class GanglionPacket:
    """One decoded Ganglion data packet.

    Parameters
    ----------
    packet_id : int
        Byte 0 of the packet.
    counter : int
        Sample counter of the first sample within the 200-sample cycle: the raw packet
        (id 0) is sample 0, delta packet ``k`` holds samples ``2(k-1)+1`` and ``2(k-1)+2``
        (ids 101-200 count like 1-100), modulo 200.
    values : ndarray, shape (n, 4)
        Samples in µV (1 for raw, 2 for delta packets).
    baseline_valid : bool
        False when the decoder has not yet seen a raw packet, so absolute values are
        offset by an unknown constant per channel (differences are still right).
    """

    packet_id: int
    counter: int
    values: FloatArray
    baseline_valid: bool


def _unpack_bits(payload: bytes, bits: int) -> np.ndarray:
    """Eight big-endian ``bits``-wide fields from ``payload`` as signed deltas."""
    flat = np.unpackbits(np.frombuffer(payload[:bits], dtype=np.uint8))
    fields = flat[: 8 * bits].reshape(8, bits).astype(np.int64)
    raw = fields @ (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))
    # OpenBCI's convention: a set LSB marks a negative number, sign-extended from the top.
    return np.where(raw & 1, raw - (1 << bits), raw)


class GanglionDecoder:
    """Stateful Ganglion packet decoder (delta packets depend on the previous sample)."""

    def __init__(self) -> None:
        self._last: np.ndarray = np.zeros(N_CHANNELS, dtype=np.int64)
        self._baseline_valid = False

    def reset(self) -> None:
        """Forget the previous sample (after a reconnect)."""
        self._last = np.zeros(N_CHANNELS, dtype=np.int64)
        self._baseline_valid = False

    def decode(self, data: bytes | bytearray) -> GanglionPacket | None:
        """Decode one notification.

        Parameters
        ----------
        data : bytes
            The notification payload.

        Returns
        -------
        GanglionPacket or None
            None for impedance (201-205) and ASCII (206-207) packets.

        Raises
        ------
        DecodeError
            If the packet is shorter than its id requires or the id is unknown.
        """
        payload = bytes(data)
        if not payload:
            raise DecodeError("Ganglion packet is empty.")
        packet_id = payload[0]
        if packet_id == 0:
            if len(payload) < 13:
                raise DecodeError(
                    f"Ganglion raw packet needs 13 bytes (id + 4 × int24), got "
                    f"{len(payload)}: {payload.hex()!r}."
                )
            raw = int24(payload[1:13], "big", signed=True)
            self._last = raw
            self._baseline_valid = True
            return GanglionPacket(0, 0, raw[None, :].astype(np.float64) * SCALE_UV, True)
        if 1 <= packet_id <= 200:
            bits = 18 if packet_id <= 100 else 19
            if len(payload) < 1 + bits:
                raise DecodeError(
                    f"Ganglion {bits}-bit delta packet {packet_id} needs {1 + bits} bytes, got "
                    f"{len(payload)}: {payload.hex()!r}."
                )
            deltas = _unpack_bits(payload[1 : 1 + bits], bits).reshape(2, N_CHANNELS)
            first = self._last - deltas[0]
            second = first - deltas[1]
            self._last = second
            counter = 2 * ((packet_id - 1) % 100) + 1
            values = np.stack([first, second]).astype(np.float64) * SCALE_UV
            return GanglionPacket(packet_id, counter, values, self._baseline_valid)
        if 201 <= packet_id <= 207:
            return None
        raise DecodeError(f"Ganglion packet id {packet_id} is unknown (expected 0-207).")


# -- driver -------------------------------------------------------------------------


class GanglionDriver(ProfileDriver):
    """OpenBCI Ganglion: 'b' to start, 's' to stop, stateful delta decoding."""

    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        self._decoder = GanglionDecoder()

    def notify_uuids(self, client: GattClient) -> list[str]:
        return [gatt.GANGLION_RECEIVE]

    def decode(self, uuid: str, data: bytes) -> list[Frame]:
        packet = self._decoder.decode(data)
        if packet is None:
            return []
        return [Frame("eeg", packet.values, packet.counter)]

    async def start(self, client: GattClient) -> None:
        await client.write_gatt_char(gatt.GANGLION_SEND, CMD_START, False)

    async def stop(self, client: GattClient) -> None:
        await client.write_gatt_char(gatt.GANGLION_SEND, CMD_STOP, False)

    def on_reconnect(self) -> None:
        self._decoder.reset()


#: The profile of this protocol (registered in :data:`affectstream.device.profiles.PROFILES`).
PROFILE = Profile(
    name="ganglion",
    description="OpenBCI Ganglion EEG board",
    service_uuids=(gatt.GANGLION_SERVICE,),
    name_patterns=("Ganglion*",),
    streams=(stream_spec("eeg", "eeg", CHANNELS, SAMPLE_RATE, COUNTER_MODULUS),),
    driver=GanglionDriver,
)
