"""``Supervisor.device_states()``: the read-only per-device snapshot status displays poll.

End to end over the emulated BLE stack (bleak -> bumble -> emulated GATT servers), as in
``test_e2e_profiles``: the states come from what the devices really sent.
"""

from __future__ import annotations

from affectstream.device.emulation import VirtualRadio
from affectstream.device.emulation.eda import EdaBand
from affectstream.device.emulation.heart_rate import HeartRateStrap
from affectstream.device.emulation.muse import MuseHeadset
from affectstream.device.lsl import CombinedSource
from affectstream.device.supervisor import DeviceState, Supervisor

from ._e2e import drop_and_resume, received, target, wait_until

SPEED = 4.0


def _state(sup: Supervisor, name: str) -> DeviceState:
    (state,) = [s for s in sup.device_states() if s.name == name]
    return state


async def test_states_follow_link_contact_battery_and_gaps(radio: VirtualRadio) -> None:
    band = EdaBand(speed=SPEED, battery=10)  # below 15 %: the band sets its battery-low flag
    band.contact = False
    strap = HeartRateStrap(speed=SPEED)  # reports contact supported and detected
    muse = MuseHeadset(speed=SPEED)
    muse.battery = 57
    for p in (band, strap, muse):
        await radio.add(p)
    sup = Supervisor(
        [target(p) for p in (band, strap, muse)],
        client_kwargs=radio.client_kwargs(),
        scanner_kwargs=radio.scanner_kwargs(),
        backoff_initial=0.1,
        on_block=lambda _block: None,
    )
    assert {s.link for s in sup.device_states()} == {"connecting"}
    await sup.start()
    try:
        await wait_until(lambda: received(sup, f"{band.name}/eda") > 0, "EDA samples")
        await wait_until(lambda: received(sup, f"{strap.name}/hr") > 0, "HR samples")
        eda = _state(sup, band.name)
        assert (eda.profile, eda.link, eda.connected) == ("eda", "connected", True)
        assert (eda.contact, eda.battery_low, eda.battery) == (False, True, None)
        hr = _state(sup, strap.name)
        assert (hr.contact, hr.battery_low, hr.battery) == (True, None, None)
        m = _state(sup, muse.name)
        assert (m.contact, m.battery_low, m.battery) == (None, None, 57.0)
        assert all(s.reconnects == 0 and s.gaps == 0 for s in sup.device_states())

        band.contact = True
        await wait_until(lambda: _state(sup, band.name).contact is True, "contact back")

        links: set[str] = set()

        async def drop() -> None:
            await band.disconnect()
            await wait_until(
                lambda: links.add(_state(sup, band.name).link) or "reconnecting" in links,
                "the band's state saying it is reconnecting",
            )

        await drop_and_resume(sup, band, f"{band.name}/eda", drop, before=0.2, after=0.2)
        eda = _state(sup, band.name)
        stats = sup.stats()[f"{band.name}/eda"]
        assert (eda.link, eda.reconnects) == ("connected", 1)
        assert eda.gaps == stats.gaps >= 1  # the disconnect left a gap
        assert eda.gap_samples == stats.gap_samples
        assert _state(sup, strap.name).reconnects == 0
    finally:
        await sup.stop()
    assert {s.link for s in sup.device_states()} == {"stopped"}
    # A combined source (BLE plus LSL inlets) hands on the supervisor's snapshots.
    assert CombinedSource([sup]).device_states() == sup.device_states()
