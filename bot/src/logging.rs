//! The log output of the `keycheck` binary: `tracing` events on standard error, as text
//! or as one JSON object a line (`--log-format json`).
//!
//! Both formats carry the fields of every span an event is logged in. An investigation
//! runs inside the `investigation` span (`investigation_id`, `key_id`, `account_id`,
//! `origin`), and the chat adapters run it inside a span of their own that carries the
//! same `investigation_id`, so every line logged during an investigation names it. In
//! JSON, `span` is the innermost span and `spans` lists every span from the outermost in.
//!
//! `KEYCHECK_LOG` sets the filter in `tracing-subscriber`'s `EnvFilter` syntax, such as
//! `info` or `keycheck_core=debug,info`.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::LogFormat;

/// The environment variable that sets the log filter.
pub const FILTER_VARIABLE: &str = "KEYCHECK_LOG";

/// Returns the filter from `KEYCHECK_LOG`, else `default` (such as `info`). An invalid
/// `KEYCHECK_LOG` is reported on standard error and ignored.
pub fn filter(default: &str) -> EnvFilter {
    match std::env::var(FILTER_VARIABLE) {
        Ok(text) if !text.trim().is_empty() => EnvFilter::try_new(&text).unwrap_or_else(|error| {
            eprintln!(
                "keycheck: {FILTER_VARIABLE}={text:?} is not a valid log filter ({error}), so keycheck logs at {default}: write one such as info or keycheck_core=debug,info"
            );
            EnvFilter::new(default)
        }),
        _ => EnvFilter::new(default),
    }
}

/// Builds a subscriber that writes the events passing `filter` to `writer` as `format`
/// lines, with terminal colours in text lines when `ansi` is set.
pub fn subscriber<W>(format: LogFormat, filter: EnvFilter, writer: W, ansi: bool) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().with_current_span(true).with_span_list(true).finish()),
    }
}

/// Installs the process's subscriber: `format` lines on standard error, filtered by
/// `KEYCHECK_LOG`, else at `default_level`. Text is coloured only on a terminal, so that
/// a log collector receives no escape codes. Does nothing when one is installed already.
pub fn init(format: LogFormat, default_level: &str) {
    let ansi = std::io::stderr().is_terminal();
    let subscriber = subscriber(format, filter(default_level), std::io::stderr, ansi);
    let _ = tracing::subscriber::set_global_default(subscriber);
}
