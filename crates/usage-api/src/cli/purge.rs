//! `usage-service purge --user USER`: erase a user's records, as `DELETE /api/usage` does.

use usage_domain::{ServiceError, UsageService, UserId};

/// Erases every record of `user`; returns how many there were.
pub async fn purge(service: &UsageService, user: &UserId) -> Result<u64, ServiceError> {
    service.erase(user).await
}
