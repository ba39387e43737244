"""The OCPP endpoint: frames and schemas (protocol), one adapter per version (v16), and the
Channels consumer that holds each charger's WebSocket."""
