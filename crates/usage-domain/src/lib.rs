//! The pure core of the usage service.
//!
//! Everything here is free of I/O and of any web framework: the record as the client sends it
//! ([`incoming`]) and as we promise to store it ([`record`]), the [`UsageRepository`] port that
//! storage adapters implement, the summary and stats rules, calendar windows in a time zone,
//! and the [`UsageService`] that the HTTP routes call.

pub mod batch;
pub mod clock;
pub mod export;
pub mod incoming;
pub mod query;
pub mod record;
pub mod repository;
pub mod service;
pub mod stats;
pub mod summary;
pub mod user;
pub mod window;

pub use batch::{Batch, RejectedRecord};
pub use clock::{Clock, ManualClock, SystemClock};
pub use export::{ExportCursor, ExportPages};
pub use query::{QueryError, StatsQuery, SummaryQuery, WeekStart};
pub use record::{
    ExecutionId, ExecutionMode, Model, Provider, RecordError, TokenUsage, UsageRecord,
};
pub use repository::{RepositoryError, UsageRepository};
pub use service::{Retention, ServiceError, SyncReport, UsageService};
pub use stats::{StatsWindows, UsageStats, WindowTotals};
pub use summary::{SummaryGroup, UsageSummary};
pub use user::{UserId, UserIdError};
pub use window::TimeRange;

#[cfg(any(test, feature = "mock"))]
pub use repository::MockUsageRepository;
