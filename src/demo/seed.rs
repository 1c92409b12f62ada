//! Deterministic seed data: users, startups, investments and the demo identities, all derived
//! from one `u64` seed. Rows are generated inside SQLite (recursive CTEs with integer
//! arithmetic), in one `BEGIN IMMEDIATE` transaction, so seeding stays well under a second.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::OnceCell;

use super::db::Db;
use super::{DemoError, Identity};

pub(crate) const USERS: i64 = 5_000;
pub(crate) const STARTUPS: i64 = 300;
pub(crate) const INVESTMENTS: i64 = 150_000;
/// The heavy investor: 20,000 of the investments are theirs (rows i % 15 in {0, 7}).
pub(crate) const WHALE_ID: i64 = 7;
/// A user with no investments (used for onboarding examples).
pub(crate) const NEWBIE_ID: i64 = USERS;

pub(crate) const INDUSTRIES: [&str; 6] = [
    "fintech",
    "healthtech",
    "climate",
    "edtech",
    "logistics",
    "ai",
];
pub(crate) const STAGES: [&str; 5] = ["pre-seed", "seed", "series-a", "series-b", "series-c"];

/// The identities printed at start-up and listed by `GET /demo/identities`.
const IDENTITIES: [(&str, i64); 4] = [
    ("whale", WHALE_ID),
    ("typical", 42),
    ("other", 1234),
    ("newbie", NEWBIE_ID),
];

const FIRST: &str = r#"["Ada","Grace","Alan","Edsger","Barbara","Donald","Frances","Ken","Margaret","Dennis","Radia","Tim","Hedy","John","Katherine","Linus","Anita","Niklaus","Sophie","Leslie"]"#;
const LAST: &str = r#"["Lovelace","Hopper","Turing","Dijkstra","Liskov","Knuth","Allen","Thompson","Hamilton","Ritchie","Perlman","Berners-Lee","Lamarr","Backus","Johnson","Torvalds","Borg","Wirth","Wilson","Lamport"]"#;
const ADJECTIVES: &str = r#"["Quantum","Green","Bright","Rapid","Open","Deep","Silver","Solid","Clear","Blue","Nimble","True"]"#;
const NOUNS: &str = r#"["Ledger","Harbor","Pulse","Forge","Orbit","Grid","Leaf","Atlas","Signal","Canvas","Bridge","Loop","Vault","Beacon","Sprout"]"#;

/// splitmix64: spreads a user-chosen seed (often 0, 1, 42) over the whole u64 range.
fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small per-seed offset for the SQL arithmetic (kept small so products never overflow i64).
fn offset(seed: u64, salt: u64) -> i64 {
    i64::try_from(mix(seed, salt) % 1_000_003).unwrap_or(0)
}

/// The bearer token of an identity: derived from the seed, so it is stable across restarts.
pub(crate) fn token(seed: u64, name: &str, user_id: i64) -> String {
    let digest = Sha256::digest(format!("sonde-demo-token:{seed}:{name}:{user_id}"));
    let hex: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
    format!("sd_{hex}")
}

pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) fn identities(seed: u64) -> Vec<Identity> {
    IDENTITIES
        .iter()
        .map(|&(name, user_id)| Identity {
            name: name.to_string(),
            user_id,
            token: token(seed, name, user_id),
        })
        .collect()
}

/// Seeds an empty database and returns the seed its data was built from: `seed` for a fresh
/// database, or the one recorded in an already-seeded database (its tokens derive from that).
pub(crate) async fn ensure_seeded(db: &Db, seed: u64) -> Result<u64, sqlx::Error> {
    let recorded: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'seed'")
        .fetch_optional(&db.write)
        .await?;
    if let Some(recorded) = recorded.and_then(|v| v.parse::<u64>().ok()) {
        return Ok(recorded);
    }
    let mut tx = db.begin_write().await?;
    seed_users(&mut tx, seed).await?;
    seed_startups(&mut tx, seed).await?;
    seed_investments(&mut tx, seed).await?;
    settle_funding(&mut tx, seed).await?;
    seed_sessions(&mut tx, seed).await?;
    tx.commit().await?;
    sqlx::query("PRAGMA optimize").execute(&db.write).await?;
    Ok(seed)
}

