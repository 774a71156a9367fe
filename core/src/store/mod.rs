//! The database behind the chat bot: first deliveries of chat events, the current
//! investigation of each access key, pending containment actions with their approval
//! state, and the append-only audit log.
//!
//! SQLite is the default: a file that is created when missing, in WAL mode with a busy
//! timeout. PostgreSQL is used when the URL starts with `postgres://` or
//! `postgresql://`, so several bot replicas share one state. The database decides every
//! race between replicas, through a conditional write whose row count shows who won or
//! through one transaction, so a re-run or a retried delivery changes nothing twice.
//!
//! This module decides nothing about who may do what (see [`crate::approval`]) and stores
//! no secret: there is no column for one, and every text is redacted before it is
//! written.
//!
//! [`Store`] wraps one pool per backend rather than `sqlx::AnyPool`, because the `Any`
//! driver of sqlx 0.8 cannot bind or decode timestamps, and because SQLite needs a
//! `BEGIN IMMEDIATE` transaction where PostgreSQL needs a plain one. Both backends run
//! the same SQL text otherwise.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::MigrateError;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tracing::info;

use crate::approval::{ActionId, ActionState};

/// Runs `$body` once with `$pool` bound to the store's pool, whichever backend it is.
/// The body is compiled once per backend, so the same SQL and bindings serve both.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}

mod actions;
mod audit;
mod codec;
mod events;
mod investigations;
mod migrations;
#[cfg(test)]
mod tests;

pub use audit::{AuditEntry, AuditEvent};
pub use investigations::{
    InvestigationClaim, InvestigationRecord, InvestigationStatus, InvestigationUpdate, Scope,
};

/// How long a SQLite connection waits for another writer before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Times a SQLite store tries its migrations before it fails to open.
const SQLITE_MIGRATION_ATTEMPTS: u32 = 3;

/// Times opening a SQLite file is tried while another process holds its lock.
const SQLITE_OPEN_ATTEMPTS: u32 = 5;

/// Delay before the first retry of opening a locked SQLite file. Retry `n` waits `n` times
/// this delay.
const SQLITE_OPEN_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Connections per SQLite pool. SQLite runs one writer at a time, so more connections
/// only add readers.
const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// Connections per PostgreSQL pool, per bot replica.
const POSTGRES_MAX_CONNECTIONS: u32 = 10;

/// How long an operation waits for a free connection, or for the first connection when
/// the store opens.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The keycheck database: SQLite or PostgreSQL. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// The URL with any password removed, for messages and logs.
    shown_url: String,
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database engine behind a [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A failure of the store. Messages show the store's URL without its password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error(
        "unsupported database URL {url}: use postgres://, postgresql://, sqlite: or a SQLite file path"
    )]
    UnsupportedUrl { url: String },
    #[error("cannot create the directory {} for the SQLite store: {source}", path.display())]
    CreateDirectory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("migrating the store at {url} failed: {source}")]
    Migrate { url: String, source: MigrateError },
    #[error("store {operation} failed for {target}: {source}")]
    Query {
        /// The store method, such as `claim_event`.
        operation: &'static str,
        /// Subject of the operation, such as `slack event Ev0123`.
        target: String,
        source: sqlx::Error,
    },
    #[error("cannot read column {column} of store table {table}: {source}")]
    Decode {
        table: &'static str,
        column: &'static str,
        source: sqlx::Error,
    },
    #[error(
        "invalid value {value:?} in column {column} of store table {table}: a newer keycheck may have written it"
    )]
    InvalidValue {
        table: &'static str,
        column: &'static str,
        value: String,
    },
    #[error("cannot change action {id} from {from} to {to}: {reason}")]
    InvalidTransition {
        id: ActionId,
        from: ActionState,
        to: ActionState,
        reason: &'static str,
    },
}

impl Store {
    /// Opens the store at `url` and applies any migrations it lacks.
    ///
    /// `url` is a PostgreSQL URL (`postgres://` or `postgresql://`), a SQLite URL
    /// (`sqlite:path` or `sqlite::memory:`) or a plain file path. On PostgreSQL, tables
    /// go to the first schema of the search path, which
    /// `?options=-c%20search_path%3Dkeycheck` sets. A missing SQLite file is created,
    /// together with its directory.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let shown_url = display_url(url);
        if url.contains("://") && !is_postgres_url(url) && !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl { url: shown_url });
        }
        let pool = if is_postgres_url(url) {
            Pool::Postgres(open_postgres(url, &shown_url).await?)
        } else {
            Pool::Sqlite(open_sqlite(url, &shown_url).await?)
        };
        let store = Store { pool, shown_url };

        store.migrate().await?;

        info!(backend = %store.backend(), url = %store.shown_url, "store opened");
        Ok(store)
    }

    /// Returns the database engine behind the store.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Returns the store's URL without a password, as shown in messages.
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    /// Closes every connection of this store and of its clones, waiting for running
    /// operations to finish. Later operations fail.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let result = match &self.pool {
            Pool::Sqlite(pool) => migrate_sqlite(pool, &self.shown_url).await,
            Pool::Postgres(pool) => migrations::postgres().await.run(pool).await,
        };
        result.map_err(|source| StoreError::Migrate {
            url: self.shown_url.clone(),
            source,
        })
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("url", &self.shown_url)
            .finish()
    }
}

