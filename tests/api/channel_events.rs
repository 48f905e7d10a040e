//! The MEMBER, GROUP, COMMENT and HIGHLIGHT events, end to end: the mutations that cause them,
//! the deliveries a subscribed webhook gets (and an unsubscribed one does not), and each
//! payload's shape.

use crate::content::CREATE_VIDEO;
use crate::helpers::{spawn_app, token_for, viewer_status, TestApp, TestReceiver, SECRET_A};
use herald::domain::content::Role;
use herald::domain::ids::{encode, Kind};
use serde_json::{json, Value};
use std::collections::HashMap;

/// A caller of the API in a test: the app, and the token it calls with.
#[derive(Clone, Copy)]
pub struct As<'a>(pub &'a TestApp, pub &'a str);

impl As<'_> {
    /// Runs mutation `name` (its input type is `<Name>Input`); returns its payload, with
    /// `select` and the errors.
    pub async fn run(self, name: &str, input: Value, select: &str) -> Value {
        let input_type = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
        let query = format!(
            "mutation ($i: {input_type}!) {{ {name}(input: $i) {{ {select} errors {{ __typename message path }} }} }}"
        );
        let r = self
            .0
            .graphql_as(self.1, &query, json!({ "i": input }))
            .await;
        assert_eq!(r.get("errors"), None, "{name}: {r}");
        r["data"][name].clone()
    }

    /// Runs mutation `name`, which must answer with one error: of type `kind`, at `path`.
    pub async fn refused(self, name: &str, input: Value, kind: &str, path: Value) {
        let r = self.run(name, input, "clientMutationId").await;
        let got: Vec<(&Value, &Value)> = r["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {r}"))
            .iter()
            .map(|e| (&e["__typename"], &e["path"]))
            .collect();
        assert_eq!(got, vec![(&json!(kind), &path)], "{name}: {r}");
    }
}

