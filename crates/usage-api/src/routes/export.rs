//! `GET /api/usage/export`: the caller's records as NDJSON or CSV, streamed page by page.
//!
//! The first page is read before answering, so a store that cannot be reached answers 503
//! like every other route. After that the body streams with chunked encoding and memory
//! stays bounded by one page, whatever the number of records.
//!
//! # Limitations
//!
//! A store failure after the first page can no longer change the status: the response is
//! then cut off (the chunked body ends without its last chunk, which clients report as an
//! incomplete download) and the failure is logged.

use actix_web::HttpResponse;
use actix_web::http::header::{CONTENT_DISPOSITION, HeaderValue};
use actix_web::web::{Bytes, Data, Query, ReqData};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use usage_domain::{ServiceError, SummaryQuery, UsageRecord, UserId};

use crate::error::{ApiError, ErrorBody, error_chain};
use crate::startup::AppState;

/// Records read from the store per page, and so per chunk of the body.
pub const PAGE_SIZE: u32 = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ExportParams {
    /// Inclusive start, as for the summary.
    start_date: Option<String>,
    /// Inclusive end, as for the summary.
    end_date: Option<String>,
    /// IANA time zone name for plain dates; `UTC` when absent.
    tz: Option<String>,
    /// `ndjson` (the default) or `csv`.
    format: Option<String>,
}

/// How the records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line, in the client's field names (the default).
    Ndjson,
    /// A header line, then one line per record with the same columns.
    Csv,
}

impl ExportFormat {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw.map(str::trim).filter(|raw| !raw.is_empty()) {
            None => Ok(Self::Ndjson),
            Some(raw) if raw.eq_ignore_ascii_case("ndjson") => Ok(Self::Ndjson),
            Some(raw) if raw.eq_ignore_ascii_case("csv") => Ok(Self::Csv),
            Some(_) => Err(ApiError::InvalidQuery(
                "format must be ndjson or csv".to_owned(),
            )),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    fn disposition(self) -> &'static str {
        match self {
            Self::Ndjson => "attachment; filename=\"usage-export.ndjson\"",
            Self::Csv => "attachment; filename=\"usage-export.csv\"",
        }
    }
}

/// One exported record: the client's `ExecutionRecord` field names, prompt and response
/// replaced by whether they were sent. The NDJSON form can be imported again as it is.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportedRecord<'a> {
    id: &'a str,
    /// Epoch milliseconds.
    timestamp: i64,
    provider: &'a str,
    model: &'a str,
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    duration: f64,
    success: bool,
    error: Option<&'a str>,
    execution_mode: &'a str,
    context: Option<&'a str>,
    has_compiled_prompt: bool,
    has_response: bool,
}

/// The CSV header: the fields of [`ExportedRecord`] in order.
const CSV_COLUMNS: [&str; 14] = [
    "id",
    "timestamp",
    "provider",
    "model",
    "promptTokens",
    "completionTokens",
    "totalTokens",
    "duration",
    "success",
    "error",
    "executionMode",
    "context",
    "hasCompiledPrompt",
    "hasResponse",
];

