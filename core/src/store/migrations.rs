//! The schema migrations, embedded in the binary from `core/migrations/sqlite/` and
//! `core/migrations/postgres/`.
//!
//! `sqlx::migrate!` would embed them too, but in sqlx 0.8 it needs the `macros` feature,
//! which builds sqlx's proc-macro crate with both database drivers, and without a build
//! script it misses migration files added after the last build. `include_str!` tracks
//! each file. Each migration is named and versioned as sqlx's migration folders are
//! (`<version>_<description>.sql`), so its checksum matches what `sqlx migrate run
//! --source core/migrations/<backend>` records, and a test checks that these lists
//! match the folders.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// One embedded migration file: version, description and SQL.
pub(super) type EmbeddedMigration = (i64, &'static str, &'static str);

/// The SQLite migrations, oldest first. Append new files here; never edit an applied one,
/// because sqlx refuses to open a database whose applied migration's checksum changed.
pub(super) const SQLITE: &[EmbeddedMigration] = &[(
    1,
    "store",
    include_str!("../../migrations/sqlite/0001_store.sql"),
)];

/// The PostgreSQL migrations, oldest first, under the same rule as [`SQLITE`].
pub(super) const POSTGRES: &[EmbeddedMigration] = &[(
    1,
    "store",
    include_str!("../../migrations/postgres/0001_store.sql"),
)];

/// Returns the migrator for SQLite stores.
pub(super) async fn sqlite() -> Migrator {
    migrator(SQLITE).await
}

/// Returns the migrator for PostgreSQL stores.
pub(super) async fn postgres() -> Migrator {
    migrator(POSTGRES).await
}

async fn migrator(migrations: &'static [EmbeddedMigration]) -> Migrator {
    Migrator::new(Embedded(migrations))
        .await
        .expect("embedded migrations resolve without I/O")
}

/// A migration source that hands sqlx the embedded files.
#[derive(Debug)]
struct Embedded(&'static [EmbeddedMigration]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}