/// The ID of the object `key` in a payload.
pub fn id(payload: &Value, key: &str) -> String {
    payload[key]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{key}: {payload}"))
        .to_owned()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// The keys of a payload: the envelope, `object`, and `updates` if `updated`.
fn payload_keys(object: &str, updated: bool) -> Vec<&str> {
    let mut k = vec!["hookId", "nonce", "at", "event", "actor", "channel", object];
    k.extend(updated.then_some("updates"));
    k
}

/// Waits for `n` deliveries at `rx`; returns their bodies by event name, each event's in the
/// order they were made (their nonces begin with the time).
async fn bodies(rx: &TestReceiver, n: usize) -> HashMap<String, Vec<Value>> {
    let mut got: Vec<Value> = rx.wait_for(n).await.iter().map(|r| r.json()).collect();
    got.sort_by_key(|b| b["nonce"].as_str().unwrap_or_default().to_owned());
    let mut by_event: HashMap<String, Vec<Value>> = HashMap::new();
    for body in got {
        let event = body["event"].as_str().unwrap_or_default().to_owned();
        by_event.entry(event).or_default().push(body);
    }
    by_event
}

/// A webhook for `events` to a new receiver: its ID, and the receiver.
async fn hook(app: &TestApp, events: &[&str]) -> (String, TestReceiver) {
    let rx = TestReceiver::start().await;
    let id = app.create_webhook(&rx.url(), events, &[SECRET_A], 0).await;
    (id, rx)
}

#[tokio::test]
async fn members_are_invited_join_change_role_and_are_deactivated() {
    let app = spawn_app().await;
    let (_, rx) = hook(&app, &["MEMBER"]).await;
    let (videos_only, _other) = hook(&app, &["VIDEO"]).await;
    let (admin, member) = (As(&app, &app.token), As(&app, &app.member_token));
    let forbidden = ("PermissionError", Value::Null);
    let emails = |list: &[&str]| json!({ "emails": list });

    member
        .refused(
            "inviteUsers",
            emails(&["ada@example.com"]),
            forbidden.0,
            forbidden.1,
        )
        .await;
    let at_emails = json!(["input", "emails"]);
    let taken = emails(&["member@example.com"]);
    admin
        .refused("inviteUsers", taken, "ValidationError", at_emails)
        .await;
    let twice = emails(&[" ada@example.com ", "ada@example.com"]);
    let r = admin
        .run("inviteUsers", twice, "users { id email channelRole }")
        .await;
    let ada = r["users"][0]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        r["users"],
        json!([{"id": ada, "email": "ada@example.com", "channelRole": "MEMBER"}])
    );

    // An invited user's token may read `viewer` and accept the invitation, nothing else.
    let token = token_for(&app.store, "example", "ada@example.com", Role::Member).await;
    let r = app
        .graphql_as(&token, "{ channel { name } }", json!({}))
        .await;
    let said = r["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(said.contains("acceptInvitation"), "{r}");
    let r = app.graphql_as(&token, "{ viewer { id } }", json!({})).await;
    assert_eq!(r["data"]["viewer"]["id"], json!(ada));
    let r = As(&app, &token)
        .run("acceptInvitation", json!({}), "user { id }")
        .await;
    assert_eq!(r["user"]["id"], json!(ada), "{r}");
    let nothing_to_accept = ("ValidationError", Value::Null);
    As(&app, &token)
        .refused(
            "acceptInvitation",
            json!({}),
            nothing_to_accept.0,
            nothing_to_accept.1,
        )
        .await;

    let to_admin = json!({"userId": ada, "role": "ADMIN"});
    let r = admin
        .run("updateUserRole", to_admin, "user { channelRole }")
        .await;
    assert_eq!(r["user"]["channelRole"], "ADMIN", "{r}");
    let to_guest = json!({"userId": ada, "role": "GUEST"});
    let at_role = json!(["input", "role"]);
    admin
        .refused("updateUserRole", to_guest, "ValidationError", at_role)
        .await;
    let me = json!({"userIds": [encode(Kind::User, 1)]});
    let at_ids = json!(["input", "userIds"]);
    admin
        .refused("deactivateUsers", me, "ValidationError", at_ids)
        .await;
    let r = admin
        .run("deactivateUsers", json!({"userIds": [ada]}), "users { id }")
        .await;
    assert_eq!(r["errors"], json!([]), "{r}");
    let status = viewer_status(&app.url(""), &token).await;
    assert_eq!(status, 401, "a deactivated user's token stops working");

    let got = bodies(&rx, 4).await;
    let invited = &got["member.invited"][0];
    assert_eq!(keys(invited), payload_keys("member", false));
    assert_eq!(
        keys(&invited["member"]),
        [
            "id",
            "firstName",
            "lastName",
            "email",
            "createdAt",
            "role",
            "status"
        ]
    );
    assert_eq!(invited["member"]["id"], json!(ada));
    assert_eq!(invited["member"]["status"], "INVITED");
    assert_eq!(invited["actor"]["email"], "admin@example.com");
    let joined = &got["member.joined"][0];
    assert_eq!(joined["member"]["status"], "ACTIVE");
    assert_eq!(
        joined["actor"]["email"], "ada@example.com",
        "the one who joined"
    );
    let updated = &got["member.updated"][0];
    assert_eq!(keys(updated), payload_keys("member", true));
    let role = json!({"role": {"from": "MEMBER", "to": "ADMIN"}});
    assert_eq!(updated["updates"], role);
    let gone = &got["member.deactivated"][0]["member"];
    assert_eq!(
        (&gone["status"], &gone["role"]),
        (&json!("DEACTIVATED"), &json!("ADMIN"))
    );
    assert_eq!(rx.received().len(), 4, "one delivery per change");
    assert_eq!(app.deliveries(&videos_only).await, Vec::<Value>::new());

    // A deactivated user is invited anew.
    let r = admin
        .run("inviteUsers", emails(&["ada@example.com"]), "users { id }")
        .await;
    assert_eq!(r["users"][0]["id"], json!(ada), "{r}");
    let again = &bodies(&rx, 5).await["member.invited"];
    assert_eq!(again.len(), 2, "{again:?}");
}

#[tokio::test]
async fn groups_are_created_updated_and_deleted_and_collections_hold_them() {
    let app = spawn_app().await;
    let (_, rx) = hook(&app, &["GROUP", "COLLECTION"]).await;
    let (admin, member) = (As(&app, &app.token), As(&app, &app.member_token));
    let (admin_id, member_id) = (encode(Kind::User, 1), encode(Kind::User, 2));

    let design = json!({"name": "Design"});
    member
        .refused("createGroup", design, "PermissionError", Value::Null)
        .await;
    let design = json!({"name": "Design", "memberIds": [member_id]});
    let r = admin
        .run("createGroup", design, "group { id name members { id } }")
        .await;
    let group = id(&r, "group");
    assert_eq!(
        r["group"],
        json!({"id": group, "name": "Design", "members": [{"id": member_id}]})
    );
    let rename =
        json!({"groupId": group, "name": "Design team", "memberIds": [admin_id, member_id]});
    let r = admin.run("updateGroup", rename, "group { name }").await;
    assert_eq!(r["group"]["name"], "Design team");
    let same = json!({"groupId": group, "name": "Design team"});
    admin.run("updateGroup", same, "group { name }").await;
    let specs = json!({"name": "Specs", "adminIds": [group, member_id]});
    let select = "collection { id admins { id } adminGroups { id } }";
    let r = admin.run("createCollection", specs, select).await;
    let coll = id(&r, "collection");
    assert_eq!(r["collection"]["admins"], json!([{"id": member_id}]));
    assert_eq!(r["collection"]["adminGroups"], json!([{"id": group}]));
    let r = app
        .graphql(
            "{ channel { groups { totalCount nodes { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["channel"]["groups"]["totalCount"], 1);
    let r = admin
        .run("deleteGroup", json!({"groupId": group}), "group { id }")
        .await;
    assert_eq!(id(&r, "group"), group);
    let read = "query ($id: ID!) { node(id: $id) { ... on Collection { adminGroups { id } } } }";
    let r = app.graphql(read, json!({"id": coll})).await;
    assert_eq!(r["data"]["node"]["adminGroups"], json!([]));

    let got = bodies(&rx, 5).await;
    let created = &got["group.created"][0];
    assert_eq!(keys(created), payload_keys("group", false));
    let shape = ["id", "name", "description", "members", "createdAt"];
    assert_eq!(keys(&created["group"]), shape);
    assert_eq!(
        created["group"]["members"][0]["email"],
        "member@example.com"
    );
    let updated = &got["group.updated"][0];
    assert_eq!(keys(updated), payload_keys("group", true));
    assert_eq!(
        keys(&updated["updates"]),
        ["name", "members"],
        "one update changed nothing"
    );
    let renamed = json!({"from": "Design", "to": "Design team"});
    assert_eq!(updated["updates"]["name"], renamed);
    let admins = &got["collection.created"][0]["collection"]["admins"];
    assert_eq!(admins[0]["id"], json!(member_id), "users first");
    assert_eq!(admins[1]["id"], json!(group), "then groups");
    assert_eq!(admins[1]["name"], "Design team");
    assert_eq!(got["group.deleted"][0]["group"]["id"], json!(group));
    let lost = &got["collection.updated"][0]["updates"]["admins"];
    assert_eq!(lost["from"].as_array().map(Vec::len), Some(2));
    assert_eq!(lost["to"], json!([admins[0]]), "{lost}");
    assert_eq!(rx.received().len(), 5);
}

#[tokio::test]
async fn comments_and_highlights_are_added_and_removed() {
    let app = spawn_app().await;
    let (_, rx) = hook(&app, &["COMMENT", "HIGHLIGHT"]).await;
    let (videos_only, _other) = hook(&app, &["VIDEO"]).await;
    let (admin, member) = (As(&app, &app.token), As(&app, &app.member_token));
    let demo = json!({"i": {"title": "Demo", "duration": 120.0}});
    let video = id(
        &app.graphql(CREATE_VIDEO, demo).await["data"]["createVideo"],
        "video",
    );
    let draft = json!({"i": {"title": "Draft", "draft": true}});
    let draft = id(
        &app.graphql(CREATE_VIDEO, draft).await["data"]["createVideo"],
        "video",
    );

    let on_draft = json!({"videoId": draft, "body": "hi"});
    let at_video = json!(["input", "videoId"]);
    admin
        .refused("addCommentToVideo", on_draft, "ValidationError", at_video)
        .await;
    let late = json!({"videoId": video, "title": "Late", "startTime": 100, "endTime": 121});
    let at_end = json!(["input", "endTime"]);
    admin
        .refused("addHighlightToVideo", late, "ValidationError", at_end)
        .await;

    let intro = json!({"videoId": video, "title": "Intro", "startTime": 10, "endTime": 20.5});
    let r = admin
        .run(
            "addHighlightToVideo",
            intro,
            "highlight { id startTime endTime }",
        )
        .await;
    let highlight = id(&r, "highlight");
    let range = json!({"id": highlight, "startTime": 10.0, "endTime": 20.5});
    assert_eq!(r["highlight"], range);
    let great = json!({"videoId": video, "body": " Great talk "});
    let r = member
        .run("addCommentToVideo", great, "comment { id body }")
        .await;
    let comment = id(&r, "comment");
    assert_eq!(r["comment"]["body"], "Great talk");
    let this = json!({"highlightId": highlight, "body": "This part"});
    let r = member
        .run(
            "addCommentToHighlight",
            this,
            "comment { id highlight { id } }",
        )
        .await;
    let on_highlight = id(&r, "comment");
    assert_eq!(r["comment"]["highlight"]["id"], json!(highlight));

    let not_mine = json!({"highlightId": highlight});
    let at_highlight = json!(["input", "highlightId"]);
    member
        .refused("removeHighlight", not_mine, "PermissionError", at_highlight)
        .await;
    let r = member
        .run(
            "removeComment",
            json!({"commentId": comment}),
            "comment { id }",
        )
        .await;
    assert_eq!(id(&r, "comment"), comment, "the author may");
    let gone = json!({"highlightId": highlight});
    let r = admin.run("removeHighlight", gone, "highlight { id }").await;
    assert_eq!(id(&r, "highlight"), highlight, "an admin may");
    let read = "query ($id: ID!) { node(id: $id) { ... on Video { highlights { id } comments { id highlight { id } } } } }";
    let r = app.graphql(read, json!({"id": video})).await;
    assert_eq!(
        r["data"]["node"],
        json!({"highlights": [], "comments": [{"id": on_highlight, "highlight": null}]}),
        "a comment made on a removed highlight stays on the video"
    );

    let got = bodies(&rx, 5).await;
    let created = &got["highlight.created"][0];
    assert_eq!(keys(created), payload_keys("highlight", false));
    let shape = [
        "id",
        "title",
        "startTime",
        "endTime",
        "creator",
        "video",
        "createdAt",
    ];
    assert_eq!(keys(&created["highlight"]), shape);
    assert_eq!(created["highlight"]["endTime"], json!(20.5));
    assert_eq!(created["highlight"]["video"]["id"], json!(video));
    assert_eq!(created["highlight"]["video"]["duration"], json!(120.0));
    let comments = &got["comment.created"];
    assert_eq!(keys(&comments[0]), payload_keys("comment", false));
    let shape = ["id", "body", "author", "video", "highlight", "createdAt"];
    assert_eq!(keys(&comments[0]["comment"]), shape);
    let first_is_plain = comments[0]["comment"]["id"] == json!(comment);
    let (plain, on) = if first_is_plain { (0, 1) } else { (1, 0) };
    assert_eq!(comments[plain]["comment"]["highlight"], Value::Null);
    assert_eq!(
        comments[plain]["comment"]["author"]["email"],
        "member@example.com"
    );
    let nested = [
        "id",
        "title",
        "startTime",
        "endTime",
        "creator",
        "createdAt",
    ];
    assert_eq!(
        keys(&comments[on]["comment"]["highlight"]),
        nested,
        "no second video"
    );
    let removed = &got["comment.removed"][0];
    assert_eq!(removed["comment"]["id"], json!(comment));
    assert_eq!(removed["actor"]["email"], "member@example.com");
    assert_eq!(
        got["highlight.deleted"][0]["highlight"]["id"],
        json!(highlight)
    );
    assert_eq!(rx.received().len(), 5);
    let log = app.deliveries(&videos_only).await;
    assert_eq!(log.len(), 1, "only the video's own event: {log:?}");
}

#[tokio::test]
async fn the_log_and_the_headers_name_the_new_events() {
    let app = spawn_app().await;
    let (hook_id, rx) = hook(&app, &["GROUP"]).await;
    let ops = json!({"name": "Ops"});
    As(&app, &app.token)
        .run("createGroup", ops, "group { id }")
        .await;
    let log = app.deliveries(&hook_id).await;
    assert_eq!(log[0]["event"], "GROUP_CREATED");
    let got = rx.wait_for(1).await;
    assert_eq!(
        got[0].header("rewatch-hook-delivery-event"),
        "group.created"
    );
}
