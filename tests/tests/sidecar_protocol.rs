//! The sidecar binary over real pipes, in both framings, against the fake service: every
//! method, the notification after each change, and the connection surviving bad input.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::harness::{Framing, Scratch, SidecarClient};

/// Two accounts, `work` and `home`, added through the CLI; Claude Code ends on `home`.
async fn two_accounts() -> Scratch {
    two_accounts_living(None).await
}

/// Like [`two_accounts`], with access tokens that live `lifetime_secs`.
async fn two_accounts_living(lifetime_secs: Option<u64>) -> Scratch {
    let scratch = Scratch::new().await;
    scratch.fake.control().update_settings(switchboard_tests::fake::SettingsUpdate {
        access_token_lifetime_secs: lifetime_secs,
        ..Default::default()
    });
    scratch.add_work_and_home_by_cli().await;
    scratch
}

fn result(answer: &Value) -> &Value {
    assert!(answer.get("error").is_none(), "unexpected error: {answer}");
    &answer["result"]
}

fn error_kind(answer: &Value) -> &str {
    answer["error"]["data"]["kind"].as_str().unwrap_or_else(|| panic!("no error kind in {answer}"))
}

async fn every_method(framing: Framing) {
    let scratch = two_accounts().await;
    let mut sidecar = scratch.sidecar(framing).await;

    let init = sidecar.request("initialize", json!({"processId": null})).await;
    assert_eq!(result(&init)["protocolVersion"], 1);
    assert_eq!(result(&init)["serverInfo"]["name"], "switchboard");
    sidecar.send(&json!({"jsonrpc": "2.0", "method": "initialized", "params": {}})).await;

    let list = sidecar.request("account/list", json!({})).await;
    let list = result(&list);
    assert_eq!(list["active"], "home");
    assert_eq!(list["previous"], "work");
    let aliases: Vec<&str> =
        list["accounts"].as_array().unwrap().iter().map(|a| a["alias"].as_str().unwrap()).collect();
    assert_eq!(aliases, ["home", "work"]);

    let status = sidecar.request("account/status", json!({"validate": true})).await;
    let status = result(&status);
    assert_eq!(status["account"]["alias"], "home");
    assert_eq!(status["account"]["state"], "ok");
    assert!(status["account"]["validatedAt"].is_i64());
    assert_eq!(status["store"]["kind"], "file");
    assert_eq!(status["shadowedBy"], json!([]));

    let used = sidecar.request("account/use", json!({"alias": "work"})).await;
    let used = result(&used);
    assert_eq!(used["active"]["alias"], "work");
    assert_eq!(used["previous"], "home");
    assert_eq!(used["sessions"]["follow"], "nextRequest");
    let change = sidecar.notification_for("use", Duration::from_secs(5)).await;
    assert_eq!(change["active"], "work");
    assert_eq!(change["external"], false);

    let back = sidecar.request("account/use", json!({"alias": "-"})).await;
    assert_eq!(result(&back)["active"]["alias"], "home");
    assert_eq!(sidecar.notification_for("use", Duration::from_secs(5)).await["active"], "home");

    let removed = sidecar.request("account/remove", json!({"alias": "work"})).await;
    assert_eq!(result(&removed)["removed"], "work");
    let change = sidecar.notification_for("remove", Duration::from_secs(5)).await;
    assert_eq!(change["accounts"].as_array().unwrap().len(), 1);

    // Claude Code still has home's login: adding it again under its own alias re-adopts it.
    let added = sidecar.request("account/add", json!({"alias": "home"})).await;
    assert_eq!(result(&added)["alias"], "home");
    sidecar.notification_for("add", Duration::from_secs(5)).await;

    let shutdown = sidecar.request("shutdown", Value::Null).await;
    assert_eq!(result(&shutdown), &Value::Null);
    sidecar.send(&json!({"jsonrpc": "2.0", "method": "exit"})).await;
    let status = sidecar.close().await;
    assert!(status.success(), "exit after shutdown is success: {status:?}");
    assert_eq!(scratch.report().reuses, 0);
}

#[tokio::test]
async fn every_method_over_lsp_framing() {
    every_method(Framing::Lsp).await;
}

#[tokio::test]
async fn every_method_over_ndjson_framing() {
    every_method(Framing::Ndjson).await;
}

