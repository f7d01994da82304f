//! The suite's passes run on the stores they name (scripts/test): the
//! embedded pair when nothing is named, else PostgreSQL for
//! `$TEST_POSTGRES_URL` and the bucket of `$TEST_BLOBS_URL` (both, in the
//! pass that sets `TEST_PASS=scaleout`). Without this,
//! a harness that quietly fell back to the embedded stores would pass the
//! scale-out pass on SQLite and a local directory.

use crate::app::spawn_app;
use crate::common::{BLOBS_ENV, postgres::SHARED_ENV};

fn named(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.is_empty())
}

#[tokio::test]
async fn uploads_land_in_the_stores_the_pass_names() {
    let app = spawn_app().await;
    let t = app.token().await;
    let photo = crate::common::png(90, 90, 3);
    let id = app.upload(&t, "face.png", &photo).await;
    let data = app.dir.path();
    // The scale-out pass says so (scripts/test): both stores must be named.
    if std::env::var("TEST_PASS").as_deref() == Ok("scaleout") {
        assert!(
            named(SHARED_ENV) && named(BLOBS_ENV),
            "the scale-out pass without {SHARED_ENV} and {BLOBS_ENV}"
        );
    }

    match crate::common::database_for(data) {
        Some(url) => {
            assert!(named(SHARED_ENV));
            assert!(!data.join("facehub.db").exists(), "an SQLite database too");
            let rows = crate::common::postgres::psql_at(
                &url,
                &format!("SELECT count(*) FROM files WHERE file_id = '{id}'"),
            )
            .unwrap();
            assert_eq!(rows, "1", "the upload's row is not in {url}");
        }
        None => {
            assert!(!named(SHARED_ENV));
            assert!(data.join("facehub.db").is_file());
        }
    }

    let stored = crate::app::stored_blobs(data).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    match crate::common::blobs_for(data) {
        Some(url) => {
            assert!(named(BLOBS_ENV));
            assert!(!data.join("blobs").exists(), "a local blob directory too");
            let prefix = facehub::store::s3::S3Location::parse(&url).unwrap().prefix;
            assert!(
                stored[0].0.starts_with(&format!("{prefix}/")),
                "{} is not under {prefix}",
                stored[0].0
            );
        }
        None => assert!(!named(BLOBS_ENV)),
    }
    // Stored sealed, whichever store.
    let probe = &photo[photo.len() / 2..][..32];
    assert!(!stored[0].1.windows(32).any(|w| w == probe));
}