/// The seeding transaction.
type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

/// `USERS` users with generated names; the whale gets its own.
async fn seed_users(tx: &mut Tx, seed: u64) -> Result<(), sqlx::Error> {
    let s = |salt| offset(seed, salt);
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO users (id, name, email, created_at)
         SELECT i,
                json_extract(?2, '$[' || ((i * 31 + ?4) % json_array_length(?2)) || ']') || ' ' ||
                json_extract(?3, '$[' || ((i * 17 + ?5) % json_array_length(?3)) || ']'),
                'user' || i || '@demo.sonde.invalid',
                1640995200 + i * 3571
         FROM n",
    )
    .bind(USERS)
    .bind(FIRST)
    .bind(LAST)
    .bind(s(1))
    .bind(s(2))
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE users SET name = 'Whale Capital Partners' WHERE id = ?1")
        .bind(WHALE_ID)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Every industry x stage pair gets startups: industry cycles fastest, stage every 6.
async fn seed_startups(tx: &mut Tx, seed: u64) -> Result<(), sqlx::Error> {
    let s = |salt| offset(seed, salt);
    let industries = serde_json::to_string(&INDUSTRIES).unwrap_or_default();
    let stages = serde_json::to_string(&STAGES).unwrap_or_default();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO startups (id, name, industry, stage, funding_goal_cents)
         SELECT i,
                json_extract(?2, '$[' || ((i * 7 + ?6) % json_array_length(?2)) || ']') || ' ' ||
                json_extract(?3, '$[' || ((i * 11 + ?7) % json_array_length(?3)) || ']') || ' ' || i,
                json_extract(?4, '$[' || ((i + ?8) % 6) || ']'),
                json_extract(?5, '$[' || (((i + ?8) / 6) % 5) || ']'),
                1000000000000000
         FROM n",
    )
    .bind(STARTUPS)
    .bind(ADJECTIVES)
    .bind(NOUNS)
    .bind(&industries)
    .bind(&stages)
    .bind(s(3))
    .bind(s(4))
    .bind(s(5) % 30)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The investments, bulk-loaded.
