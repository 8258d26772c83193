"""Subscribers in a real database (SQLite, PostgreSQL): validation, CSV import/export, the CLI."""

from __future__ import annotations

import io
import mailbox
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from publisher.errors import PublisherError
from publisher.store.rows import Status
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore
from tests.helpers import SEEDS, run_cli

NOW = datetime.fromisoformat("2026-11-23T07:00:00+00:00")


@pytest.fixture
def store(state_url: str) -> SubscriberStore:
    return SubscriberStore(open_engine(state_url))


def test_addresses_validated_and_case_insensitive(store: SubscriberStore) -> None:
    a, created = store.add("Ann@Example.ORG", "Ann", ["Digital", "digital", "thanks"], now=NOW)
    assert created and a.email == "Ann@example.org" and a.tags == ("Digital", "thanks")
    b, created = store.add("ann@example.org", "Ann B", [], now=NOW)
    assert not created and b.id == a.id and b.tags == () and b.name == "Ann B"
    assert len(store.all()) == 1
    for bad in ("not-an-address", "a@b@c", "x@", "@example.org", "a b@example.org"):
        with pytest.raises(PublisherError, match="not a valid email"):
            store.add(bad, now=NOW)


def test_import_reports_bad_rows_by_line_and_keeps_good(store: SubscriberStore) -> None:
    csv_text = (
        "email,name,tags\n"
        "ok1@example.org,One,thanks;digital\n"
        "broken-address,Two,\n"
        '"ok2@example.org","Smith, Jane",\n'
        "ok3@example.org,Three,a,b,c,d,e\n"  # unquoted commas: too many columns
        "\n"
        "OK1@example.org,One again,\n"
    )
    added, updated, problems = store.import_csv(io.StringIO(csv_text), "subs.csv", NOW)
    assert (added, updated) == (2, 1)
    assert [(p.line, p.file) for p in problems] == [(3, "subs.csv"), (5, "subs.csv")]
    assert "not a valid email" in problems[0].message and "columns" in problems[1].message
    people = {s.email.casefold(): s for s in store.all()}
    assert people["ok2@example.org"].name == "Smith, Jane"
    assert people["ok1@example.org"].tags == () and people["ok1@example.org"].name == "One again"
    out = io.StringIO()
    assert store.export_csv(out) == 2
    assert out.getvalue().splitlines()[0] == "email,name,tags,status,bounces,cadence"


@pytest.mark.parametrize(
    "text",
    [
        "email;name;tags\nann@example.org;Smith, Ann;thanks|digital\n",  # Excel, comma decimals
        "E-mail\tname\ttags\nann@example.org\tSmith, Ann\tthanks,digital\n",  # tab-separated
        'email,name,tags\nann@example.org,"Smith, Ann",thanks;digital\n',  # the usual form
    ],
)
def test_import_takes_the_delimiter_a_header_row_shows(store: SubscriberStore, text: str) -> None:
    """Excel saves CSV with ';' where the decimal mark is a comma, and tabs as
    'Unicode text': every row of those was refused as a bad address."""
    added, _, problems = store.import_csv(io.StringIO(text), "people.csv", NOW)
    assert (added, problems) == (1, [])
    (ann,) = store.all()
    assert (ann.email, ann.name, ann.tags) == (
        "ann@example.org",
        "Smith, Ann",
        ("digital", "thanks"),
    )


def test_an_export_imports_back_whole(store: SubscriberStore, tmp_path: Path) -> None:
    """``export`` then ``import`` (a move to a new server, a restore): the same
    people, names, topics and statuses. The export's status column used to make
    every row a bad one (4 columns)."""
    store.add("ann@example.org", "Ann", ["thanks"], now=NOW)
    store.add("bob@example.org", "Bob, Jr.", ["digital", "thanks"], now=NOW)
    store.add("cat@example.org", "Cat", [], status=Status.PENDING, now=NOW)
    store.add("dan@example.org", "Dan", [], status=Status.BOUNCED, now=NOW)
    store.remove("ann@example.org", NOW)
    out = io.StringIO()
    store.export_csv(out)
    fresh = SubscriberStore(open_engine(f"sqlite:///{tmp_path / 'new.db'}"))
    added, updated, problems = fresh.import_csv(io.StringIO(out.getvalue()), "all.csv", NOW)
    assert (added, updated, problems) == (4, 0, [])

    def people(s: SubscriberStore) -> set[tuple[str, str, tuple[str, ...], Status]]:
        return {(p.email, p.name, p.tags, p.status) for p in s.all()}

    assert people(fresh) == people(store)
    assert {p.email: p.status for p in fresh.all()}["ann@example.org"] == Status.UNSUBSCRIBED


