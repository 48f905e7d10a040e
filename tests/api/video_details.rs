//! Rewatch's video mutations: each changes a video as `updateVideo` does, with its
//! `video.updated`, and sends nothing when it changes nothing.

use crate::channel_events::{id, As};
use crate::content::CREATE_VIDEO;
use crate::helpers::{collection, spawn_app, TestReceiver, SECRET_A};
use herald::domain::ids::{encode, Kind};
use serde_json::{json, Value};

#[tokio::test]
async fn rewatchs_video_mutations_emit_video_updated() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = app
        .create_webhook(&rx.url(), &["VIDEO"], &[SECRET_A], 0)
        .await;
    let (one, two) = (collection(&app, "One").await, collection(&app, "Two").await);
    let member = encode(Kind::User, 2);
    let call = json!({"i": {"title": "Call", "presentedAt": "2021-07-15T09:30:00Z"}});
    let video = id(
        &app.graphql(CREATE_VIDEO, call).await["data"]["createVideo"],
        "video",
    );
    let admin = As(&app, &app.token);

    let details = json!({"videoId": video, "title": "API Design", "description": "Notes",
        "date": "2021-08-10", "visibility": "PRIVATE", "userIds": [member], "externalSharingEnabled": true});
    let select = "video { title description presentedAt visibility externalSharingEnabled taggedUsers { id } }";
    let r = admin.run("updateVideoDetails", details, select).await;
    assert_eq!(
        r["video"],
        json!({"title": "API Design", "description": "Notes", "presentedAt": "2021-08-10T09:30:00+00:00",
            "visibility": "PRIVATE", "externalSharingEnabled": true, "taggedUsers": [{"id": member}]}),
        "the date moves presentedAt, keeping its time of day: {r}"
    );
    let both = json!({"videoId": video, "collectionIds": [one, two]});
    let r = admin
        .run(
            "addVideoToCollections",
            both,
            "video { collections { id } }",
        )
        .await;
    assert_eq!(r["video"]["collections"], json!([{"id": one}, {"id": two}]));
    let again = json!({"videoId": video, "collectionIds": [one]});
    let r = admin
        .run("addVideoToCollections", again.clone(), "video { id }")
        .await;
    assert_eq!(r["errors"], json!([]), "already in it: nothing changes");
    let r = admin
        .run(
            "removeVideoFromCollections",
            again,
            "video { collections { id } }",
        )
        .await;
    assert_eq!(r["video"]["collections"], json!([{"id": two}]));
    let tag = json!({"videoId": video, "userIds": [member]});
    let r = admin
        .run(
            "untagUsersOnVideo",
            tag.clone(),
            "video { taggedUsers { id } }",
        )
        .await;
    assert_eq!(r["video"]["taggedUsers"], json!([]));
    let r = admin
        .run("tagUsersOnVideo", tag, "video { taggedUsers { id } }")
        .await;
    assert_eq!(r["video"]["taggedUsers"], json!([{"id": member}]));

    // Rewatch's rules: only the uploader or an admin changes the details; herald keeps no
    // share recipients.
    let mine = json!({"videoId": video, "title": "Mine"});
    let at_video = json!(["input", "videoId"]);
    As(&app, &app.member_token)
        .refused(
            "updateVideoDetails",
            mine,
            "PermissionError",
            at_video.clone(),
        )
        .await;
    let shared = json!({"videoId": video, "shareRecipientIds": [member]});
    let at_shares = json!(["input", "shareRecipientIds"]);
    admin
        .refused("updateVideoDetails", shared, "ValidationError", at_shares)
        .await;
    let not_a_user = json!({"videoId": video, "userIds": [one]});
    let at_users = json!(["input", "userIds"]);
    admin
        .refused("tagUsersOnVideo", not_a_user, "NotFoundError", at_users)
        .await;

    let mut changed: Vec<String> = rx
        .wait_for(6)
        .await
        .iter()
        .map(|r| r.json())
        .filter(|b| b["event"] == "video.updated")
        .map(|b| {
            let updates = b["updates"].as_object().cloned().unwrap_or_default();
            let mut fields: Vec<String> = updates.keys().cloned().collect();
            fields.sort_unstable();
            fields.join(",")
        })
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            "collections",
            "collections",
            "presentedAt,summary,taggedUsers,title,visibility",
            "taggedUsers",
            "taggedUsers"
        ]
    );
    let log = app.deliveries(&hook).await;
    let events: Vec<&Value> = log.iter().map(|d| &d["event"]).collect();
    assert_eq!(
        events.len(),
        6,
        "video.addedToChannel and five updates: {events:?}"
    );
}
