//! Channel content mutations and queries, with their validation.

use crate::helpers::spawn_app;
use herald::domain::ids::{encode, Kind};
use serde_json::{json, Value};

pub const CREATE_VIDEO: &str = "mutation ($i: CreateVideoInput!) { createVideo(input: $i) { video { id title draft url duration visibility presentedAt collections { id } taggedUsers { id } } errors { message path } } }";
pub const UPDATE_VIDEO: &str = "mutation ($i: UpdateVideoInput!) { updateVideo(input: $i) { video { id title summary } errors { message path } } }";
pub const CREATE_COLLECTION: &str = "mutation ($i: CreateCollectionInput!) { createCollection(input: $i) { collection { id name url parent { id } } errors { message path } } }";
pub const UPDATE_COLLECTION: &str = "mutation ($i: UpdateCollectionInput!) { updateCollection(input: $i) { collection { id name parent { id } children { id } admins { id } } errors { message path } } }";

#[tokio::test]
async fn videos_are_created_published_updated_and_deleted() {
    let app = spawn_app().await;
    let r = app
        .graphql(CREATE_COLLECTION, json!({"i": {"name": "All-hands"}}))
        .await;
    let coll = r["data"]["createCollection"]["collection"]["id"]
        .as_str()
        .expect("collection")
        .to_owned();
    let admin = encode(Kind::User, 1);
    let r = app
        .graphql(
            CREATE_VIDEO,
            json!({"i": {"title": "All-hands presentation", "draft": true, "duration": 25.7, "visibility": "PRIVATE",
                "presentedAt": "2021-08-10T00:00:00Z", "collectionIds": [coll], "taggedUserIds": [admin]}}),
        )
        .await;
    let v = &r["data"]["createVideo"]["video"];
    assert_eq!(r["data"]["createVideo"]["errors"], json!([]), "{r}");
    assert_eq!(v["draft"], true);
    assert_eq!(v["visibility"], "DRAFT", "a draft shows as DRAFT");
    // Given in seconds, shown in milliseconds, as in Rewatch's schema.
    assert_eq!(v["duration"], 25_700);
    assert_eq!(v["collections"], json!([{"id": coll}]));
    assert_eq!(v["taggedUsers"], json!([{"id": admin}]));
    let id = v["id"].as_str().expect("id").to_owned();
    assert!(
        v["url"]
            .as_str()
            .expect("url")
            .ends_with("/all-hands-presentation"),
        "{v}"
    );
    assert!(v["url"]
        .as_str()
        .expect("url")
        .starts_with("https://example.example.test/video/"));

    let r = app.graphql("mutation ($i: PublishVideoInput!) { publishVideo(input: $i) { video { draft visibility } errors { message } } }", json!({"i": {"videoId": id}})).await;
    assert_eq!(
        r["data"]["publishVideo"]["video"],
        json!({"draft": false, "visibility": "PRIVATE"}),
        "published, the video has the visibility it was given"
    );

    let r = app
        .graphql(
            UPDATE_VIDEO,
            json!({"i": {"videoId": id, "title": "Renamed", "summary": "New"}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateVideo"]["video"],
        json!({"id": id, "title": "Renamed", "summary": "New"})
    );

    let r = app.graphql("mutation ($i: DeleteVideoInput!) { deleteVideo(input: $i) { video { title } errors { message } } }", json!({"i": {"videoId": id}})).await;
    assert_eq!(r["data"]["deleteVideo"]["video"]["title"], "Renamed");
    let r = app
        .graphql(
            "query ($id: ID!) { node(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r["data"]["node"], Value::Null);
}

#[tokio::test]
async fn video_input_is_validated_and_nothing_is_saved() {
    let app = spawn_app().await;
    let missing_coll = encode(Kind::Collection, 4242);
    let cases = [
        (json!({"title": "   "}), "title"),
        (json!({"title": "t".repeat(301)}), "title"),
        (json!({"title": "ok", "duration": -3.0}), "duration"),
        (
            json!({"title": "ok", "collectionIds": [missing_coll]}),
            "collectionIds",
        ),
        (
            json!({"title": "ok", "collectionIds": ["garbage"]}),
            "collectionIds",
        ),
        (
            json!({"title": "ok", "taggedUserIds": [encode(Kind::User, 999)]}),
            "taggedUserIds",
        ),
        (
            json!({"title": "ok", "taggedUserIds": [encode(Kind::Video, 1)]}),
            "taggedUserIds",
        ),
    ];
    for (input, field) in cases {
        let r = app.graphql(CREATE_VIDEO, json!({"i": input})).await;
        assert_eq!(r["data"]["createVideo"]["video"], Value::Null, "{input}");
        assert_eq!(
            r["data"]["createVideo"]["errors"][0]["path"],
            json!(["input", field]),
            "{input}: {r}"
        );
    }
    let r = app
        .graphql("{ channel { videos { nodes { id } } } }", json!({}))
        .await;
    assert_eq!(r["data"]["channel"]["videos"]["nodes"], json!([]));

    let r = app
        .graphql(
            UPDATE_VIDEO,
            json!({"i": {"videoId": encode(Kind::Video, 77), "title": "x"}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateVideo"]["errors"],
        json!([{"message": "No object found", "path": ["input", "videoId"]}])
    );
}

#[tokio::test]
async fn collections_form_a_tree_without_cycles() {
    let app = spawn_app().await;
    let mk = |name: &str, parent: Option<&str>| json!({"i": {"name": name, "parentId": parent}});
    let r = app.graphql(CREATE_COLLECTION, mk("Root", None)).await;
    let root = r["data"]["createCollection"]["collection"]["id"]
        .as_str()
        .expect("root")
        .to_owned();
    let r = app
        .graphql(CREATE_COLLECTION, mk("Child", Some(&root)))
        .await;
    let child = r["data"]["createCollection"]["collection"]["id"]
        .as_str()
        .expect("child")
        .to_owned();
    assert_eq!(
        r["data"]["createCollection"]["collection"]["parent"]["id"],
        json!(root)
    );
    let r = app
        .graphql(CREATE_COLLECTION, mk("Grandchild", Some(&child)))
        .await;
    let grandchild = r["data"]["createCollection"]["collection"]["id"]
        .as_str()
        .expect("gc")
        .to_owned();

    for (id, parent) in [(&root, &grandchild), (&root, &child), (&child, &child)] {
        let r = app
            .graphql(
                UPDATE_COLLECTION,
                json!({"i": {"collectionId": id, "parentId": parent}}),
            )
            .await;
        assert_eq!(
            r["data"]["updateCollection"]["errors"][0]["path"],
            json!(["input", "parentId"]),
            "{r}"
        );
    }
    let r = app.graphql(UPDATE_COLLECTION, json!({"i": {"collectionId": grandchild, "parentId": null, "adminIds": [encode(Kind::User, 1)]}})).await;
    let c = &r["data"]["updateCollection"]["collection"];
    assert_eq!(c["parent"], Value::Null);
    assert_eq!(c["admins"], json!([{"id": encode(Kind::User, 1)}]));
    let r = app
        .graphql(
            UPDATE_COLLECTION,
            json!({"i": {"collectionId": root, "name": ""}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateCollection"]["errors"][0]["path"],
        json!(["input", "name"])
    );

    // Deleting a parent makes its children top-level.
    app.graphql("mutation ($i: DeleteCollectionInput!) { deleteCollection(input: $i) { errors { message } } }", json!({"i": {"collectionId": root}})).await;
    let r = app
        .graphql(
            "query ($id: ID!) { node(id: $id) { ... on Collection { parent { id } } } }",
            json!({"id": child}),
        )
        .await;
    assert_eq!(r["data"]["node"]["parent"], Value::Null);
}

#[tokio::test]
async fn nodes_resolve_every_type_and_null_for_the_unknown() {
    let app = spawn_app().await;
    let r = app
        .graphql(CREATE_COLLECTION, json!({"i": {"name": "C"}}))
        .await;
    let coll = r["data"]["createCollection"]["collection"]["id"]
        .as_str()
        .expect("c")
        .to_owned();
    let r = app
        .graphql("{ channel { id } viewer { id } }", json!({}))
        .await;
    let channel = r["data"]["channel"]["id"]
        .as_str()
        .expect("channel")
        .to_owned();
    let user = r["data"]["viewer"]["id"].as_str().expect("user").to_owned();
    let r = app
        .graphql(
            "query ($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }",
            json!({"ids": [coll, channel, user, "bm9wZQ==", encode(Kind::Video, 5)]}),
        )
        .await;
    assert_eq!(
        r["data"]["nodes"],
        json!([{"__typename": "Collection", "id": coll}, {"__typename": "Channel", "id": channel}, {"__typename": "User", "id": user}, null, null])
    );
}

#[tokio::test]
async fn members_and_videos_paginate() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.graphql(CREATE_VIDEO, json!({"i": {"title": format!("Video {i}")}}))
            .await;
    }
    let r = app.graphql("{ channel { videos(first: 2) { nodes { title } pageInfo { hasNextPage endCursor } } members { nodes { email } } } }", json!({})).await;
    let ch = &r["data"]["channel"];
    assert_eq!(
        ch["videos"]["nodes"],
        json!([{"title": "Video 0"}, {"title": "Video 1"}])
    );
    assert_eq!(ch["videos"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(
        ch["members"]["nodes"],
        json!([{"email": "admin@example.com"}, {"email": "member@example.com"}])
    );
    let r = app
        .graphql("query ($a: String) { channel { videos(first: 2, after: $a) { nodes { title } pageInfo { hasNextPage } } } }", json!({"a": ch["videos"]["pageInfo"]["endCursor"]}))
        .await;
    assert_eq!(
        r["data"]["channel"]["videos"]["nodes"],
        json!([{"title": "Video 2"}])
    );
    assert_eq!(
        r["data"]["channel"]["videos"]["pageInfo"]["hasNextPage"],
        false
    );
}

#[tokio::test]
async fn a_created_collection_reads_back_as_it_was_answered() {
    let app = spawn_app().await;
    let admin = encode(Kind::User, 1);
    let fields =
        "id name url secret description createdAt admins { id } members { id } parent { id }";
    let create = format!("mutation ($i: CreateCollectionInput!) {{ createCollection(input: $i) {{ collection {{ {fields} }} errors {{ message }} }} }}");
    let read =
        format!("query ($id: ID!) {{ node(id: $id) {{ ... on Collection {{ {fields} }} }} }}");
    // A root collection with repeated ids, then a child of it.
    let r = app
        .graphql(
            &create,
            json!({"i": {"name": "Board Room", "description": "Q3", "secret": true,
                "adminIds": [admin, admin], "memberIds": [admin]}}),
        )
        .await;
    assert_eq!(r["data"]["createCollection"]["errors"], json!([]), "{r}");
    let root = r["data"]["createCollection"]["collection"].clone();
    assert_eq!(root["admins"], json!([{"id": admin}]));
    assert_eq!(root["members"], json!([{"id": admin}]));
    assert!(
        root["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/board-room")),
        "{root}"
    );
    let r = app
        .graphql(
            &create,
            json!({"i": {"name": "Annex", "parentId": root["id"], "adminIds": [admin]}}),
        )
        .await;
    assert_eq!(r["data"]["createCollection"]["errors"], json!([]), "{r}");
    let child = r["data"]["createCollection"]["collection"].clone();
    assert_eq!(child["parent"], json!({"id": root["id"]}));
    for answered in [root, child] {
        let r = app.graphql(&read, json!({"id": answered["id"]})).await;
        assert_eq!(r["data"]["node"], answered, "{r}");
    }
}
