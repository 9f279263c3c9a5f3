//! Log output: human-readable lines, or (`LATCHKEY_LOG_FORMAT=json`) one flat JSON object per
//! line for log shippers: `timestamp` (RFC 3339, UTC), `level`, `target`, the fields of the
//! enclosing spans (for a request: `request_id`, `method`, `route`, `client_ip`), then the
//! event's own fields (`message`; on access lines `status` and `latency_ms`). Logs go to
//! standard error, so that command output on standard output (`doctor --json`, `keys list`)
//! stays parseable.

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// The filter when neither `LATCHKEY_LOG` nor `RUST_LOG` is set.
pub const DEFAULT_FILTER: &str = "info,tower_http=warn,sqlx=warn";

/// Installs the global subscriber: `filter` (an `EnvFilter` directive, [`DEFAULT_FILTER`]
/// when `None` or invalid) in `format`, to standard error.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let filter = EnvFilter::try_new(filter.unwrap_or(DEFAULT_FILTER))
        .or_else(|_| EnvFilter::try_new(DEFAULT_FILTER))
        .unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .init(),
    }
}

/// The JSON line format (see the module documentation). The line is written directly, without
/// an intermediate map: the spans' fields are already JSON objects (`JsonFields`), spliced in.
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::with_capacity(320);
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let meta = event.metadata();
        line.push('{');
        push_str_field(&mut line, "timestamp", &now);
        line.push(',');
        push_str_field(&mut line, "level", meta.level().as_str());
        line.push(',');
        push_str_field(&mut line, "target", meta.target());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Some(inner) = fields
                        .fields
                        .trim()
                        .strip_prefix('{')
                        .and_then(|f| f.strip_suffix('}'))
                    && !inner.trim().is_empty()
                {
                    line.push(',');
                    line.push_str(inner);
                }
            }
        }
        event.record(&mut Fields(&mut line));
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// Appends `"name":"value"`, escaped.
fn push_str_field(line: &mut String, name: &str, value: &str) {
    push_field(line, name, &Value::from(value));
}

/// Appends `"name":value` (the name and value JSON-encoded).
fn push_field(line: &mut String, name: &str, value: &Value) {
    line.push_str(&Value::from(name).to_string());
    line.push(':');
    line.push_str(&value.to_string());
}

/// Appends an event's fields to the line, each after a comma.
struct Fields<'a>(&'a mut String);

impl Fields<'_> {
    fn add(&mut self, field: &Field, value: &Value) {
        self.0.push(',');
        push_field(self.0, field.name(), value);
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.add(field, &Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.add(field, &Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.add(field, &Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.add(field, &Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, &Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.add(field, &Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.add(field, &Value::String(format!("{value:?}")));
    }
}
