//! The `herald` binary's one-off commands: migrate, token and user, their refusals of bad
//! settings and of an unreachable database, and `--help`.

use crate::helpers::{
    eventually, fails, herald, herald_on, spawn_app, start, succeeds, test_config, viewer_status,
    TestApp, TestDb, DEADLINE,
};
use serde_json::json;

#[tokio::test]
async fn token_create_prints_only_the_token_and_it_works() {
    let db = TestDb::new().await;
    succeeds(herald_on(&db.url).arg("migrate")).await;
    let (stdout, _) = succeeds(herald_on(&db.url).args([
        "token",
        "create",
        "--channel",
        "acme",
        "--email",
        "ops@acme.test",
        "--role",
        "member",
        "--first-name",
        "Ops",
    ]))
    .await;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout:?}");
    assert!(lines[0].starts_with("hrld_") && lines[0].len() == 69);

    let err = fails(herald_on(&db.url).args([
        "token",
        "create",
        "--channel",
        "no spaces!",
        "--email",
        "x@y.z",
    ]))
    .await;
    assert!(err.contains("--channel"), "{err}");

    let config = test_config(&db.url);
    let app = start(db, config).await;
    assert_eq!(viewer_status(&app.url(""), lines[0]).await, 200);
}

#[tokio::test]
async fn a_bad_setting_is_refused_with_its_name() {
    let db = TestDb::new().await;
    let err = fails(
        herald_on(&db.url)
            .arg("serve")
            .env("HERALD_RETRY_FACTOR", "0.1"),
    )
    .await;
    assert!(err.contains("HERALD_RETRY_FACTOR"), "{err}");
    let err = fails(herald_on("mysql://nope").arg("migrate")).await;
    assert!(err.contains("DATABASE_URL"), "{err}");
}

#[tokio::test]
async fn a_boolean_setting_that_is_not_one_is_refused_with_its_name() {
    let db = TestDb::new().await;
    for value in ["maybe", "enabled", "2"] {
        let err = fails(herald_on(&db.url).arg("serve").env("HERALD_DEV", value)).await;
        assert!(err.contains("HERALD_DEV"), "{err}");
        assert!(err.contains(&format!("{value:?}")), "{err}");
        assert!(err.contains("true/false, 1/0, yes/no or on/off"), "{err}");
    }
}

#[tokio::test]
async fn one_off_commands_give_up_on_an_unreachable_postgres_with_the_cause() {
    for args in [&["migrate"][..], &["token", "list"]] {
        let err = fails(herald_on("postgres://postgres:sekret@127.0.0.1:1/x").args(args)).await;
        assert!(err.contains("127.0.0.1:1"), "{err}");
        assert!(err.contains("Connection refused"), "{err}");
        assert!(!err.contains("sekret"), "{err}");
    }
}

async fn help(args: &[&str]) -> String {
    succeeds(herald().args(args).arg("--help")).await.0
}

#[tokio::test]
async fn each_subcommand_help_shows_only_its_own_options() {
    let serve_only = [
        "--listen",
        "--dev",
        "--retry-base-ms",
        "--initial-token-file",
    ];
    let serve = help(&["serve"]).await;
    for option in serve_only.iter().chain(&["--database-url"]) {
        assert!(
            serve.contains(option),
            "serve --help lacks {option}:\n{serve}"
        );
    }
    assert!(serve.contains("Examples:"), "{serve}");

    let listen = help(&["listen"]).await;
    for option in ["--forward-to", "--server", "--token", "--events"] {
        assert!(listen.contains(option), "{listen}");
    }
    assert!(listen.contains("Example"), "{listen}");
    assert!(!listen.contains("--database-url"), "{listen}");

    let create = help(&["token", "create"]).await;
    for option in ["--channel", "--email", "--role", "--database-url"] {
        assert!(create.contains(option), "{create}");
    }
    assert!(create.contains("Examples:"), "{create}");

    let database_only = [
        help(&["migrate"]).await,
        help(&["token", "list"]).await,
        help(&["token", "revoke"]).await,
        help(&["user", "set-role"]).await,
        create,
        listen,
    ];
    for text in database_only {
        for option in serve_only {
            assert!(!text.contains(option), "{option} shown in:\n{text}");
        }
    }
}

/// Runs `herald ARGS` on `app`'s database; it must succeed. Returns (stdout, stderr).
async fn cli_ok(app: &TestApp, args: &[&str]) -> (String, String) {
    succeeds(herald_on(&app.db.url).args(args)).await
}