/// Returns whether `url` names a PostgreSQL server.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Returns the file of a SQLite store URL (`sqlite://path`, `sqlite:path` or a plain
/// path), or `None` for PostgreSQL and an in-memory database.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    if is_postgres_url(url) {
        return None;
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    Some(PathBuf::from(path))
}

async fn open_postgres(url: &str, shown_url: &str) -> Result<PgPool, StoreError> {
    let open_failed = |source| StoreError::Open {
        url: shown_url.to_string(),
        source,
    };
    let options: PgConnectOptions = url.parse().map_err(open_failed)?;
    // A pool retries a failing connection until its acquire timeout and then reports only
    // "pool timed out". One direct connection first reports the cause, such as a refused
    // connection or a wrong password.
    let probe = tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(&options)).await;
    match probe {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
        }
        Ok(Err(error)) => return Err(open_failed(error)),
        Err(_) => return Err(open_failed(sqlx::Error::PoolTimedOut)),
    }
    PgPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(open_failed)
}

async fn open_sqlite(url: &str, shown_url: &str) -> Result<SqlitePool, StoreError> {
    let open_failed = |source| StoreError::Open {
        url: shown_url.to_string(),
        source,
    };
    let options = if url.starts_with("sqlite:") {
        url.parse::<SqliteConnectOptions>().map_err(open_failed)?
    } else {
        create_parent_directory(Path::new(url)).await?;
        SqliteConnectOptions::new().filename(url)
    };
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true);

    // Switching a new file to WAL takes an exclusive lock, and SQLite returns "database is
    // locked" immediately, without waiting out the busy timeout, when another process is
    // switching the same file. The second try finds the file already in WAL mode.
    let mut attempt = 1;
    loop {
        let opened = SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await;
        match opened {
            Err(error) if attempt < SQLITE_OPEN_ATTEMPTS && is_sqlite_busy(&error) => {
                info!(url = shown_url, attempt, %error, "store file is locked, retrying");
                tokio::time::sleep(SQLITE_OPEN_RETRY_DELAY * attempt).await;
                attempt += 1;
            }
            result => return result.map_err(open_failed),
        }
    }
}

/// Returns whether `error` is SQLite's SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended
/// codes such as SQLITE_BUSY_RECOVERY (261) included.
fn is_sqlite_busy(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database) = error else {
        return false;
    };
    database.code().is_some_and(|code| is_busy_code(&code))
}

/// Returns whether `code`, a SQLite result code as sqlx writes it, is SQLITE_BUSY or
/// SQLITE_LOCKED. sqlx 0.8 reports the extended result code, whose low byte is the primary
/// code.
fn is_busy_code(code: &str) -> bool {
    let Ok(code) = code.parse::<i32>() else {
        return false;
    };
    matches!(code & 0xff, 5 | 6)
}

/// Applies the SQLite migrations, retrying when another process applied them first.
///
/// sqlx locks PostgreSQL migrations but not SQLite ones. When two processes open a new
/// file at once, both see a migration missing, and the one that waited for the write
/// lock fails because the tables now exist. By then the winner has recorded the
/// migration, so the retry finds nothing left to do.
async fn migrate_sqlite(pool: &SqlitePool, shown_url: &str) -> Result<(), MigrateError> {
    let migrator = migrations::sqlite().await;
    let mut attempt = 1;
    loop {
        match migrator.run(pool).await {
            Err(error) if attempt < SQLITE_MIGRATION_ATTEMPTS => {
                info!(url = shown_url, attempt, %error, "store migration failed, retrying");
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn create_parent_directory(path: &Path) -> Result<(), StoreError> {
    let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    else {
        return Ok(());
    };
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|source| StoreError::CreateDirectory {
            path: parent.to_path_buf(),
            source,
        })
}

/// Returns `url` fit for messages and logs: a URL loses its user and password and the
/// value of any `password` query parameter. Paths are returned unchanged.
pub fn display_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);

    let Some((path, query)) = tail.split_once('?') else {
        return format!("{scheme}{host}{tail}");
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=redacted"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{scheme}{host}{path}?{}", query.join("&"))
}

/// Returns a closure that wraps a sqlx error from `operation` on `target`.
fn query_failed(
    operation: &'static str,
    target: impl fmt::Display,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    let target = target.to_string();
    move |source| StoreError::Query {
        operation,
        target,
        source,
    }
}

#[cfg(test)]
mod busy_code_tests {
    use super::is_busy_code;

    #[test]
    fn busy_code_matches_primary_and_extended_codes() {
        assert!(is_busy_code("5"), "SQLITE_BUSY");
        assert!(is_busy_code("6"), "SQLITE_LOCKED");
        assert!(is_busy_code("261"), "SQLITE_BUSY_RECOVERY");
        assert!(is_busy_code("517"), "SQLITE_BUSY_SNAPSHOT");
        assert!(is_busy_code("262"), "SQLITE_LOCKED_SHAREDCACHE");
        assert!(!is_busy_code("1"), "SQLITE_ERROR");
        assert!(!is_busy_code("2067"), "SQLITE_CONSTRAINT_UNIQUE");
        assert!(!is_busy_code("not a code"));
    }
}
