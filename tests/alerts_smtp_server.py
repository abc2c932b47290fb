"""A real SMTP server for the alert email tests (aiosmtpd).

Usage: alerts_smtp_server.py PORT MODE [CERT KEY]
  MODE plain     no TLS, no AUTH
  MODE auth      no TLS, AUTH PLAIN/LOGIN as user "alerts" / password "s3cret"
  MODE starttls  STARTTLS required (CERT/KEY), then AUTH as above

Prints "ready" once listening, then one JSON line per message received:
{"mail_from", "rcpt_tos", "content", "auth_user", "tls"}.
"""

import json
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Printer:
    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data
        user = auth.login.decode() if isinstance(auth, LoginPassword) else auth
        print(json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "content": envelope.content.decode("utf-8", "replace"),
            "auth_user": user,
            "tls": session.ssl is not None,
        }), flush=True)
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == b"alerts" and auth_data.password == b"s3cret")
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    kwargs = {}
    if mode in ("auth", "starttls"):
        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=(mode == "starttls"))
    if mode == "starttls":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
        kwargs.update(tls_context=context, require_starttls=True)
    controller = Controller(Printer(), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        threading.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
