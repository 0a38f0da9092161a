// affectstream EDA band: reference firmware for an Adafruit nRF52840 board
// (Feather nRF52840 Express / ItsyBitsy nRF52840) with the Adafruit "Bluefruit nRF52"
// Arduino core. Implements firmware_notes/eda-band.md (profile version 1.0).
//
// STATUS: reference sketch, NOT compiled or run in affectstream's CI (no toolchain or board
// there). The protocol it speaks is tested against the host through the emulated band in
// affectstream/device/emulation/eda.py; treat this file as a starting point and check it
// against your core version (Bluefruit API names changed over the years).
//
// Front end assumed: constant-voltage exosomatic EDA. V_EXC (0.5 V from a reference) drives
// the skin in series with R_REF; the ADC reads the voltage across R_REF on pin A0.
//   I = V_ref / R_REF,  V_skin = V_EXC - V_ref,  G = I / V_skin.

#include <bluefruit.h>

// ---- profile constants (eda-band.md) -------------------------------------------------
// UUIDs ba1dXXXX-d3c8-4bf6-b02e-c9658c440af0, little-endian byte order for Bluefruit.
#define EDA_UUID(x) {0xf0, 0x0a, 0x44, 0x8c, 0x65, 0xc9, 0x2e, 0xb0, \
                     0xf6, 0x4b, 0xc8, 0xd3, (x), 0x00, 0x1d, 0xba}
const uint8_t UUID_SERVICE[16] = EDA_UUID(0x01);
const uint8_t UUID_MEASUREMENT[16] = EDA_UUID(0x02);
const uint8_t UUID_CONFIG[16] = EDA_UUID(0x03);
const uint8_t UUID_CONTROL[16] = EDA_UUID(0x04);

const uint8_t FLAG_CONTACT = 0x01, FLAG_SATURATED = 0x02, FLAG_BATTERY_LOW = 0x04;
const uint32_t RAW_SATURATED = 0xFFFFFF;
const uint16_t ALLOWED_RATES[] = {4, 8, 16, 32, 64, 128, 256};
const uint16_t DEFAULT_RATE = 32;
const uint8_t CONTROL_START = 0x01, CONTROL_STOP = 0x02;
const uint8_t ATT_ERR_INVALID_RATE = 0x80, ATT_ERR_INVALID_COMMAND = 0x81;
const uint32_t MAX_PACKET_SPAN_MS = 250;
const uint8_t HEADER_BYTES = 3;

// ---- hardware (adapt to your board) ---------------------------------------------------
const int PIN_EDA = A0;
const int PIN_VBAT = A6;            // Feather nRF52840: VBAT through a 1/2 divider
const float V_EXC = 0.5f;           // excitation voltage across skin + R_REF
const float R_REF = 100000.0f;      // ohms
const float ADC_VREF = 3.6f;        // nRF52 SAADC default range with gain 1/6
const int ADC_BITS = 14;
const float CONTACT_FLOOR_NS = 50.0f;  // below 0.05 µS: electrodes open

// ---- BLE objects ------------------------------------------------------------------------
BLEService edaService(UUID_SERVICE);
BLECharacteristic edaMeasurement(UUID_MEASUREMENT);
BLECharacteristic edaConfig(UUID_CONFIG);
BLECharacteristic edaControl(UUID_CONTROL);
BLEBas battery;

// ---- state --------------------------------------------------------------------------------
volatile bool streaming = false;
uint16_t rateHz = DEFAULT_RATE;
uint32_t sampleCounter = 0;     // samples taken since power-on (sent modulo 65536)
uint32_t nextSampleUs = 0;      // schedule: next += period, never delay(), so no drift
uint8_t packet[247];
uint8_t packetSamples = 0;
uint8_t packetFlags = 0;
uint32_t packetStartMs = 0;
uint8_t batteryPercent = 100;

bool rateAllowed(uint16_t rate) {
  for (uint16_t r : ALLOWED_RATES) if (r == rate) return true;
  return false;
}

