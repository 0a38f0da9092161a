"""BLE ingestion: device protocols, scanning, the connection supervisor and clock model."""
