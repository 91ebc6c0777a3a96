"""An HTTPS server for the fake model APIs of the end-to-end suites, on host loopback."""
import ssl
from http.server import ThreadingHTTPServer


class TLSServer(ThreadingHTTPServer):
    """A threading HTTP server behind TLS (CERT and KEY: a test CA's, tests/e2e/certs.sh). Each
    connection's handshake runs on its own thread, so one slow client stalls no other."""

    daemon_threads = True

    def __init__(self, address, handler, cert, key):
        super().__init__(address, handler)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)

    def finish_request(self, request, client_address):
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()
