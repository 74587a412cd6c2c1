"""Photos in S3-compatible storage: objects in the bucket, nothing on disk, failures named."""

from __future__ import annotations

import boto3
import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.customer_page.models import LinePhoto
from app.customer_page.photos import PhotoStoreError, S3PhotoStore, photo_store
from app.deps import Database
from app.main import create_app
from tests.app.customer_page.conftest import Shop
from tests.app.web.conftest import logged_in
from tests.support import ServedApp

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def test_a_photo_is_an_object_under_the_prefix_and_reads_back(s3_bucket: str) -> None:
    store = photo_store(f"s3://{s3_bucket}/bayview")
    store.put("0a1b.jpg", JPEG, "image/jpeg")
    listed = boto3.client("s3").list_objects_v2(Bucket=s3_bucket)
    (only,) = listed["Contents"]
    head = boto3.client("s3").head_object(Bucket=s3_bucket, Key=only["Key"])
    assert only["Key"] == "bayview/photos/0a1b.jpg" and head["ContentType"] == "image/jpeg"
    assert store.get("0a1b.jpg") == JPEG
    assert store.get("ffff.jpg") is None  # gone from the bucket: the page says so, no error


def test_a_missing_bucket_is_a_clear_error_naming_the_store(s3_bucket: str) -> None:
    store = S3PhotoStore("s3://no-such-bucket/x")
    with pytest.raises(PhotoStoreError, match="s3://no-such-bucket/x"):
        store.put("0a1b.jpg", JPEG, "image/jpeg")
    with pytest.raises(PhotoStoreError, match="could not read the photo from s3://no-such-bucket"):
        store.get("0a1b.jpg")


def test_keys_from_outside_and_bad_urls_are_refused(s3_bucket: str) -> None:
    with pytest.raises(ValueError, match="not a storage key"):
        photo_store(f"s3://{s3_bucket}").get("../../etc/passwd")
    with pytest.raises(ValueError, match="not an s3://bucket/prefix URL"):
        S3PhotoStore("s3:///no-bucket")


def test_a_store_that_fails_costs_the_photo_not_the_page(
    shop: Shop, settings: Settings, database: Database, s3_bucket: str
) -> None:
    broken = settings.model_copy(update={"media_dir": "s3://no-such-bucket/bayview"})
    with database.transaction() as session:
        session.add(
            LinePhoto(
                ro_line_id=shop.lines["B"],
                storage_key="0a1b.jpg",
                content_type="image/jpeg",
                size_bytes=len(JPEG),
                source="advisor",
            )
        )
    with ServedApp(create_app(broken, database=database)) as served:
        with logged_in(served, "toyota.advisor@bayview.example") as advisor:
            panel = advisor.get(f"/repair-orders/{shop.ro_id}/customer-page")
            csrf = panel.text.split('name="csrf_token" value="')[1].split('"')[0]
            added = advisor.post(
                f"/repair-orders/{shop.ro_id}/lines/{shop.lines['B']}/photos",
                data={"csrf_token": csrf},
                files={"photo": ("pads.jpg", JPEG, "image/jpeg")},
            )
        with httpx.Client(base_url=served.url, timeout=10) as http:
            page = http.get(f"/c/{shop.token}")
            photo_id = page.text.split(f"/c/{shop.token}/photos/")[1].split('"')[0]
            photo = http.get(f"/c/{shop.token}/photos/{photo_id}")
    assert added.status_code == 503 and "the photo store failed" in added.text
    assert page.status_code == 200 and "Front brake pads" in page.text
    assert photo.status_code == 503
    with database.transaction() as session:
        assert len(session.scalars(select(LinePhoto)).all()) == 1  # the failed one not recorded
