//! Onboarding for the signed-in user: start (or restart), steps 1-3 (profile, KYC, terms; each
//! validates what it is given and fills defaults for the rest), complete. Home of the
//! `onboarding-locale` fault.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sqlx::Row;

use super::body::{int_value, json_object, only_fields, optional_bool, optional_str};
use super::problem::ApiError;
use super::{Shared, User, feature_flags, locale};
use crate::demo::db::Db;
use crate::demo::timing;

const DOCUMENT_TYPES: [&str; 3] = ["passport", "id_card", "driving_licence"];

/// Builds the flow's current state as JSON, or `None` if it was never started.
async fn load(db: &Db, user_id: i64) -> Result<Option<Value>, sqlx::Error> {
    let row = timing::db(
        sqlx::query(
            "SELECT started_at, step1, step2, step3, completed_at FROM onboarding
             WHERE user_id = ?1",
        )
        .bind(user_id)
        .fetch_optional(&db.read),
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    let step = |i: usize| -> Result<Value, sqlx::Error> {
        let text: Option<String> = row.try_get(i)?;
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null))
    };
    let steps = [step(1)?, step(2)?, step(3)?];
    let next_step = steps.iter().position(Value::is_null).map(|i| i + 1);
    let started_at: String = row.try_get(0)?;
    let completed_at: Option<String> = row.try_get(4)?;
    Ok(Some(json!({
        "user_id": user_id,
        "started_at": started_at,
        "profile": steps[0],
        "kyc": steps[1],
        "terms": steps[2],
        "next_step": next_step,
        "completed_at": completed_at,
    })))
}

fn not_started() -> ApiError {
    ApiError::conflict(
        "onboarding-not-started",
        "onboarding has not been started; POST /onboarding/start first",
    )
}

