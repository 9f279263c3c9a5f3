"""A real SMTP server for the email tests: aiosmtpd (PyPI, installed into .venv by
scripts/test.sh) on 127.0.0.1:PORT. Each message it receives is written to DIR as one JSON file
{"from", "to", "subject", "text", "html"} (bodies decoded from their MIME transfer encoding),
first as a .tmp file then renamed, so a reader never sees half a message. It prints READY once
listening and stops when its standard input closes (the test process ended or dropped it).

Usage: python smtp_sink.py PORT DIR
"""

import email
import email.policy
import json
import os
import sys
import time
import uuid

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        record = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(message.get("subject", "")),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
        }
        name = os.path.join(self.directory, f"{time.time_ns()}-{uuid.uuid4().hex}.json")
        with open(name + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name)
        return "250 Message accepted"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("READY", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
