//! The conformance suite every [`ObjectStore`] implementation runs, so the local-file
//! and the S3 stores are held to the same contract: atomic replace on put, string-prefix
//! listing in sorted order, `NotFound` for missing keys, idempotent delete, and the
//! same rejected keys. Each caller hands in a store over an empty namespace (a fresh
//! directory, bucket or prefix).

use bytes::Bytes;

use super::{ObjectStore, ObjectStoreError};

/// Runs the whole contract against `store`, which must start empty.
pub(crate) async fn check_object_store(store: &dyn ObjectStore) {
    assert_eq!(
        store.list("").await.expect("list empty"),
        Vec::<String>::new()
    );
    assert!(matches!(
        store.get("never/written").await,
        Err(ObjectStoreError::NotFound(_))
    ));
    store
        .delete("never/written")
        .await
        .expect("deleting a missing key is not an error");

    let binary = Bytes::from((0..=255u8).rev().collect::<Vec<u8>>());
    let objects: [(&str, Bytes); 5] = [
        ("a/b/1.ndjson", Bytes::from_static(b"one")),
        ("a/c/2.ndjson", Bytes::from_static(b"two")),
        ("a/cd/3.ndjson", binary.clone()),
        ("a/sp ace/\u{fc}.txt", Bytes::from_static(b"unicode")),
        ("b/4", Bytes::from_static(b"four")),
    ];
    for (key, data) in &objects {
        store.put(key, data.clone()).await.expect("put");
    }
    for (key, data) in &objects {
        assert_eq!(&store.get(key).await.expect("get"), data, "{key}");
    }

    // Prefixes are plain string prefixes, not whole path segments.
    assert_eq!(
        store.list("a/").await.expect("list"),
        [
            "a/b/1.ndjson",
            "a/c/2.ndjson",
            "a/cd/3.ndjson",
            "a/sp ace/\u{fc}.txt"
        ]
    );
    assert_eq!(
        store.list("a/c").await.expect("list"),
        ["a/c/2.ndjson", "a/cd/3.ndjson"]
    );
    assert_eq!(store.list("a/c/").await.expect("list"), ["a/c/2.ndjson"]);
    assert_eq!(store.list("zzz").await.expect("list"), Vec::<String>::new());
    assert_eq!(store.list("").await.expect("list all").len(), objects.len());

    // A put replaces the whole object.
    store
        .put("a/b/1.ndjson", Bytes::from_static(b"uno, replaced"))
        .await
        .expect("overwrite");
    assert_eq!(
        store.get("a/b/1.ndjson").await.expect("get"),
        Bytes::from_static(b"uno, replaced")
    );
    store.put("empty", Bytes::new()).await.expect("put empty");
    assert_eq!(store.get("empty").await.expect("get empty"), Bytes::new());

    store.delete("a/b/1.ndjson").await.expect("delete");
    store.delete("a/b/1.ndjson").await.expect("delete twice");
    assert!(matches!(
        store.get("a/b/1.ndjson").await,
        Err(ObjectStoreError::NotFound(_))
    ));
    assert_eq!(
        store.list("a/").await.expect("list"),
        ["a/c/2.ndjson", "a/cd/3.ndjson", "a/sp ace/\u{fc}.txt"]
    );

    for bad in ["", "../x", "/etc/passwd", "a/../../x", "dir/"] {
        assert!(
            matches!(
                store.put(bad, Bytes::new()).await,
                Err(ObjectStoreError::InvalidKey(_))
            ),
            "put {bad:?}"
        );
        assert!(
            matches!(store.get(bad).await, Err(ObjectStoreError::InvalidKey(_))),
            "get {bad:?}"
        );
        assert!(
            matches!(
                store.delete(bad).await,
                Err(ObjectStoreError::InvalidKey(_))
            ),
            "delete {bad:?}"
        );
    }
}