/// `POST /onboarding/start`: begins the flow, or restarts it from step 1.
pub(crate) async fn start(
    State(state): State<Shared>,
    User(user_id): User,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let map = json_object(&headers, body, true)?;
    only_fields(&map, "", &[])?;
    timing::db(async {
        let mut tx = state.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO onboarding (user_id, started_at)
             VALUES (?1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
             ON CONFLICT (user_id) DO UPDATE SET started_at = excluded.started_at,
                 step1 = NULL, step2 = NULL, step3 = NULL, completed_at = NULL",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    })
    .await?;
    let flow = load(&state.db, user_id).await?.ok_or_else(not_started)?;
    Ok(Json(flow).into_response())
}

/// `POST /onboarding/steps/{n}` for n = 1 (profile), 2 (KYC), 3 (terms).
pub(crate) async fn step(
    State(state): State<Shared>,
    User(user_id): User,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let n: usize = match raw.as_str() {
        "1" => 1,
        "2" => 2,
        "3" => 3,
        _ => return Err(ApiError::not_found("onboarding step (use 1, 2 or 3)")),
    };
    let map = json_object(&headers, body, true)?;
    let flow = load(&state.db, user_id).await?.ok_or_else(not_started)?;
    if !flow["completed_at"].is_null() {
        return Err(ApiError::conflict(
            "onboarding-completed",
            "onboarding is already complete; POST /onboarding/start to restart it",
        ));
    }
    let lang = locale(&headers).unwrap_or_else(|| "en".to_string());
    let filled = match n {
        1 => profile_step(&map, &lang)?,
        2 => kyc_step(
            &map,
            &flow,
            feature_flags(&headers).contains("new_kyc_form"),
        )?,
        _ => terms_step(&map)?,
    };
    let column = ["step1", "step2", "step3"][n - 1];
    timing::db(async {
        let mut tx = state.db.begin_write().await?;
        sqlx::query(&format!(
            "UPDATE onboarding SET {column} = ?2 WHERE user_id = ?1"
        ))
        .bind(user_id)
        .bind(filled.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    })
    .await?;
    let flow = load(&state.db, user_id).await?.ok_or_else(not_started)?;
    Ok(Json(flow).into_response())
}

fn country(map: &Map<String, Value>, prefix: &str, name: &str) -> Result<Option<String>, ApiError> {
    match optional_str(map, prefix, name, 2)? {
        Some(c) if c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
            Ok(Some(c.to_ascii_uppercase()))
        }
        Some(_) => Err(ApiError::invalid(
            format!("{prefix}{name}"),
            "must be a two-letter country code such as DE",
        )),
        None => Ok(None),
    }
}

fn profile_step(map: &Map<String, Value>, lang: &str) -> Result<Value, ApiError> {
    only_fields(map, "", &["display_name", "country", "birth_year"])?;
    let display_name = optional_str(map, "", "display_name", 100)?;
    let default_country = match lang.split('-').next().unwrap_or("") {
        "de" => "DE",
        "fr" => "FR",
        "es" => "ES",
        _ => "US",
    };
    let country = country(map, "", "country")?.unwrap_or_else(|| default_country.to_string());
    let birth_year = match map.get("birth_year") {
        None | Some(Value::Null) => 1990,
        Some(v) => int_value(v, "birth_year", 1900, 2008)?,
    };
    Ok(json!({
        "display_name": display_name.unwrap_or_else(|| "Demo Investor".to_string()),
        "country": country,
        "birth_year": birth_year,
        "locale": lang,
    }))
}

fn kyc_step(map: &Map<String, Value>, flow: &Value, new_form: bool) -> Result<Value, ApiError> {
    let mut allowed = vec!["document_type", "document_number", "tax_residency"];
    if new_form {
        allowed.push("address");
    }
    only_fields(map, "", &allowed)?;
    let document_type = match optional_str(map, "", "document_type", 40)? {
        Some(t) if DOCUMENT_TYPES.contains(&t.as_str()) => t,
        Some(_) => {
            return Err(ApiError::invalid(
                "document_type",
                format!("must be one of: {}", DOCUMENT_TYPES.join(", ")),
            ));
        }
        None => "passport".to_string(),
    };
    let document_number = match optional_str(map, "", "document_number", 32)? {
        Some(d) if d.len() >= 4 && d.chars().all(|c| c.is_ascii_alphanumeric()) => d,
        Some(_) => {
            return Err(ApiError::invalid(
                "document_number",
                "must be 4 to 32 letters or digits",
            ));
        }
        None => "DEMO0000".to_string(),
    };
    let residency = country(map, "", "tax_residency")?.unwrap_or_else(|| {
        flow["profile"]["country"]
            .as_str()
            .unwrap_or("US")
            .to_string()
    });
    let mut kyc = json!({
        "document_type": document_type,
        "document_number": document_number,
        "tax_residency": residency,
        "form_version": if new_form { 2 } else { 1 },
    });
    if new_form {
        let address = optional_str(map, "", "address", 200)?;
        kyc["address"] = json!(address.unwrap_or_else(|| "1 Demo Street".to_string()));
    }
    Ok(kyc)
}

fn terms_step(map: &Map<String, Value>) -> Result<Value, ApiError> {
    only_fields(map, "", &["accept_terms", "marketing_opt_in"])?;
    if optional_bool(map, "", "accept_terms")? == Some(false) {
        return Err(ApiError::invalid(
            "accept_terms",
            "the terms must be accepted to finish onboarding",
        ));
    }
    let marketing = optional_bool(map, "", "marketing_opt_in")?.unwrap_or(false);
    Ok(json!({"accept_terms": true, "marketing_opt_in": marketing, "terms_version": "2024-01"}))
}

/// The v2 KYC form's summary line, as the (buggy) localised formatter writes it.
fn kyc_limit_summary(lang: &str, limit_cents: i64) -> String {
    let (thousands, decimal) = if lang.starts_with("de") {
        ('.', ',')
    } else {
        (',', '.')
    };
    let digits = (limit_cents / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(thousands);
        }
        grouped.push(ch);
    }
    format!("{grouped}{decimal}{:02}", limit_cents % 100)
}

/// `POST /onboarding/complete`: 200 once steps 1-3 are done, 409 otherwise.
pub(crate) async fn complete(
    State(state): State<Shared>,
    User(user_id): User,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let map = json_object(&headers, body, true)?;
    only_fields(&map, "", &[])?;
    let flow = load(&state.db, user_id).await?.ok_or_else(not_started)?;
    let missing: Vec<&str> = [("1", "profile"), ("2", "kyc"), ("3", "terms")]
        .iter()
        .filter(|(_, k)| flow[*k].is_null())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::conflict(
            "onboarding-incomplete",
            format!("finish step(s) {} first", missing.join(", ")),
        ));
    }
    let lang = locale(&headers).unwrap_or_else(|| "en".to_string());
    if state.faults.onboarding_locale && feature_flags(&headers).contains("new_kyc_form") {
        // The injected bug: the new form re-parses its own localised summary as a plain
        // number, which only breaks where the decimal separator is a comma.
        let summary = kyc_limit_summary(&lang, 100_000_000);
        let plain = summary.replace(',', "");
        if let Err(err) = plain.parse::<f64>() {
            return Err(ApiError::internal(
                "onboarding complete (new_kyc_form)",
                &format!("cannot parse KYC limit {summary:?}: {err}"),
            ));
        }
    }
    if flow["completed_at"].is_null() {
        timing::db(async {
            let mut tx = state.db.begin_write().await?;
            sqlx::query(
                "UPDATE onboarding SET completed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
                 WHERE user_id = ?1 AND completed_at IS NULL",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
        .await?;
    }
    let mut flow = load(&state.db, user_id).await?.ok_or_else(not_started)?;
    flow["message"] = json!(if lang.starts_with("de") {
        "Willkommen an Bord!"
    } else {
        "Welcome aboard!"
    });
    Ok(Json(flow).into_response())
}