uint8_t maxSamplesPerPacket() {
  uint16_t mtu = 23;
  uint16_t conn = Bluefruit.connHandle();
  if (Bluefruit.connected()) {
    BLEConnection* c = Bluefruit.Connection(conn);
    if (c) mtu = c->getMtu();
  }
  uint16_t byMtu = (mtu - 3 - HEADER_BYTES) / 3;
  uint16_t byLatency = max<uint16_t>(1, rateHz * MAX_PACKET_SPAN_MS / 1000);
  return (uint8_t)max<uint16_t>(1, min(byMtu, byLatency));
}

// Write-authorise callbacks let us refuse a write with an ATT application error.
void replyWrite(uint16_t conn, uint16_t status) {
  ble_gatts_rw_authorize_reply_params_t reply = {};
  reply.type = BLE_GATTS_AUTHORIZE_TYPE_WRITE;
  reply.params.write.gatt_status = status;
  reply.params.write.update = (status == BLE_GATT_STATUS_SUCCESS);
  sd_ble_gatts_rw_authorize_reply(conn, &reply);
}

void onConfigWrite(uint16_t conn, BLECharacteristic* chr, ble_gatts_evt_write_t* req) {
  if (req->len != 2) { replyWrite(conn, ATT_ERR_INVALID_RATE); return; }
  uint16_t rate = req->data[0] | (req->data[1] << 8);
  if (!rateAllowed(rate) || (streaming && rate != rateHz)) {
    replyWrite(conn, ATT_ERR_INVALID_RATE);
    return;
  }
  replyWrite(conn, BLE_GATT_STATUS_SUCCESS);
  rateHz = rate;
  uint8_t value[2] = {(uint8_t)(rate & 0xFF), (uint8_t)(rate >> 8)};
  edaConfig.write(value, 2);
}

void onControlWrite(uint16_t conn, BLECharacteristic* chr, ble_gatts_evt_write_t* req) {
  if (req->len != 1 || (req->data[0] != CONTROL_START && req->data[0] != CONTROL_STOP)) {
    replyWrite(conn, ATT_ERR_INVALID_COMMAND);
    return;
  }
  replyWrite(conn, BLE_GATT_STATUS_SUCCESS);
  if (req->data[0] == CONTROL_START && !streaming) {
    packetSamples = 0;  // the sequence simply continues from the free-running counter
    streaming = true;
  } else if (req->data[0] == CONTROL_STOP) {
    streaming = false;
  }
}

void onConnect(uint16_t conn) {
  BLEConnection* c = Bluefruit.Connection(conn);
  c->requestMtuExchange(247);
  c->requestConnectionParameter(12);  // 15 ms in 1.25 ms units
}

void onDisconnect(uint16_t conn, uint8_t reason) {
  streaming = false;  // the host writes 0x01 again after reconnecting
  packetSamples = 0;
}

void startAdvertising() {
  Bluefruit.Advertising.addFlags(BLE_GAP_ADV_FLAGS_LE_ONLY_GENERAL_DISC_MODE);
  Bluefruit.Advertising.addService(edaService);
  Bluefruit.ScanResponse.addName();
  Bluefruit.Advertising.restartOnDisconnect(true);
  Bluefruit.Advertising.setInterval(32, 244);   // 20 ms fast, then 152.5 ms
  Bluefruit.Advertising.setFastTimeout(30);
  Bluefruit.Advertising.start(0);
}

// Skin conductance in nS, or RAW_SATURATED when the ADC is at a rail.
uint32_t readConductanceNs() {
  int raw = analogRead(PIN_EDA);
  const int fullScale = (1 << ADC_BITS) - 1;
  if (raw <= 0 || raw >= fullScale) return raw <= 0 ? 0 : RAW_SATURATED;
  float vRef = raw * ADC_VREF / fullScale;
  float vSkin = V_EXC - vRef;
  if (vSkin <= 0.0f) return RAW_SATURATED;
  float siemens = (vRef / R_REF) / vSkin;
  float ns = siemens * 1e9f;
  return ns >= RAW_SATURATED ? RAW_SATURATED : (uint32_t)(ns + 0.5f);
}

