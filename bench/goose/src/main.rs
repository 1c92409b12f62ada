//! The shipped profile-load flow (scenarios/profile-load.yaml) as a goose scenario, so
//! bench/scenario.sh can compare requests per CPU-second on the same work:
//!
//! - once per user at start: GET /demo/identities, status 200, take the `whale` user id and
//!   token from the JSON array;
//! - then in a loop: GET /users/{id}/profile with `Authorization: Bearer {token}`, status 200,
//!   capture `recent_investments[0].startup_id` from the JSON body; then
//!   GET /users/{id}/investments/total and GET /startups/{startup_id}, both with the bearer
//!   token and a status check. Goose's user is `&mut` for every request, so these two run one
//!   after the other (sonde runs them concurrently as a parallel group).
//!
//! Command line: goose's own (`--host`, `--users`, `--hatch-rate`, `--run-time`, ...). On exit
//! it prints one line `BENCH {"requests":N,"failures":M}` (all requests, setup included).

use goose::goose::GooseResponse;
use goose::prelude::*;
use serde_json::Value;

#[derive(Clone)]
struct Session {
    user_id: String,
    bearer: String,
}

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    let metrics = GooseAttack::initialize()?
        .register_scenario(
            scenario!("ProfileLoad")
                .register_transaction(transaction!(identities).set_on_start())
                .register_transaction(transaction!(profile_load)),
        )
        .execute()
        .await?;
    let (mut ok, mut failed) = (0usize, 0usize);
    for agg in metrics.requests.values() {
        ok += agg.success_count;
        failed += agg.fail_count;
    }
    println!(
        "BENCH {{\"requests\":{},\"failures\":{}}}",
        ok + failed,
        failed
    );
    Ok(())
}

/// GET path with the bearer token; a failure unless the status is 200. Returns the response.
async fn get_ok(
    user: &mut GooseUser,
    path: &str,
    bearer: &str,
) -> Result<GooseResponse, Box<TransactionError>> {
    let builder = user
        .get_request_builder(&GooseMethod::Get, path)?
        .header("Authorization", bearer);
    let request = GooseRequest::builder().set_request_builder(builder).build();
    let mut goose = user.request(request).await?;
    let status = goose
        .response
        .as_ref()
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    if status != 200 {
        user.set_failure("status is not 200", &mut goose.request, None, None)?;
    }
    Ok(goose)
}

async fn identities(user: &mut GooseUser) -> TransactionResult {
    let mut goose = user.get("/demo/identities").await?;
    let body: Option<Value> = match goose.response {
        Ok(r) if r.status().as_u16() == 200 => r.json().await.ok(),
        _ => None,
    };
    let whale = body.as_ref().and_then(|v| v.as_array()).and_then(|a| {
        a.iter()
            .find(|i| i.get("name").and_then(Value::as_str) == Some("whale"))
    });
    let (Some(id), Some(token)) = (
        whale.and_then(|w| w.get("user_id")),
        whale.and_then(|w| w.get("token")).and_then(Value::as_str),
    ) else {
        return user.set_failure("no whale identity", &mut goose.request, None, None);
    };
    let user_id = match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    user.set_session_data(Session {
        user_id,
        bearer: format!("Bearer {token}"),
    });
    Ok(())
}

async fn profile_load(user: &mut GooseUser) -> TransactionResult {
    let Some(session) = user.get_session_data::<Session>() else {
        return Ok(());
    };
    let (id, bearer) = (session.user_id.clone(), session.bearer.clone());

    let mut goose = get_ok(user, &format!("/users/{id}/profile"), &bearer).await?;
    let body: Option<Value> = match goose.response {
        Ok(r) => r.json().await.ok(),
        Err(_) => None,
    };
    let startup = body
        .as_ref()
        .and_then(|b| b.pointer("/recent_investments/0/startup_id"))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    let Some(startup) = startup else {
        return user.set_failure(
            "no recent_investments[0].startup_id",
            &mut goose.request,
            None,
            None,
        );
    };

    get_ok(user, &format!("/users/{id}/investments/total"), &bearer).await?;
    get_ok(user, &format!("/startups/{startup}"), &bearer).await?;
    Ok(())
}
