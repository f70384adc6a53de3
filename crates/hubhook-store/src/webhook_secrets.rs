//! Standard Webhooks secrets of instances: set at creation, rotated on request.
//!
//! What is stored, sealed under the master key as one JSON object per instance: the current
//! secret and the retired ones still inside their overlap, newest first, each with the moment
//! it stops signing (`{"current": …, "retired": [{"secret": …, "until": ms}, …]}`). Every
//! retired secret is kept until its own overlap ends, not only the last one: a client that
//! rotates, loses the answer and rotates again (or two operators rotating in the same day)
//! must not break a receiver that still verifies with the secret of the first rotation,
//! which the documented overlap promises. At most [`MAX_RETIRED`] are kept, so that a loop of
//! rotations cannot grow every delivery's `webhook-signature` header without bound; past it
//! the oldest goes first. Rows written before this layout have `"previous"` in the object and
//! its end in the `previous_until` column; they are read as one retired secret. The column is
//! still written (the newest retired secret's end) for anyone reading the table by hand.

use std::time::Duration;

use hubhook_core::InstanceId;
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::{MasterKey, OrganizationId, Result, Store, StoreError, WebhookSecrets, on_backend};

/// Retired secrets kept signing beside the current one, at most.
pub const MAX_RETIRED: usize = 10;

impl Store {
    /// Makes `secret` the instance's current Standard Webhooks secret. The secret it replaces
    /// (if any) keeps signing until `now + overlap`, and so do earlier ones until their own
    /// overlap ends (see the module docs). `Ok(false)`, with nothing written, when the
    /// organization has no such instance.
    pub async fn rotate_webhook_secret(
        &self,
        org: OrganizationId,
        instance: InstanceId,
        secret: String,
        now: Timestamp,
        overlap: Duration,
    ) -> Result<bool> {
        on_backend!(self, s => s.rotate_webhook_secret(org, instance, secret, now, overlap).await)
    }

    /// The instance's secrets, decrypted; `None` for an instance that has none.
    pub async fn webhook_secrets(&self, instance: InstanceId) -> Result<Option<WebhookSecrets>> {
        on_backend!(self, s => s.webhook_secrets(instance).await)
    }
}

/// A stored row's secrets and times, as both engines read them.
pub(crate) struct StoredSecrets<'a> {
    pub sealed: &'a str,
    pub previous_until: Option<i64>,
    pub updated_at: i64,
}