impl<'a> From<&'a UsageRecord> for ExportedRecord<'a> {
    fn from(record: &'a UsageRecord) -> Self {
        Self {
            id: record.id.as_str(),
            timestamp: record.timestamp.timestamp_millis(),
            provider: record.provider.as_str(),
            model: record.model.as_str(),
            prompt_tokens: record.tokens.prompt(),
            completion_tokens: record.tokens.completion(),
            total_tokens: record.tokens.total(),
            duration: record.duration_ms,
            success: record.success,
            error: record.error.as_deref(),
            execution_mode: record.execution_mode.as_str(),
            context: record.context.as_deref(),
            has_compiled_prompt: record.has_compiled_prompt,
            has_response: record.has_response,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/usage/export",
    tag = "usage",
    params(ExportParams),
    responses(
        (status = 200, description = "The caller's records, oldest first, streamed: one JSON \
            object per line, or CSV with a header line (columns id, timestamp in epoch \
            milliseconds, provider, model, promptTokens, completionTokens, totalTokens, \
            duration, success, error, executionMode, context, hasCompiledPrompt, hasResponse)",
            content(
                (String = "application/x-ndjson"),
                (String = "text/csv"),
            )
        ),
        (status = 400, description = "INVALID_QUERY: a bad date, tz or format", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn export(
    state: Data<AppState>,
    user: ReqData<UserId>,
    params: Query<ExportParams>,
) -> Result<HttpResponse, ApiError> {
    let format = ExportFormat::parse(params.format.as_deref())?;
    let query = SummaryQuery::parse(
        params.start_date.as_deref(),
        params.end_date.as_deref(),
        params.tz.as_deref(),
    )
    .map_err(|error| ApiError::InvalidQuery(error.to_string()))?;
    let mut pages = state.service.export(&user, query, PAGE_SIZE);
    let first = pages.next_page().await?;

    let head = match format {
        ExportFormat::Csv => Some(encode_header()),
        ExportFormat::Ndjson => None,
    };
    let first = first.map(|page| encode(format, &page));
    let rest = stream::try_unfold(pages, move |mut pages| async move {
        let page = pages.next_page().await?;
        Ok::<_, ServiceError>(page.map(|page| (encode(format, &page), pages)))
    });
    let body = stream::iter(head.into_iter().chain(first).map(Ok))
        .chain(rest)
        .inspect_err(|error| {
            tracing::error!(error = %error_chain(error), "export cut off by a store failure");
        })
        .map_ok(Bytes::from);
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            CONTENT_DISPOSITION,
            HeaderValue::from_static(format.disposition()),
        ))
        .streaming(body))
}

fn encode_header() -> Vec<u8> {
    let mut line = CSV_COLUMNS.join(",");
    line.push_str("\r\n");
    line.into_bytes()
}

/// One page as one chunk of the body.
fn encode(format: ExportFormat, page: &[UsageRecord]) -> Vec<u8> {
    match format {
        ExportFormat::Ndjson => {
            let mut chunk = Vec::with_capacity(page.len() * 256);
            for record in page {
                // Serialising a struct of strings, numbers and booleans cannot fail.
                if serde_json::to_writer(&mut chunk, &ExportedRecord::from(record)).is_ok() {
                    chunk.push(b'\n');
                }
            }
            chunk
        }
        ExportFormat::Csv => {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::with_capacity(page.len() * 128));
            for record in page {
                // Writing to a `Vec` cannot fail, nor can serialising these fields.
                let _ = writer.serialize(ExportedRecord::from(record));
            }
            writer.into_inner().unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_case_insensitively_and_default_to_ndjson() {
        assert_eq!(ExportFormat::parse(None).unwrap(), ExportFormat::Ndjson);
        assert_eq!(ExportFormat::parse(Some("CSV")).unwrap(), ExportFormat::Csv);
        assert!(ExportFormat::parse(Some("xml")).is_err());
    }

    #[test]
    fn the_csv_header_names_the_serialised_fields_in_order() {
        use usage_domain::{ExecutionId, ExecutionMode, Model, Provider, TokenUsage};
        let record = [UsageRecord {
            id: ExecutionId::parse("a,\"b").unwrap(),
            timestamp: chrono::DateTime::from_timestamp_millis(1_796_299_200_000).unwrap(),
            provider: Provider::parse("p").unwrap(),
            model: Model::parse("m").unwrap(),
            tokens: TokenUsage::new(1, 2, 0),
            duration_ms: 1.5,
            success: true,
            error: None,
            execution_mode: ExecutionMode::Local,
            context: None,
            has_compiled_prompt: false,
            has_response: true,
        }];
        let json: serde_json::Value =
            serde_json::from_slice(&encode(ExportFormat::Ndjson, &record)).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut columns = CSV_COLUMNS.to_vec();
        keys.sort_unstable();
        columns.sort_unstable();
        assert_eq!(keys, columns);
        let row = String::from_utf8(encode(ExportFormat::Csv, &record)).unwrap();
        assert!(row.starts_with("\"a,\"\"b\","), "CSV quoting: {row}");
    }
}
