"""Live video: the RTMP protocol (`rtmp`, pure, no sockets), FLV tags (`flv`), the relay and
its edge mode (`relay`, `edge`), the publisher and player (`clients`), and the socket helpers
they share (`net`)."""
