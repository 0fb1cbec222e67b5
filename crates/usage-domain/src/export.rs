//! Exporting a user's records page by page, so that any number of them streams out with
//! bounded memory.

use chrono::{DateTime, Utc};

use crate::record::{ExecutionId, UsageRecord};
use crate::service::{ServiceError, UsageService};
use crate::user::UserId;
use crate::window::TimeRange;

/// A position in a user's records, ordered by `(timestamp, execution id)`: the last record a
/// page handed out. The next page starts strictly after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportCursor {
    pub timestamp: DateTime<Utc>,
    pub id: ExecutionId,
}

impl ExportCursor {
    /// The position of `record`.
    pub fn after(record: &UsageRecord) -> Self {
        Self {
            timestamp: record.timestamp,
            id: record.id.clone(),
        }
    }
}

/// The pages of one export, read one at a time with [`ExportPages::next_page`].
#[derive(Debug)]
pub struct ExportPages {
    service: UsageService,
    user: UserId,
    /// `None` when the query lies wholly outside retention: nothing to read.
    range: Option<TimeRange>,
    after: Option<ExportCursor>,
    page_size: u32,
    finished: bool,
}

impl ExportPages {
    pub(crate) fn new(
        service: UsageService,
        user: UserId,
        range: Option<TimeRange>,
        page_size: u32,
    ) -> Self {
        Self {
            service,
            user,
            range,
            after: None,
            page_size: page_size.max(1),
            finished: false,
        }
    }

    /// The next non-empty page, or `None` once every record has been handed out.
    pub async fn next_page(&mut self) -> Result<Option<Vec<UsageRecord>>, ServiceError> {
        let Some(range) = self.range.filter(|_| !self.finished) else {
            return Ok(None);
        };
        let page = self
            .service
            .repository()
            .export_page(&self.user, range, self.after.take(), self.page_size)
            .await?;
        self.finished = page.len() < self.page_size as usize;
        self.after = page.last().map(ExportCursor::after);
        Ok((!page.is_empty()).then_some(page))
    }
}