/// The row that replaces `old` (`None` when the instance had no secret): the sealed object and
/// the `previous_until` column.
pub(crate) fn rotated(
    key: &MasterKey,
    org: OrganizationId,
    old: Option<StoredSecrets<'_>>,
    secret: String,
    now: Timestamp,
    overlap: Duration,
) -> Result<(String, Option<i64>)> {
    let mut retired = Vec::new();
    if let Some(old) = old {
        let old = opened(key, org, old)?;
        let until = now
            .checked_add(
                jiff::SignedDuration::try_from(overlap).unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(Timestamp::MAX);
        retired.push((old.current, until));
        retired.extend(old.retired.into_iter().filter(|(_, until)| *until > now));
        retired.truncate(MAX_RETIRED);
    }
    let mut object = Map::new();
    object.insert("current".into(), Value::String(secret));
    let list = retired
        .iter()
        .map(|(secret, until)| {
            let mut entry = Map::new();
            entry.insert("secret".into(), Value::String(secret.clone()));
            entry.insert("until".into(), Value::from(until.as_millisecond()));
            Value::Object(entry)
        })
        .collect();
    object.insert("retired".into(), Value::Array(list));
    let newest_until = retired.first().map(|(_, until)| until.as_millisecond());
    Ok((key.seal(org, &object)?, newest_until))
}

/// A stored row, decrypted.
pub(crate) fn opened(
    key: &MasterKey,
    org: OrganizationId,
    stored: StoredSecrets<'_>,
) -> Result<WebhookSecrets> {
    let mut object = key.open(org, stored.sealed)?;
    let bad = |what: &str| StoreError::Other(format!("stored webhook secrets: {what}"));
    let text = |value: Value, what: &str| match value {
        Value::String(s) => Ok(s),
        _ => Err(bad(&format!("`{what}` is not a string"))),
    };
    let current = text(
        object
            .remove("current")
            .ok_or_else(|| bad("no current secret"))?,
        "current",
    )?;
    let mut retired = Vec::new();
    match object.remove("retired") {
        Some(Value::Array(list)) => {
            for entry in list {
                let Value::Object(mut entry) = entry else {
                    return Err(bad("a retired secret is not an object"));
                };
                let secret = text(entry.remove("secret").unwrap_or(Value::Null), "secret")?;
                let until = entry
                    .get("until")
                    .and_then(Value::as_i64)
                    .and_then(|ms| Timestamp::from_millisecond(ms).ok())
                    .ok_or_else(|| bad("a retired secret has no valid `until`"))?;
                retired.push((secret, until));
            }
        }
        Some(_) => return Err(bad("`retired` is not a list")),
        // The layout before the list: one previous secret, its end in a column.
        None => {
            if let (Some(previous), Some(until)) =
                (object.remove("previous"), stored.previous_until)
            {
                let until = Timestamp::from_millisecond(until)
                    .map_err(|_| bad(&format!("previous_until {until} is out of range")))?;
                retired.push((text(previous, "previous")?, until));
            }
        }
    }
    let updated_at = Timestamp::from_millisecond(stored.updated_at)
        .map_err(|_| bad(&format!("updated_at {} is out of range", stored.updated_at)))?;
    Ok(WebhookSecrets {
        current,
        retired,
        updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(sealed: &str, previous_until: Option<i64>) -> StoredSecrets<'_> {
        StoredSecrets {
            sealed,
            previous_until,
            updated_at: 0,
        }
    }

    #[test]
    fn the_layout_before_the_list_is_read_as_one_retired_secret() {
        let key = MasterKey::generate();
        let org = OrganizationId(3);
        let mut object = Map::new();
        object.insert("current".into(), Value::from("whsec_new"));
        object.insert("previous".into(), Value::from("whsec_old"));
        let sealed = key.seal(org, &object).unwrap();
        let read = opened(&key, org, stored(&sealed, Some(5_000))).unwrap();
        assert_eq!(read.current, "whsec_new");
        assert_eq!(
            read.retired,
            vec![(
                "whsec_old".to_string(),
                Timestamp::from_millisecond(5_000).unwrap()
            )]
        );
        // Rotated from the old layout: both keep signing.
        let now = Timestamp::from_millisecond(1_000).unwrap();
        let (sealed, newest) = rotated(
            &key,
            org,
            Some(stored(&sealed, Some(5_000))),
            "whsec_newer".into(),
            now,
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(newest, Some(61_000));
        let read = opened(&key, org, stored(&sealed, newest)).unwrap();
        let names: Vec<_> = read.retired.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["whsec_new", "whsec_old"]);
    }

    #[test]
    fn retired_secrets_are_bounded_and_expired_ones_dropped() {
        let key = MasterKey::generate();
        let org = OrganizationId(3);
        let mut sealed: Option<(String, Option<i64>)> = None;
        for n in 0..(MAX_RETIRED + 5) {
            let now = Timestamp::from_millisecond(n as i64 * 1_000).unwrap();
            sealed = Some(
                rotated(
                    &key,
                    org,
                    sealed.as_ref().map(|(s, until)| stored(s, *until)),
                    format!("whsec_{n}"),
                    now,
                    Duration::from_secs(3600),
                )
                .unwrap(),
            );
        }
        let (text, until) = sealed.unwrap();
        let read = opened(&key, org, stored(&text, until)).unwrap();
        assert_eq!(read.current, format!("whsec_{}", MAX_RETIRED + 4));
        assert_eq!(read.retired.len(), MAX_RETIRED);
        assert_eq!(read.retired[0].0, format!("whsec_{}", MAX_RETIRED + 3));
        // A rotation long after every overlap ended keeps only the secret it replaces.
        let late = Timestamp::from_millisecond(10_000_000).unwrap();
        let (text, until) = rotated(
            &key,
            org,
            Some(stored(&text, until)),
            "whsec_late".into(),
            late,
            Duration::from_secs(60),
        )
        .unwrap();
        let read = opened(&key, org, stored(&text, until)).unwrap();
        assert_eq!(read.retired.len(), 1);
        assert_eq!(read.retired[0].0, format!("whsec_{}", MAX_RETIRED + 4));
    }
}