async fn errors_keep_the_connection(framing: Framing) {
    let scratch = two_accounts().await;
    let mut sidecar: SidecarClient = scratch.sidecar(framing).await;

    let unknown = sidecar.request("account/teleport", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601);

    let wrong = sidecar.request("account/use", json!({"name": "work"})).await;
    assert_eq!(wrong["error"]["code"], -32602);
    // JSON-RPC params are an object or an array; a bare string is not a valid request.
    let wrong = sidecar.request("account/use", json!("work")).await;
    assert_eq!(wrong["error"]["code"], -32600);

    let missing = sidecar.request("account/use", json!({"alias": "nobody"})).await;
    assert_eq!(missing["error"]["code"], -32001);
    assert_eq!(error_kind(&missing), "unknownAccount");

    let taken = sidecar.request("account/add", json!({"alias": "work"})).await;
    assert_eq!(error_kind(&taken), "aliasTaken");
    let again = sidecar.request("account/add", json!({"alias": "other"})).await;
    assert_eq!(error_kind(&again), "alreadyManaged");
    assert_eq!(again["error"]["data"]["alias"], "home");
    let bad_alias = sidecar.request("account/add", json!({"alias": "../etc"})).await;
    assert_eq!(bad_alias["error"]["code"], -32602);

    // Malformed JSON in the connection's framing, then a good request.
    match framing {
        Framing::Lsp => sidecar.send_raw(b"Content-Length: 9\r\n\r\n{\"jsonrpc").await,
        Framing::Ndjson => sidecar.send_raw(b"{\"jsonrpc\": oops}\n").await,
    }
    let parse_error = sidecar.read(Duration::from_secs(5)).await.expect("an answer");
    assert_eq!(parse_error["error"]["code"], -32700);
    assert_eq!(parse_error["id"], Value::Null);

    let list = sidecar.request("account/list", json!({})).await;
    assert_eq!(result(&list)["active"], "home");

    // No answer ever carries a token.
    let tokens = [scratch.live_refresh_token()];
    for answer in [&list, &taken, &missing] {
        let text = answer.to_string();
        for token in &tokens {
            assert!(!text.contains(token.as_str()), "a token leaked into an answer");
        }
    }
    assert!(sidecar.close().await.success(), "end of input exits 0");
}

#[tokio::test]
async fn errors_keep_the_lsp_connection_alive() {
    errors_keep_the_connection(Framing::Lsp).await;
}

#[tokio::test]
async fn errors_keep_the_ndjson_connection_alive() {
    errors_keep_the_connection(Framing::Ndjson).await;
}

#[tokio::test]
async fn a_needs_login_switch_is_an_error_with_its_kind() {
    // Tokens that live a minute count as expiring at once (Claude's five-minute rule), so the
    // switch must refresh work's snapshot; its lineage is revoked, so the refresh is refused.
    let scratch = two_accounts_living(Some(60)).await;
    let report = scratch.report();
    let work_lineage = &report.lineages[0].lineage;
    scratch.fake.control().revoke_lineage(work_lineage).unwrap();
    let before = scratch.live_login();
    let mut sidecar = scratch.sidecar(Framing::Ndjson).await;
    let refused = sidecar.request("account/use", json!({"alias": "work"})).await;
    assert_eq!(error_kind(&refused), "needsLogin");
    assert_eq!(refused["error"]["code"], -32002);
    assert!(refused["error"]["message"].as_str().unwrap().contains("claude /login"));
    assert_eq!(scratch.live_login(), before, "the live login is untouched");
    // What the refusal learned reaches clients at once.
    let change = sidecar.notification_for("state", Duration::from_secs(1)).await;
    let work =
        change["accounts"].as_array().unwrap().iter().find(|a| a["alias"] == "work").unwrap();
    assert_eq!(work["state"], "needsLogin");
    sidecar.close().await;
}

#[tokio::test]
async fn switches_sent_without_waiting_are_applied_in_the_order_they_arrived() {
    let scratch = two_accounts().await;
    let mut sidecar = scratch.sidecar(Framing::Ndjson).await;
    // Alternating switches in one write, so they all arrive before the first is done; the
    // last one sent must be the account Claude Code ends on.
    let aliases = ["work", "home", "work", "home", "work", "home", "work"];
    let mut batch = Vec::new();
    for (id, alias) in aliases.iter().enumerate() {
        let request = json!({"jsonrpc": "2.0", "id": id + 100, "method": "account/use",
            "params": {"alias": alias}});
        batch.extend(serde_json::to_vec(&request).unwrap());
        batch.push(b'\n');
    }
    sidecar.send_raw(&batch).await;
    for (id, alias) in aliases.iter().enumerate() {
        let answer = sidecar.answer_to(json!(id + 100)).await;
        assert_eq!(result(&answer)["active"]["alias"], *alias, "answer {id}: {answer}");
    }
    let list = sidecar.request("account/list", json!({})).await;
    assert_eq!(result(&list)["active"], "work");
    assert_eq!(scratch.oauth_account()["emailAddress"], "ada@example.com");
    assert_eq!(scratch.report().reuses, 0);
}