/// The `token list` row of `email`'s token, split into words.
async fn token_row(app: &TestApp, email: &str) -> Vec<String> {
    let (table, _) = cli_ok(app, &["token", "list", "--channel", "acme"]).await;
    let line = table
        .lines()
        .find(|l| l.contains(email))
        .unwrap_or_else(|| panic!("no row for {email}:\n{table}"));
    line.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn tokens_are_listed_and_a_revoked_one_gets_401() {
    let app = spawn_app().await;
    let ops = ["--channel", "acme", "--email", "ops@acme.test"];
    let (out, _) = cli_ok(&app, &[&["token", "create"][..], &ops].concat()).await;
    let token = out.trim().to_owned();

    let (table, _) = cli_ok(&app, &["token", "list"]).await;
    let header = table.lines().next().expect("header").split("  ");
    let header: Vec<&str> = header.map(str::trim).filter(|c| !c.is_empty()).collect();
    let expected = "ID|CHANNEL|USER|ROLE|CREATED (UTC)|LAST USED (UTC)|REVOKED (UTC)";
    assert_eq!(header.join("|"), expected, "{table}");
    assert!(table.contains("admin@example.com"), "all channels: {table}");
    let row = token_row(&app, "ops@acme.test").await;
    // ID, channel, user, role, created (date and time), last used, revoked.
    assert_eq!(row[1..4], ["acme", "ops@acme.test", "admin"], "{row:?}");
    assert_eq!(row[6..], ["never", "-"], "{row:?}");
    let (other, _) = cli_ok(&app, &["token", "list", "--channel", "acme"]).await;
    assert!(!other.contains("admin@example.com"), "{other}");

    // A use is noted in the background, so the list shows it only eventually.
    assert_eq!(viewer_status(&app.url(""), &token).await, 200);
    eventually(DEADLINE, || async {
        let row = token_row(&app, "ops@acme.test").await;
        if row[6] == "never" {
            Err(row)
        } else {
            Ok(())
        }
    })
    .await;

    let id = row[0].clone();
    let (_, said) = cli_ok(&app, &["token", "revoke", &id]).await;
    assert!(said.contains("revoked"), "{said}");
    assert_eq!(viewer_status(&app.url(""), &token).await, 401);
    let row = token_row(&app, "ops@acme.test").await;
    assert_ne!(row.last().map(String::as_str), Some("-"), "{row:?}");
    // The server's own tokens still work.
    assert_eq!(viewer_status(&app.url(""), &app.token).await, 200);

    let err = fails(herald_on(&app.db.url).args(["token", "revoke", "999999"])).await;
    assert!(err.contains("no token has ID 999999"), "{err}");
}

async fn can_see_webhooks(app: &TestApp, token: &str) -> bool {
    let r = app
        .graphql_as(
            token,
            "{ channel { webhooks { nodes { id } } } }",
            json!({}),
        )
        .await;
    match r["errors"][0]["message"].as_str() {
        None => true,
        Some(m) if m.contains("Only channel admins") => false,
        Some(m) => panic!("unexpected error {m}"),
    }
}

/// Runs `herald ARGS --channel acme --email m@acme.test`; returns (stdout, stderr).
async fn for_m(app: &TestApp, args: &[&str]) -> (String, String) {
    let user = ["--channel", "acme", "--email", "m@acme.test"];
    cli_ok(app, &[args, &user].concat()).await
}

#[tokio::test]
async fn roles_are_changed_by_token_create_and_user_set_role_and_said_so() {
    let app = spawn_app().await;
    let (out, said) = for_m(&app, &["token", "create", "--role", "member"]).await;
    assert!(!said.contains("now"), "{said}");
    let token = out.trim().to_owned();
    assert!(!can_see_webhooks(&app, &token).await);

    // Without --role, an existing user keeps the role they have.
    let (_, said) = for_m(&app, &["token", "create"]).await;
    assert!(!said.contains("now"), "{said}");
    assert!(!can_see_webhooks(&app, &token).await);

    let (_, said) = for_m(&app, &["token", "create", "--role", "admin"]).await;
    let promoted = "herald: user m@acme.test was a member of channel acme; now an admin";
    assert!(said.contains(promoted), "{said}");
    assert!(
        can_see_webhooks(&app, &token).await,
        "all the user's tokens"
    );
    assert_eq!(token_row(&app, "m@acme.test").await[3], "admin");

    let (_, said) = for_m(&app, &["user", "set-role", "--role", "member"]).await;
    let demoted = "herald: user m@acme.test was an admin of channel acme; now a member";
    assert!(said.contains(demoted), "{said}");
    assert!(!can_see_webhooks(&app, &token).await);
    let (_, said) = for_m(&app, &["user", "set-role", "--role", "member"]).await;
    assert!(said.contains("is already a member"), "{said}");

    let unknown = [
        "--channel",
        "acme",
        "--email",
        "x@acme.test",
        "--role",
        "admin",
    ];
    let err = fails(
        herald_on(&app.db.url)
            .args(["user", "set-role"])
            .args(unknown),
    )
    .await;
    assert!(err.contains("no user x@acme.test in channel acme"), "{err}");
}
