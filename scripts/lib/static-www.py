"""Serves www/ on 127.0.0.1:PORT for `scripts/demo.sh --worker` (the API runs in the Worker).

Like the native server's `--static www`: widgets run in sandboxed iframes (origin "null") and
load their module scripts cross-origin, so every file carries permissive CORS and CORP, and
nothing is cached (a rebuilt pkg/ is picked up on reload).
"""
import functools
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cross-Origin-Resource-Policy", "cross-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1])
    handler = functools.partial(Handler, directory="www")
    http.server.ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()
