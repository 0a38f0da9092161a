"""Emulated BLE peripherals and a bleak backend over bumble's userspace BLE stack."""
