//! What the console (and the analytics route) read about an organization as a whole: each
//! instance's delivery health and event/delivery counts over time. Both are aggregates computed
//! by the database, so a page costs one query however many events there are.

use jiff::Timestamp;

use hubhook_core::InstanceId;

use crate::{AnalyticsBucket, DeliveryHealth, OrganizationId, Result, Store, on_backend};

impl Store {
    /// Per instance of the organization that has undelivered notifications (only `instance`,
    /// if given): how many are due now, how many failed at least once and wait for a retry,
    /// and how many are queued (retries exhausted). Instances with none are left out.
    pub async fn delivery_health(
        &self,
        org: OrganizationId,
        instance: Option<InstanceId>,
        now: Timestamp,
    ) -> Result<Vec<DeliveryHealth>> {
        on_backend!(self, s => s.delivery_health(org, instance, now).await)
    }

    /// Events stored and delivery attempts made (delivered / failed) by the organization's
    /// instances in `[from, to)`, counted per instance and per bucket of `bucket_ms`
    /// milliseconds from `from`. Empty buckets are left out; rows are ordered by instance, then
    /// bucket.
    pub async fn event_analytics(
        &self,
        org: OrganizationId,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> Result<Vec<AnalyticsBucket>> {
        on_backend!(self, s => s.event_analytics(org, from, to, bucket_ms).await)
    }
}
