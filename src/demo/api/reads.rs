//! Read-only endpoints: demo identities, a user's total and profile (with the `slow-profile`
//! fault's N+1 path), and the startup catalogue with bound-parameter filters. No writes.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use super::problem::ApiError;
use super::{Shared, User, path_id};
use crate::demo::db::Db;
use crate::demo::model::{INVESTMENT_COLUMNS, Investment, STARTUP_COLUMNS, Startup, rfc3339};
use crate::demo::seed::STAGES;
use crate::demo::timing;

const RECENT: i64 = 10;
const MAX_PER_PAGE: i64 = 100;
const DEFAULT_PER_PAGE: i64 = 20;

/// `GET /demo/identities`: seeded users and their tokens. Demo-only, and it says so.
pub(crate) async fn identities(State(state): State<Shared>) -> Response {
    let mut resp = Json(&state.identities).into_response();
    let headers = resp.headers_mut();
    headers.insert("x-demo-only", HeaderValue::from_static("true"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The path's user id, if it is the signed-in user; anyone else's is 404, like a missing one.
fn own_user(raw: &str, user: User) -> Result<i64, ApiError> {
    let id = path_id(raw, "user")?;
    if id == user.0 {
        Ok(id)
    } else {
        Err(ApiError::not_found("user"))
    }
}

/// `GET /users/{id}/investments/total`: the sum of completed investments (0 for none).
pub(crate) async fn total(
    State(state): State<Shared>,
    user: User,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = own_user(&raw, user)?;
    let (total, count): (i64, i64) = timing::db(
        sqlx::query_as(
            "SELECT COALESCE(SUM(amount_cents), 0), COUNT(*) FROM investments
             WHERE user_id = ?1 AND status = 'completed'",
        )
        .bind(id)
        .fetch_one(&state.db.read),
    )
    .await?;
    Ok(
        Json(json!({"user_id": id, "total_cents": total, "completed_count": count}))
            .into_response(),
    )
}

#[derive(Debug, Serialize)]
struct ProfileUser {
    id: i64,
    name: String,
    email: String,
    created_at: String,
}

#[derive(Debug, Default, Serialize)]
struct Totals {
    investments_count: i64,
    completed_count: i64,
    invested_cents: i64,
    in_flight_cents: i64,
}

#[derive(Debug, Serialize)]
struct Recent {
    #[serde(flatten)]
    investment: Investment,
    startup: Startup,
}

/// `GET /users/{id}/profile`: the user, their totals, and recent investments with startups.
pub(crate) async fn profile(
    State(state): State<Shared>,
    user: User,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = own_user(&raw, user)?;
    let db = &state.db;
    let row = timing::db(
        sqlx::query("SELECT id, name, email, created_at FROM users WHERE id = ?1")
            .bind(id)
            .fetch_optional(&db.read),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("user"))?;
    let user = ProfileUser {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        email: row.try_get(2)?,
        created_at: rfc3339(row.try_get(3)?),
    };
    let (totals, recent) = if state.faults.slow_profile {
        profile_parts_slow(db, id).await?
    } else {
        profile_parts(db, id).await?
    };
    Ok(Json(json!({"user": user, "totals": totals, "recent_investments": recent})).into_response())
}

/// Two indexed queries: totals from the covering index, the newest rows by (created_at, id).
async fn profile_parts(db: &Db, id: i64) -> Result<(Totals, Vec<Recent>), sqlx::Error> {
    let row = timing::db(
        sqlx::query(
            "SELECT COUNT(*),
                    COALESCE(SUM(status = 'completed'), 0),
                    COALESCE(SUM(CASE WHEN status = 'completed' THEN amount_cents END), 0),
                    COALESCE(SUM(CASE WHEN status IN ('pending', 'processing')
                                      THEN amount_cents END), 0)
             FROM investments WHERE user_id = ?1",
        )
        .bind(id)
        .fetch_one(&db.read),
    )
    .await?;
    let totals = Totals {
        investments_count: row.try_get(0)?,
        completed_count: row.try_get(1)?,
        invested_cents: row.try_get(2)?,
        in_flight_cents: row.try_get(3)?,
    };
    let prefixed = |alias: &str, cols: &str| {
        cols.split(", ")
            .map(|c| format!("{alias}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows = timing::db(
        sqlx::query(&format!(
            "SELECT {}, {} FROM investments i JOIN startups s ON s.id = i.startup_id
             WHERE i.user_id = ?1 ORDER BY i.created_at DESC, i.id DESC LIMIT ?2",
            prefixed("i", INVESTMENT_COLUMNS),
            prefixed("s", STARTUP_COLUMNS),
        ))
        .bind(id)
        .bind(RECENT)
        .fetch_all(&db.read),
    )
    .await?;
    let recent = rows
        .iter()
        .map(|row| {
            Ok(Recent {
                investment: Investment::from_row_at(row, 0)?,
                startup: Startup::from_row_at(row, 6)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((totals, recent))
}

/// What one query costs a real application beyond the database's own work: the round trip to
/// a database server on the same network. The embedded SQLite answers an indexed lookup in
/// microseconds, so without it the N+1 fault's cost would depend on this CPU's speed.
const DB_ROUND_TRIP: Duration = Duration::from_micros(50);

/// Round trips owed by the N+1 loop, paid (as `db` time) in 10 ms sleeps: tokio's timer is
/// 1 ms coarse, so sleeping 50 us 40,000 times would cost far more than it means.
struct RoundTrips(Duration);

impl RoundTrips {
    async fn one_more(&mut self) {
        self.0 += DB_ROUND_TRIP;
        if self.0 >= Duration::from_millis(10) {
            self.pay().await;
        }
    }
    async fn pay(&mut self) {
        if !self.0.is_zero() {
            timing::db(tokio::time::sleep(self.0)).await;
            self.0 = Duration::ZERO;
        }
    }
}

/// The `slow-profile` fault: the same answer, computed the way a hurried ORM would: a scan
/// that ignores the user index, then one query per investment and one per startup, each with
/// a database round trip. Harmless for a typical user (~25 rows), seconds for the whale
/// (20,000).
async fn profile_parts_slow(db: &Db, id: i64) -> Result<(Totals, Vec<Recent>), sqlx::Error> {
    let mut owed = RoundTrips(Duration::ZERO);
    let mut conn = timing::db(db.read.acquire()).await?;
    let ids: Vec<i64> = timing::db(
        sqlx::query_scalar("SELECT id FROM investments NOT INDEXED WHERE user_id = ?1")
            .bind(id)
            .fetch_all(&mut *conn),
    )
    .await?;
    let mut totals = Totals::default();
    let mut all = Vec::with_capacity(ids.len());
    let mut startups: HashMap<i64, Startup> = HashMap::new();
    for inv_id in ids {
        let row = timing::db(
            sqlx::query(&format!(
                "SELECT {INVESTMENT_COLUMNS} FROM investments WHERE id = ?1"
            ))
            .bind(inv_id)
            .fetch_one(&mut *conn),
        )
        .await?;
        owed.one_more().await;
        let inv = Investment::from_row(&row)?;
        // No memoisation across investments: each one asks for its startup again.
        let srow = timing::db(
            sqlx::query(&format!(
                "SELECT {STARTUP_COLUMNS} FROM startups NOT INDEXED WHERE id = ?1"
            ))
            .bind(inv.startup_id)
            .fetch_one(&mut *conn),
        )
        .await?;
        owed.one_more().await;
        startups.insert(inv.startup_id, Startup::from_row(&srow)?);
        totals.investments_count += 1;
        match inv.status.as_str() {
            "completed" => {
                totals.completed_count += 1;
                totals.invested_cents += inv.amount_cents;
            }
            "pending" | "processing" => totals.in_flight_cents += inv.amount_cents,
            _ => {}
        }
        all.push(inv);
    }
    owed.pay().await;
    all.sort_by(|a, b| (&b.created_at, b.id).cmp(&(&a.created_at, a.id)));
    let recent = all
        .into_iter()
        .take(usize::try_from(RECENT).unwrap_or(10))
        .filter_map(|investment| {
            let startup = startups.get(&investment.startup_id)?.clone();
            Some(Recent {
                investment,
                startup,
            })
        })
        .collect();
    Ok((totals, recent))
}

/// `GET /startups?industry=&stage=&page=&per_page=`
pub(crate) async fn list_startups(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let StartupQuery {
        industry,
        stage,
        page,
        per_page,
        offset,
    } = StartupQuery::parse(query)?;
    let db = &state.db;
    let total: i64 = timing::db(
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM startups
             WHERE (?1 IS NULL OR industry = ?1) AND (?2 IS NULL OR stage = ?2)",
        )
        .bind(&industry)
        .bind(&stage)
        .fetch_one(&db.read),
    )
    .await?;
    let items = if offset >= total {
        Vec::new()
    } else {
        let rows = timing::db(
            sqlx::query(&format!(
                "SELECT {STARTUP_COLUMNS} FROM startups
                 WHERE (?1 IS NULL OR industry = ?1) AND (?2 IS NULL OR stage = ?2)
                 ORDER BY id LIMIT ?3 OFFSET ?4"
            ))
            .bind(&industry)
            .bind(&stage)
            .bind(per_page)
            .bind(offset)
            .fetch_all(&db.read),
        )
        .await?;
        rows.iter()
            .map(Startup::from_row)
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(
        Json(json!({"items": items, "page": page, "per_page": per_page, "total": total}))
            .into_response(),
    )
}

/// `GET /startups`' filters and page, checked.
struct StartupQuery {
    industry: Option<String>,
    stage: Option<String>,
    page: i64,
    per_page: i64,
    /// The first row of the page.
    offset: i64,
}

impl StartupQuery {
    fn parse(query: Option<String>) -> Result<StartupQuery, ApiError> {
        let params = query_params(query)?;
        let text = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
        let industry = text("industry");
        if industry.as_ref().is_some_and(|i| i.chars().count() > 100) {
            return Err(ApiError::invalid(
                "industry",
                "must be at most 100 characters",
            ));
        }
        let stage = text("stage");
        if let Some(stage) = &stage
            && !STAGES.contains(&stage.as_str())
        {
            return Err(ApiError::invalid(
                "stage",
                format!("unknown stage; expected one of: {}", STAGES.join(", ")),
            ));
        }
        let number = |name: &str, default: i64, max: i64| -> Result<i64, ApiError> {
            match text(name) {
                None => Ok(default),
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(ApiError::invalid(
                        name,
                        format!("must be an integer between 1 and {max}"),
                    )),
                },
            }
        };
        let page = number("page", 1, i64::MAX)?;
        let per_page = number("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
        let offset = (page - 1)
            .checked_mul(per_page)
            .ok_or_else(|| ApiError::invalid("page", "is too large for this per_page"))?;
        Ok(StartupQuery {
            industry,
            stage,
            page,
            per_page,
            offset,
        })
    }
}

/// The query string's parameters; one of `GET /startups`' own given twice is an error.
fn query_params(query: Option<String>) -> Result<HashMap<String, String>, ApiError> {
    let mut params: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if params.insert(k.to_string(), v.to_string()).is_some()
            && matches!(&*k, "industry" | "stage" | "page" | "per_page")
        {
            return Err(ApiError::invalid(k.to_string(), "given more than once"));
        }
    }
    Ok(params)
}

/// `GET /startups/{id}` (the catalogue is public: no sign-in needed).
pub(crate) async fn get_startup(
    State(state): State<Shared>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&raw, "startup")?;
    let row = timing::db(
        sqlx::query(&format!(
            "SELECT {STARTUP_COLUMNS} FROM startups WHERE id = ?1"
        ))
        .bind(id)
        .fetch_optional(&state.db.read),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("startup"))?;
    Ok(Json(Startup::from_row(&row)?).into_response())
}
