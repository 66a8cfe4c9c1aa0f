#!/usr/bin/env python3
"""A real SMTP server for notification's sender tests (aiosmtpd).

Every message it accepts is written to OUTDIR as NNNN.eml (the bytes as
received) with NNNN.json beside it (envelope sender and recipients, and
whether the client authenticated). With --user/--password it requires AUTH
(PLAIN or LOGIN). With --starttls it offers and requires STARTTLS with a
certificate for 127.0.0.1 from a throw-away CA (trustme), whose PEM it
writes to OUTDIR/ca.pem.

    python smtp_sink.py --port 2525 --outdir /tmp/mail [--user u --password p]

Prints "ready" once listening; stops on SIGTERM or when stdin closes.
"""

import argparse
import itertools
import ssl
import json
import signal
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, outdir: Path):
        self.outdir = outdir
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        (self.outdir / f"{n:04d}.eml").write_bytes(envelope.original_content or envelope.content)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated": bool(session.authenticated),
        }
        (self.outdir / f"{n:04d}.json").write_text(json.dumps(meta))
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--starttls", action="store_true")
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == args.user.encode()
            and auth_data.password == args.password.encode()
        )
        return AuthResult(success=ok)

    with_auth = args.user is not None
    tls = {}
    if args.starttls:
        import trustme

        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(args.outdir / "ca.pem"))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        tls = {"tls_context": context, "require_starttls": True}
    controller = Controller(
        Sink(args.outdir),
        hostname="127.0.0.1",
        port=args.port,
        authenticator=authenticator if with_auth else None,
        auth_required=with_auth,
        auth_require_tls=False,
        **tls,
    )
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
