//! The API's representations (investment, startup) and how they are read from rows. Shared by
//! the handlers, the worker and the live-status hub; holds no queries beyond column lists.

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

pub(crate) const INVESTMENT_COLUMNS: &str =
    "id, user_id, startup_id, amount_cents, status, created_at";
pub(crate) const STARTUP_COLUMNS: &str =
    "id, name, industry, stage, funding_goal_cents, amount_raised_cents";

/// `{id, user_id, startup_id, amount_cents, status, created_at}`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Investment {
    pub id: i64,
    pub user_id: i64,
    pub startup_id: i64,
    pub amount_cents: i64,
    pub status: String,
    pub created_at: String,
}

impl Investment {
    /// Reads `INVESTMENT_COLUMNS` starting at column `at`.
    pub fn from_row_at(row: &SqliteRow, at: usize) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get(at)?,
            user_id: row.try_get(at + 1)?,
            startup_id: row.try_get(at + 2)?,
            amount_cents: row.try_get(at + 3)?,
            status: row.try_get(at + 4)?,
            created_at: rfc3339(row.try_get(at + 5)?),
        })
    }

    pub fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Self::from_row_at(row, 0)
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed")
    }
}

/// `{id, name, industry, stage, funding_goal_cents, amount_raised_cents}`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Startup {
    pub id: i64,
    pub name: String,
    pub industry: String,
    pub stage: String,
    pub funding_goal_cents: i64,
    pub amount_raised_cents: i64,
}

impl Startup {
    /// Reads `STARTUP_COLUMNS` starting at column `at`.
    pub fn from_row_at(row: &SqliteRow, at: usize) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get(at)?,
            name: row.try_get(at + 1)?,
            industry: row.try_get(at + 2)?,
            stage: row.try_get(at + 3)?,
            funding_goal_cents: row.try_get(at + 4)?,
            amount_raised_cents: row.try_get(at + 5)?,
        })
    }

    pub fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Self::from_row_at(row, 0)
    }
}

/// The hub topic carrying an investment's status changes.
pub(crate) fn investment_topic(id: i64) -> String {
    format!("investment:{id}")
}

/// Rank of a status along `pending → processing → completed | failed`.
pub(crate) fn status_rank(status: &str) -> u8 {
    match status {
        "pending" => 0,
        "processing" => 1,
        _ => 2,
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Days to civil date (H. Hinnant's algorithm): eras of 400 years from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_unix_seconds_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_672_531_200), "2023-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