void sendPacket() {
  if (packetSamples == 0) return;
  if (batteryPercent < 15) packetFlags |= FLAG_BATTERY_LOW;
  packet[0] = packetFlags;
  uint16_t length = HEADER_BYTES + 3 * packetSamples;
  if (!edaMeasurement.notify(packet, length)) {
    // Not delivered (link busy or gone): those samples are lost; the next packet's
    // sequence jumps and tells the host how many.
  }
  packetSamples = 0;
}

void takeSample() {
  uint32_t ns = readConductanceNs();
  uint32_t index = sampleCounter++;
  bool canSend = streaming && Bluefruit.connected() && edaMeasurement.notifyEnabled();
  if (!canSend) { packetSamples = 0; return; }  // skipped samples become a counter gap
  if (packetSamples == 0) {
    packet[1] = index & 0xFF;          // sequence of the FIRST sample, u16 LE
    packet[2] = (index >> 8) & 0xFF;
    packetFlags = 0;
    packetStartMs = millis();
  }
  if (ns == RAW_SATURATED) packetFlags |= FLAG_SATURATED;
  else if (ns > CONTACT_FLOOR_NS) packetFlags |= FLAG_CONTACT;
  uint8_t* p = packet + HEADER_BYTES + 3 * packetSamples;
  p[0] = ns & 0xFF; p[1] = (ns >> 8) & 0xFF; p[2] = (ns >> 16) & 0xFF;
  packetSamples++;
  if (packetSamples >= maxSamplesPerPacket()) sendPacket();
}

void setup() {
  analogReadResolution(ADC_BITS);
  analogOversampling(8);

  Bluefruit.configPrphBandwidth(BANDWIDTH_MAX);
  Bluefruit.begin();
  char name[16];
  uint16_t tail = (uint16_t)(NRF_FICR->DEVICEADDR[0] & 0xFFFF);
  snprintf(name, sizeof(name), "AS-EDA-%04X", tail);
  Bluefruit.setName(name);
  Bluefruit.Periph.setConnectCallback(onConnect);
  Bluefruit.Periph.setDisconnectCallback(onDisconnect);

  edaService.begin();

  edaMeasurement.setProperties(CHR_PROPS_NOTIFY);
  edaMeasurement.setPermission(SECMODE_OPEN, SECMODE_NO_ACCESS);
  edaMeasurement.setMaxLen(244);
  edaMeasurement.begin();

  edaConfig.setProperties(CHR_PROPS_READ | CHR_PROPS_WRITE);
  edaConfig.setPermission(SECMODE_OPEN, SECMODE_OPEN);
  edaConfig.setFixedLen(2);
  edaConfig.setWriteAuthorizeCallback(onConfigWrite);
  edaConfig.begin();
  uint8_t rate[2] = {(uint8_t)(DEFAULT_RATE & 0xFF), (uint8_t)(DEFAULT_RATE >> 8)};
  edaConfig.write(rate, 2);

  edaControl.setProperties(CHR_PROPS_WRITE);
  edaControl.setPermission(SECMODE_NO_ACCESS, SECMODE_OPEN);
  edaControl.setFixedLen(1);
  edaControl.setWriteAuthorizeCallback(onControlWrite);
  edaControl.begin();

  battery.begin();
  battery.write(batteryPercent);

  startAdvertising();
  nextSampleUs = micros();
}

void loop() {
  uint32_t now = micros();
  // Fixed schedule from the crystal: catch up sample by sample if the loop was late.
  while ((int32_t)(now - nextSampleUs) >= 0) {
    takeSample();
    nextSampleUs += 1000000UL / rateHz;
  }
  // Bound latency at low rates: flush a packet that has waited MAX_PACKET_SPAN_MS.
  if (packetSamples && millis() - packetStartMs >= MAX_PACKET_SPAN_MS) sendPacket();

  static uint32_t lastBatteryMs = 0;
  if (millis() - lastBatteryMs > 60000UL) {
    lastBatteryMs = millis();
    float vbat = analogRead(PIN_VBAT) * 2.0f * ADC_VREF / ((1 << ADC_BITS) - 1);
    int pct = (int)((vbat - 3.3f) / (4.2f - 3.3f) * 100.0f);
    batteryPercent = (uint8_t)constrain(pct, 0, 100);
    battery.notify(batteryPercent);
  }
}