async fn seed_investments(tx: &mut Tx, seed: u64) -> Result<(), sqlx::Error> {
    let s = |salt| offset(seed, salt);
    // Bulk-load pattern: drop the investments' secondary indexes, insert, rebuild them from
    // their own saved definitions (building an index once is several times cheaper than
    // maintaining it row by row). All inside this transaction, so the schema never changes.
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master
         WHERE type = 'index' AND tbl_name = 'investments' AND sql IS NOT NULL",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (name, _) in &indexes {
        let drop = format!("DROP INDEX \"{}\"", name.replace('"', "\"\""));
        sqlx::query(&drop).execute(&mut **tx).await?;
    }
    // Rows i % 15 in {0, 7} belong to the whale (exactly 20,000 of 150,000); the others spread
    // over users 1..=4999 except the whale; the newbie (5000) has none. ~1 in 19 failed.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO investments (id, user_id, startup_id, amount_cents, status, created_at)
         SELECT i,
                CASE WHEN i % 15 IN (0, 7) THEN ?2
                     ELSE 1 + (i * 7919 + ?3) % (?6 - 2) + ((i * 7919 + ?3) % (?6 - 2) + 1 >= ?2)
                END,
                1 + ((i * 104729 + ?4) % ?7),
                10000 * (1 + ((i * 48271 + ?5) % 500)),
                CASE WHEN (i * 31 + ?5) % 19 = 0 THEN 'failed' ELSE 'completed' END,
                1672531200 + i * 157 + ((i * 13 + ?3) % 150)
         FROM n",
    )
    .bind(INVESTMENTS)
    .bind(WHALE_ID)
    .bind(s(6))
    .bind(s(7))
    .bind(s(8))
    .bind(USERS)
    .bind(STARTUPS)
    .execute(&mut **tx)
    .await?;
    for (_, sql) in &indexes {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Each startup's amount raised and funding goal, from its investments.
async fn settle_funding(tx: &mut Tx, seed: u64) -> Result<(), sqlx::Error> {
    // Raised = sum of completed investments; the goal leaves $1M..$8M of room, except every
    // 25th startup, which is fully funded (its remaining room is 0).
    sqlx::query(
        "UPDATE startups SET amount_raised_cents = t.raised
         FROM (SELECT startup_id, SUM(amount_cents) AS raised FROM investments
               WHERE status = 'completed' GROUP BY startup_id) AS t
         WHERE t.startup_id = startups.id",
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE startups SET funding_goal_cents = CASE
             WHEN id % 25 = 0 AND amount_raised_cents > 0 THEN amount_raised_cents
             ELSE (amount_raised_cents / 100000000 + 1 + (id * 37 + ?1) % 8) * 100000000
         END",
    )
    .bind(offset(seed, 9))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The demo identities' sessions, and the seed they (and all the data) derive from.
async fn seed_sessions(tx: &mut Tx, seed: u64) -> Result<(), sqlx::Error> {
    for identity in identities(seed) {
        sqlx::query("INSERT INTO sessions (token_sha256, user_id, identity) VALUES (?1, ?2, ?3)")
            .bind(token_hash(&identity.token).to_vec())
            .bind(identity.user_id)
            .bind(&identity.name)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("INSERT INTO meta (key, value) VALUES ('seed', ?1)")
        .bind(seed.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Seeded database images by seed, kept for the life of the process: tests and `sonde run`
/// start the demo many times, and copying a ~17 MB image is far cheaper than seeding again.
/// Only temporary databases use it (a `--db` file is seeded in place).
type Image = Arc<Vec<u8>>;
static IMAGES: OnceLock<Mutex<HashMap<u64, Arc<OnceCell<Image>>>>> = OnceLock::new();

/// Writes a freshly seeded, migrated database for `seed` to `path` (which must not exist).
/// The first caller for a seed builds the image in a scratch directory; concurrent callers
/// wait for it instead of seeding in parallel; later callers only copy.
pub(crate) async fn write_image(seed: u64, readers: u32, path: &Path) -> Result<(), DemoError> {
    let cell = {
        let mut map = IMAGES
            .get_or_init(|| Mutex::new(HashMap::new()))
            .lock()
            // Only whole-entry inserts happen under this lock: a poisoned map is consistent.
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(map.entry(seed).or_default())
    };
    let image = cell.get_or_try_init(|| build_image(seed, readers)).await?;
    tokio::fs::write(path, image.as_slice())
        .await
        .map_err(|source| DemoError::Image {
            path: path.to_path_buf(),
            source,
        })
}

async fn build_image(seed: u64, readers: u32) -> Result<Image, DemoError> {
    let scratch = tempfile::Builder::new()
        .prefix("sonde-demo-image-")
        .tempdir()
        .map_err(DemoError::TempDir)?;
    let path = scratch.path().join("image.sqlite");
    let db = Db::open(&path, readers).await?;
    ensure_seeded(&db, seed).await.map_err(DemoError::Seed)?;
    // Fold the WAL into the main file, so that one file is the whole database.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&db.write)
        .await
        .map_err(DemoError::Seed)?;
    db.close().await;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|source| DemoError::Image { path, source })?;
    Ok(Arc::new(bytes))
}

/// Loads the session table (token hash → user id): sessions never change while serving.
pub(crate) async fn sessions(db: &Db) -> Result<Vec<([u8; 32], i64)>, sqlx::Error> {
    let rows = sqlx::query("SELECT token_sha256, user_id FROM sessions")
        .fetch_all(&db.read)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let hash: Vec<u8> = row.try_get(0)?;
        if let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) {
            out.push((hash, row.try_get(1)?));
        }
    }
    Ok(out)
}
