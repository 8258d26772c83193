"""Imports of other services' subscriber exports, by their header rows; those they had
as unsubscribed or cleaned stay suppressed here."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.errors import PublisherError
from publisher.store.rows import Status
from publisher.store.schema import open_engine
from publisher.store.subscribers import SubscriberStore

NOW = datetime(2026, 12, 1, tzinfo=UTC)
MAILCHIMP = (
    "Email Address,First Name,Last Name,Address,Phone Number,MEMBER_RATING,OPTIN_TIME,"
    "OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,"
    "REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS"
)


@pytest.fixture
def store(tmp_path: Path) -> SubscriberStore:
    return SubscriberStore(open_engine(f"sqlite:///{tmp_path / 's.db'}"))


def _import(store: SubscriberStore, text: str, name: str):  # type: ignore[no-untyped-def]
    return store.import_csv(io.StringIO(text, newline=""), name, NOW)


def test_mailchimp_subscribed_unsubscribed_and_cleaned_files(store: SubscriberStore) -> None:
    row = ",,,2,2019-01-01 10:00:00,,2019-01-01 10:01:00,,,,,,,,,2019-01-01,1,a,,"
    subscribed = (
        f"{MAILCHIMP}\n"
        f'ann@example.org,Ann,Archer{row}"""digital"",""thanks"""\n'
        f"bob@example.org,Bob,,{row[1:]}\n"
    )
    added, _, problems = _import(store, subscribed, "subscribed_members_export.csv")
    assert added == 2
    assert "Mailchimp export: columns ignored: Address, Phone Number" in str(problems[0])
    ann = store.by_email("ann@example.org")
    assert (ann.name, ann.tags, ann.status) == ("Ann Archer", ("digital", "thanks"), Status.ACTIVE)
    assert ann.source == "import subscribed_members_export.csv"
    unsub = f"{MAILCHIMP},UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_CAMPAIGN_ID,UNSUB_REASON\n"
    unsub += f"bob@example.org,Bob,,{row[1:]},2020-05-01 09:00:00,Weekly,abc,too many\n"
    _import(store, unsub, "unsubscribed_members_export.csv")
    assert store.by_email("bob@example.org").status is Status.UNSUBSCRIBED
    cleaned = f"{MAILCHIMP},CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID\n"
    cleaned += f"cat@example.org,Cat,,{row[1:]},2020-06-01 09:00:00,Weekly,abc\n"
    _import(store, cleaned, "cleaned_members_export.csv")
    assert store.by_email("cat@example.org").status is Status.BOUNCED
    # the old subscribed file again: Bob stays unsubscribed
    _, _, problems = _import(store, subscribed, "subscribed_members_export.csv")
    assert store.by_email("bob@example.org").status is Status.UNSUBSCRIBED
    assert any("bob@example.org is unsubscribed: left as is" in str(p) for p in problems)


def test_substack_buttondown_and_listmonk_exports(store: SubscriberStore) -> None:
    _import(
        store,
        "email,active_subscription,expiry,plan,email_disabled,created_at,first_payment_at\n"
        "s1@example.org,false,,free,false,2021-01-01,\n"
        "s2@example.org,false,,free,true,2021-01-01,\n",
        "substack.csv",
    )
    _import(
        store,
        "id,email,notes,metadata,tags,referrer_url,creation_date,secondary_id,subscriber_type\n"
        "1,b1@example.org,,{},digital,,2022-01-01,1,regular\n"
        "2,b2@example.org,,{},,,2022-01-01,2,unsubscribed\n"
        "3,b3@example.org,,{},,,2022-01-01,3,unactivated\n",
        "buttondown.csv",
    )
    _, _, problems = _import(
        store,
        "uuid,email,name,attributes,status,created_at,updated_at\n"
        'u1,l1@example.org,Lee,"{""city"": ""Stafford""}",enabled,2023-01-01,2023-01-01\n'
        "u2,l2@example.org,Lou,{},blocklisted,2023-01-01,2023-01-01\n",
        "listmonk.csv",
    )
    got = {s.email: (s.status, s.tags) for s in store.all()}
    assert got == {
        "s1@example.org": (Status.ACTIVE, ()),
        "s2@example.org": (Status.UNSUBSCRIBED, ()),
        "b1@example.org": (Status.ACTIVE, ("digital",)),
        "b2@example.org": (Status.UNSUBSCRIBED, ()),
        "l1@example.org": (Status.ACTIVE, ()),
        "l2@example.org": (Status.UNSUBSCRIBED, ()),
    }  # b3 never confirmed at Buttondown: left out
    assert store.by_email("l1@example.org").name == "Lee"
    assert "columns ignored: uuid" not in str(problems)  # listmonk's own columns are read


def test_an_export_it_cannot_recognise_names_what_it_knows(store: SubscriberStore) -> None:
    with pytest.raises(PublisherError) as exc:
        _import(store, "Contact,Mail,Foo\nx,a@example.org,1\n", "mystery.csv")
    assert "mystery.csv:1: columns Contact, Mail, Foo" in exc.value.message
    assert "Mailchimp" in exc.value.remedy and "listmonk" in exc.value.remedy
    assert "email,name,tags" in exc.value.remedy and store.all() == []