def test_an_import_never_resubscribes_anyone(store: SubscriberStore) -> None:
    """An old list imported again would mail people who asked to stop: unsubscribed
    and bounced addresses are left as they are (a warning at their line), as mail
    services do; a status of unsubscribed in the file does apply."""
    store.add("ann@example.org", "Ann", ["thanks"], now=NOW)
    store.add("bob@example.org", "Bob", [], status=Status.BOUNCED, now=NOW)
    store.add("cat@example.org", "Cat", [], now=NOW)
    store.remove("ann@example.org", NOW)
    csv_text = (
        "ann@example.org,Ann Again,digital\n"
        "BOB@example.org,Bob,,active\n"
        "cat@example.org,Cat,,unsubscribed\n"
        "dan@example.org,Dan,,subscribed\n"
    )
    added, updated, problems = store.import_csv(io.StringIO(csv_text), "old.csv", NOW)
    assert (added, updated) == (0, 1)
    assert [(p.line, p.severity.value) for p in problems] == [
        (1, "warning"),
        (2, "warning"),
        (4, "error"),
    ]
    assert "ann@example.org is unsubscribed: left as is" in problems[0].message
    assert "bob@example.org is bounced" in problems[1].message
    assert "status 'subscribed'" in problems[2].message
    now = {p.email: (p.status, p.name, p.tags) for p in store.all()}
    assert now["ann@example.org"] == (Status.UNSUBSCRIBED, "Ann", ("thanks",))  # untouched
    assert now["bob@example.org"][0] == Status.BOUNCED
    assert now["cat@example.org"][0] == Status.UNSUBSCRIBED
    assert "dan@example.org" not in now


def test_cli_import_takes_excel_utf8_and_refuses_other_encodings_whole(tmp_path: Path) -> None:
    """Excel's 'CSV UTF-8' (a BOM, CRLF) goes in; a Latin-1 file is refused with the
    line of its first bad byte and imports nothing, not the rows before it."""
    (tmp_path / "excel.csv").write_bytes(
        '\ufeffemail,name,tags\r\nzoe@example.org,"Zoë, Jr",thanks\r\n'.encode()
    )
    r = run_cli("subscribers", "import", "excel.csv", cwd=tmp_path)
    assert r.returncode == 0 and "1 new" in r.stdout
    latin = "email,name,tags\nann@example.org,Ann,\nbea@example.org,Béatrice,\n"
    (tmp_path / "latin.csv").write_bytes(latin.encode("latin-1"))
    r = run_cli("subscribers", "import", "latin.csv", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "latin.csv:3: not UTF-8 text (byte 0xe9); nothing was imported" in r.stderr
    assert "CSV UTF-8" in r.stderr
    listing = run_cli("subscribers", "list", cwd=tmp_path).stdout.splitlines()
    assert listing == ["zoe@example.org\tZoë, Jr\tthanks\tactive"]


def test_remove_keeps_history_but_stops_mail(store: SubscriberStore) -> None:
    sub, _ = store.add("x@example.org", now=NOW)
    assert store.remove("X@EXAMPLE.ORG", NOW)
    assert store.get(sub.id).status is Status.UNSUBSCRIBED
    assert store.all(Status.ACTIVE) == [] and not store.remove("nobody@example.org", NOW)


def test_cli_subscribers_and_outbox_digest_on_defaults(tmp_path: Path) -> None:
    """No config, no server, no secret: the outbox (a Maildir) receives the digest."""
    import shutil

    shutil.copytree(SEEDS, tmp_path / "seeds")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cwd=tmp_path)

    (tmp_path / "in.csv").write_text("a@example.org,A,thanks\nbad,B,\n", encoding="utf-8")
    r = cli("subscribers", "import", "in.csv")
    assert r.returncode == 1 and "in.csv:2: error:" in r.stderr and "1 new" in r.stdout
    assert cli("subscribers", "add", "b@example.org", "--tag", "digital").returncode == 0
    listing = cli("subscribers", "list").stdout.splitlines()
    assert listing == ["a@example.org\tA\tthanks\tactive", "b@example.org\t\tdigital\tactive"]
    dry = cli("digest", "--week", "2018-W21")
    assert "a@example.org: 1 post(s)" in dry.stdout and "b@example.org: skipped" in dry.stdout
    r = cli("digest", "--week", "2019-W07", "--send")
    assert r.returncode == 0 and "sent 2" in r.stdout
    box = mailbox.Maildir(tmp_path / "var" / "outbox", create=False)
    msgs = list(box)
    assert len(msgs) == 2 and all(m["List-Unsubscribe-Post"] for m in msgs)
    assert cli("digest", "--week", "2019-W07", "--send").stdout.count("sent 0") == 1
    assert len(list(mailbox.Maildir(tmp_path / "var" / "outbox", create=False))) == 2
    r = cli("digest", "--week", "2019-W07", "--preview", "a@example.org", "--out", "p.eml")
    eml = __import__("email").message_from_bytes((tmp_path / "p.eml").read_bytes())
    assert r.returncode == 0 and eml["To"] == "A <a@example.org>" and eml.is_multipart()
    assert cli("subscribers", "remove", "a@example.org").returncode == 0
    assert "a@example.org" not in cli("digest", "--week", "2018-W21").stdout


