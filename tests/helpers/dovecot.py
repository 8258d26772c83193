"""A throwaway dovecot (Debian's) on loopback: IMAP and POP3 over TLS, one user.

The README's test command installs ``dovecot-imapd`` and ``dovecot-pop3d``;
this starts a server of its own from a config in a temporary folder, with a
self-signed certificate made there (the client trusts it through
``[mailbox] ca_file``), on free ports, so a test never touches a server
someone else runs. Dovecot serves no mail as root: as root the mailbox
belongs to ``nobody``.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "bounces", "dovecot-test-password"


@dataclass(frozen=True)
class Dovecot:
    imap_port: int
    pop3_port: int
    ca_file: Path
    maildir: Path  # the user's inbox, to drop mail into


def available() -> bool:
    return shutil.which("dovecot") is not None or Path("/usr/sbin/dovecot").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, seconds: float = 15) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"dovecot did not listen on {port}")


@contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    root = Path(tempfile.mkdtemp(prefix="publisher-dovecot-"))
    os.chmod(root, 0o755)
    me = pwd.getpwuid(os.getuid())
    mail_user = pwd.getpwnam("nobody") if os.getuid() == 0 else me
    internal = "dovecot" if os.getuid() == 0 else me.pw_name
    login = "dovenull" if os.getuid() == 0 else me.pw_name
    home = root / "home"
    maildir = home / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for path in (home, maildir, *(maildir / s for s in ("cur", "new", "tmp"))):
        os.chown(path, mail_user.pw_uid, mail_user.pw_gid)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    imap, pop3 = _free_port(), _free_port()
    (root / "dovecot.conf").write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name}
default_login_user = {login}
first_valid_uid = {mail_user.pw_uid}
last_valid_uid = {mail_user.pw_uid}
mail_location = maildir:{maildir}
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = {root}/users
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={home}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {imap}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = {pop3}
    ssl = yes
  }}
}}
"""
    )
    for folder in ("run", "state"):
        (root / folder).mkdir()
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    proc = subprocess.Popen([binary, "-F", "-c", str(root / "dovecot.conf")])
    try:
        _wait_for(imap)
        _wait_for(pop3)
        yield Dovecot(imap, pop3, root / "cert.pem", maildir)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def deliver(server: Dovecot, raw: bytes) -> None:
    """Drop a message into the user's inbox, as the MTA would."""
    import mailbox

    box = mailbox.Maildir(server.maildir, create=False)
    key = box.add(raw)
    box.close()
    for sub in ("new", "cur"):
        path = server.maildir / sub / key
        if path.exists():
            st = server.maildir.stat()
            os.chown(path, st.st_uid, st.st_gid)
