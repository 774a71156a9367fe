//! Conversions between keycheck values and database columns that work the same on
//! SQLite and PostgreSQL: timestamps, row access, and the redaction of every text
//! before it is written.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SubsecRound, TimeDelta, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgRow, PgTypeInfo, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArgumentValue, SqliteRow, SqliteTypeInfo};
use sqlx::{Encode, Row, Type};
use tracing::warn;

use super::StoreError;
use crate::redact;

/// SQLite form of a timestamp. Every value has the same width, so SQLite's text
/// comparison orders timestamps correctly. sqlx's own encoding drops trailing zero
/// fractions, which breaks that.
const SQLITE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// A timestamp as the store writes it: `TIMESTAMPTZ` on PostgreSQL, fixed-width UTC text
/// on SQLite. Both keep microseconds. The SQLite form holds only the years 1 to 9999,
/// so a time outside them is stored as the nearest time inside. A deadline that far
/// away means "never" either way.
#[derive(Clone, Copy, Debug)]
pub(super) struct DbTime(DateTime<Utc>);

impl DbTime {
    pub(super) fn new(time: DateTime<Utc>) -> DbTime {
        DbTime(stored_time(time))
    }

    pub(super) fn opt(time: Option<DateTime<Utc>>) -> Option<DbTime> {
        time.map(DbTime::new)
    }
}

/// Returns `time` as the store keeps it: truncated to microseconds and clamped to the
/// years 1 to 9999.
pub(super) fn stored_time(time: DateTime<Utc>) -> DateTime<Utc> {
    let earliest = NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .expect("the start of year 1 is a valid date")
        .and_utc();
    let latest = NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|day| day.and_hms_micro_opt(23, 59, 59, 999_999))
        .expect("the end of 9999 is a valid date")
        .and_utc();
    time.clamp(earliest, latest).trunc_subsecs(6)
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        let text = self.0.format(SQLITE_TIME_FORMAT).to_string();
        <String as Encode<'q, Sqlite>>::encode(text, buf)
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

/// Returns `time + duration`, or the latest representable time when that overflows.
pub(super) fn saturating_add(time: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| time.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Returns `time - duration`, or the earliest representable time when that overflows.
pub(super) fn saturating_sub(time: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| time.checked_sub_signed(delta))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Column access shared by SQLite and PostgreSQL rows.
pub(super) trait StoreRow {
    fn text(&self, column: &'static str) -> Result<Option<String>, sqlx::Error>;
    fn time(&self, column: &'static str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
}

macro_rules! impl_store_row {
    ($row:ty) => {
        impl StoreRow for $row {
            fn text(&self, column: &'static str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(column)
            }

            fn time(&self, column: &'static str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
                self.try_get(column)
            }
        }
    };
}

impl_store_row!(SqliteRow);
impl_store_row!(PgRow);

/// The columns of one row of `table`, read with errors that name the table and column.
pub(super) struct Columns<'r, R> {
    row: &'r R,
    table: &'static str,
}

impl<'r, R: StoreRow> Columns<'r, R> {
    pub(super) fn new(row: &'r R, table: &'static str) -> Self {
        Columns { row, table }
    }

    pub(super) fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError> {
        self.row.text(column).map_err(|source| StoreError::Decode {
            table: self.table,
            column,
            source,
        })
    }

    pub(super) fn text(&self, column: &'static str) -> Result<String, StoreError> {
        self.opt_text(column)?
            .ok_or_else(|| self.invalid(column, "NULL"))
    }

    pub(super) fn opt_time(
        &self,
        column: &'static str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.row.time(column).map_err(|source| StoreError::Decode {
            table: self.table,
            column,
            source,
        })
    }

    pub(super) fn time(&self, column: &'static str) -> Result<DateTime<Utc>, StoreError> {
        self.opt_time(column)?
            .ok_or_else(|| self.invalid(column, "NULL"))
    }

    pub(super) fn opt_parsed<T: FromStr>(
        &self,
        column: &'static str,
    ) -> Result<Option<T>, StoreError> {
        let Some(value) = self.opt_text(column)? else {
            return Ok(None);
        };
        value
            .parse()
            .map(Some)
            .map_err(|_| self.invalid(column, &value))
    }

    pub(super) fn parsed<T: FromStr>(&self, column: &'static str) -> Result<T, StoreError> {
        self.opt_parsed(column)?
            .ok_or_else(|| self.invalid(column, "NULL"))
    }

    pub(super) fn opt_mapped<T>(
        &self,
        column: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        let Some(value) = self.opt_text(column)? else {
            return Ok(None);
        };
        parse(&value)
            .map(Some)
            .ok_or_else(|| self.invalid(column, &value))
    }

    fn invalid(&self, column: &'static str, value: &str) -> StoreError {
        StoreError::InvalidValue {
            table: self.table,
            column,
            value: value.to_string(),
        }
    }
}

/// Returns `text` with every secret that [`redact::redact`] recognises replaced by a
/// placeholder. Callers should never pass a secret, so a replacement is logged with the
/// column it was meant for, and never with the text.
pub(super) fn clean(column: &'static str, text: &str) -> String {
    let redacted = redact::redact(text);
    if redacted != text {
        warn!(column, "redacted a secret from text written to the store");
    }
    redacted.into_owned()
}

/// Returns [`clean`] of an optional text.
pub(super) fn clean_opt(column: &'static str, text: Option<&str>) -> Option<String> {
    text.map(|text| clean(column, text))
}
