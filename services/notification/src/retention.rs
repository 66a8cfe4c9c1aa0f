//! Addresses are kept in delivery records only as long as configured
//! (`ADDRESS_RETENTION`, for resends): a worker erases them once a minute.

use std::sync::Arc;
use std::time::Duration;

use kesu_domain::Clock;
use kesu_domain::time::to_millis;
use kesu_storage::Database;
use tokio_util::sync::CancellationToken;

pub async fn erase_expired_addresses(
    db: Database,
    clock: Arc<dyn Clock>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match crate::deliveries::erase_addresses(&db, to_millis(clock.now())).await {
            Ok(n) if n > 0 => tracing::debug!(erased = n, "delivery addresses erased"),
            Err(e) => tracing::warn!(error = %e, "erasing expired delivery addresses failed; will retry"),
            _ => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