def test_cli_warns_of_a_tag_no_archive_has(tmp_path: Path) -> None:
    """A typo in a tag choice would mean no mail for it, without a word: add and
    import say so (case and spacing are no typo), and still record the choice."""
    import shutil

    shutil.copytree(SEEDS, tmp_path / "seeds")
    r = run_cli(
        "subscribers", "add", "a@example.org", "--tag", " Digital", "--tag", "Thnaks", cwd=tmp_path
    )
    assert r.returncode == 0 and "added a@example.org" in r.stdout
    assert r.stderr.splitlines() == [
        "warning: no archive has the tag ‘Thnaks’: its subscribers get no post of it until "
        "one does (tags: digital, thanks)"
    ]
    (tmp_path / "in.csv").write_text("b@example.org,B,thanks;Digitall\n", encoding="utf-8")
    r = run_cli("subscribers", "import", "in.csv", cwd=tmp_path)
    assert r.returncode == 0 and "‘Digitall’" in r.stderr and "‘Thnaks’" in r.stderr
    assert (
        "b@example.org\tB\tDigitall;thanks\tactive"
        in run_cli("subscribers", "list", cwd=tmp_path).stdout.splitlines()
    )


def test_cli_add_keeps_what_it_is_not_told_and_never_resubscribes_unasked(
    tmp_path: Path,
) -> None:
    """``add`` of a known address changes only what its options give (it used to
    wipe the name and reset the topics); an unsubscribed address stays so unless
    ``--resubscribe`` says its owner asked."""

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("subscribers", *args, cwd=tmp_path)

    assert cli("add", "ann@example.org", "--name", "Ann", "--tag", "thanks").returncode == 0
    assert cli("add", "ann@example.org", "--tag", "digital").returncode == 0
    assert cli("list").stdout == "ann@example.org\tAnn\tdigital\tactive\n"
    assert cli("add", "ann@example.org", "--name", "Ann B").returncode == 0
    assert cli("list").stdout == "ann@example.org\tAnn B\tdigital\tactive\n"

    assert cli("remove", "ann@example.org").returncode == 0
    r = cli("add", "ann@example.org", "--name", "Someone")
    assert r.returncode == 1 and "ann@example.org is unsubscribed: left as it is" in r.stderr
    assert "--resubscribe" in r.stderr
    assert cli("list").stdout == "ann@example.org\tAnn B\tdigital\tunsubscribed\n"
    assert cli("add", "ann@example.org", "--resubscribe").returncode == 0
    assert cli("list").stdout == "ann@example.org\tAnn B\tdigital\tactive\n"


def test_export_then_import_keeps_bounce_counts(store: SubscriberStore, tmp_path: Path) -> None:
    """An export imported into a new database keeps each subscriber's bounce count
    (it was reset to 0, so a failing address got its full allowance again)."""
    sub, _ = store.add("flaky@example.org", now=NOW)
    store.count_bounce(sub.id)
    store.count_bounce(sub.id)
    out = io.StringIO()
    store.export_csv(out)
    fresh = SubscriberStore(open_engine(f"sqlite:///{(tmp_path / 'new.db').as_posix()}"))
    fresh.import_csv(io.StringIO(out.getvalue()), "export.csv", NOW)
    assert fresh.by_email("flaky@example.org").bounces == 2
