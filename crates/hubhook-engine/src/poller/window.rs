//! A poll's window: which records it asks for, how far it has read, and where its cursor may
//! go. It is the checkpoint stored with every page the poll commits, so that a poll cut short
//! (a crash, a failed page, a lost lease) resumes where it stopped instead of starting over.
//!
//! # Why resuming loses nothing
//!
//! A window is fixed when it opens: the URL is rendered once, with `render_since`, and every
//! page, before and after a resume, is a page of that one query, read forward by id (or by page
//! number with an `orderBy`). Records changed after the window opened may be missing from
//! pages read before the change; the cursor therefore never passes the moment the window
//! opened on ConnectWise's clock ([`Window::cursor_cap`]), so the next window reads them again
//! (content hashes keep those re-reads from becoming events twice). A resume hours later only
//! widens the part of the next window that is read again.

use std::time::Duration;

use hubhook_connectwise::PageRequest;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// A poll's progress, stored as the job's checkpoint (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// The resource's URL template the window was opened with; a checkpoint made for another
    /// template (the configuration changed) is not resumed.
    pub template: String,
    /// The instant the URL's placeholders were rendered with.
    pub render_since: Timestamp,
    /// Records updated at or before this are observed but are not events. `None` until the
    /// first page is read: a baseline places it on ConnectWise's clock, which that page tells.
    pub filter_since: Option<Timestamp>,
    /// A lower bound of ConnectWise's clock when the window's first page was asked for.
    pub server_start: Option<Timestamp>,
    /// hubhook's clock when the window opened.
    pub opened_at: Timestamp,
    /// The page to read next (its page token); `None` once the last page has been read.
    pub next_page: Option<String>,
    /// The id of the last record of the last page read, to check that forward-only pages
    /// really move forward.
    pub last_id: Option<i64>,
    pub pages: u32,
    /// The latest updated date among the records observed so far.
    pub max_seen: Option<Timestamp>,
    pub records_seen: u64,
    pub events_emitted: u64,
    pub record_problems: u32,
    pub record_problem: Option<String>,
    /// The first run (`firstRun`): reading a job's first window.
    pub first_run: bool,
    /// The smallest bound this window's pages put on how far record dates run behind
    /// ConnectWise's `Date` clock ([`observed_lag`]).
    #[serde(default)]
    pub clock_lag: Option<SignedDuration>,
}

impl Window {
    /// A window that reads records updated after `render_since`.
    pub fn open(
        template: &str,
        render_since: Timestamp,
        opened_at: Timestamp,
        first_run: bool,
    ) -> Window {
        Window {
            template: template.to_owned(),
            render_since,
            filter_since: None,
            server_start: None,
            opened_at,
            next_page: Some(String::new()),
            last_id: None,
            pages: 0,
            max_seen: None,
            records_seen: 0,
            events_emitted: 0,
            record_problems: 0,
            record_problem: None,
            first_run,
            clock_lag: None,
        }
    }

    /// The window a stored checkpoint describes, if it was made for `template`.
    pub fn resume(checkpoint: &str, template: &str) -> Option<Window> {
        serde_json::from_str::<Window>(checkpoint)
            .ok()
            .filter(|window| window.template == template)
    }

    /// The checkpoint text.
    pub fn checkpoint(&self) -> String {
        // A struct of plain fields: serializing it cannot fail.
        serde_json::to_string(self).expect("a window serializes")
    }

    /// The page to read next, `None` when the window has been read to its end.
    pub fn next_request(&self) -> Option<PageRequest> {
        match self.next_page.as_deref()? {
            "" => Some(PageRequest::First),
            token => PageRequest::from_token(token).ok(),
        }
    }

    /// Records that a page was read, and which page follows.
    pub fn advance(&mut self, next: Option<PageRequest>, last_id: Option<i64>) {
        self.pages += 1;
        self.last_id = last_id.or(self.last_id);
        self.next_page = next.map(|page| page.token().unwrap_or_default());
    }

    /// The latest the cursor may be after this window: a change made after the window opened
    /// may be missing from pages read before it, so the cursor stays at or before that moment
    /// on ConnectWise's clock. Without a `Date` header that moment is unknown; the latest
    /// updated date seen minus the time the window took is a lower bound of it (no record can
    /// be dated later than when it was read, and the last read was at most that long after the
    /// first).
    pub fn cursor_cap(&self, now: Timestamp) -> Option<Timestamp> {
        match (self.server_start, self.max_seen) {
            (Some(start), _) => Some(start),
            (None, Some(max_seen)) => {
                let took = now.duration_since(self.opened_at).max(SignedDuration::ZERO);
                Some(max_seen - took - SignedDuration::from_secs(1))
            }
            (None, None) => None,
        }
    }
}

/// The cursor after a poll: the latest updated date seen, never moving backwards, and never
/// past `cap` (see [`Window::cursor_cap`]). The cap also keeps a record dated in the future
/// from freezing the cursor ahead of real changes.
pub fn next_cursor(
    old: Option<Timestamp>,
    max_seen: Option<Timestamp>,
    cap: Option<Timestamp>,
) -> Option<Timestamp> {
    let seen = match (max_seen, cap) {
        (Some(seen), Some(cap)) => Some(seen.min(cap)),
        (seen, _) => seen,
    };
    match (old, seen) {
        (Some(old), Some(seen)) => Some(old.max(seen)),
        (old, seen) => seen.or(old),
    }
}

/// Margin for the clocks of ConnectWise's web servers (the `Date` header) and database
/// (record dates) drifting apart between observations of their lag.
pub const SETTLE_MARGIN: SignedDuration = SignedDuration::from_secs(2);

/// What one page says about how far record dates run behind ConnectWise's `Date` clock: no
/// record can have been written after it was read, so a record dated `d` read by `read_by`
/// shows a lag of at most `read_by - d`; the newest record of the page gives the tightest
/// bound. Never below zero: dates running ahead (a zone misread the other way, or a date field
/// set in the future) would otherwise make the bound too small, and zero is a bound for them.
pub fn observed_lag(
    read_by: Option<Timestamp>,
    newest: Option<Timestamp>,
) -> Option<SignedDuration> {
    Some(read_by?.duration_since(newest?).max(SignedDuration::ZERO))
}

/// The smaller of two optional bounds.
pub fn tighter(a: Option<SignedDuration>, b: Option<SignedDuration>) -> Option<SignedDuration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// After a window that opened at `server_start` (ConnectWise's clock, a lower bound) and read
/// its query forward by id to the end: the instant before which every record's date has been
/// read. A record dated in a second before it was written, on the `Date` clock, before
/// `server_start - poll_delay - margin` (its date plus the lag bound), so it was visible when
/// the window opened, and the window listed it (or, if it changed again meanwhile, its new
/// date is later than this instant and the next window reads it).
/// `None` when that instant is out of range (a record dated millennia ago set the bound).
pub fn settled_before(
    server_start: Timestamp,
    lag: SignedDuration,
    poll_delay: SignedDuration,
) -> Option<Timestamp> {
    let back = lag.checked_add(poll_delay)?.checked_add(SETTLE_MARGIN)?;
    server_start.checked_sub(back).ok().map(start_of_second)
}

/// Where a window after `cursor` starts: the cursor minus the overlap, except that seconds
/// known to be settled are not read again. Records dated in a second before `settled` are all
/// read, so the query `> settled - 1 s` (dates have second precision) may leave them out; it
/// never starts after the cursor, since what is later than the cursor is unread.
pub fn window_start(
    cursor: Timestamp,
    overlap: SignedDuration,
    settled: Option<Timestamp>,
) -> Timestamp {
    let overlapped = cursor - overlap;
    match settled {
        Some(settled) => overlapped.max((settled - SignedDuration::from_secs(1)).min(cursor)),
        None => overlapped,
    }
}

/// The instant, on ConnectWise's clock, from which a baseline announces changes: when the
/// resource was added to the instance (`added_at`, our clock), moved by the offset between
/// ConnectWise's clock and ours. The server
/// time is a lower bound, so the estimate errs early; one more second covers the `Date`
/// header's second precision. A change made just before the creation may be announced; none
/// made after it is lost.
pub fn baseline_since(
    added_at: Timestamp,
    requested_at: Timestamp,
    server_time: Option<Timestamp>,
) -> Timestamp {
    let offset = server_time.map_or(SignedDuration::ZERO, |server| {
        server.duration_since(requested_at)
    });
    start_of_second(added_at + offset) - SignedDuration::from_secs(1)
}

fn start_of_second(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

/// A job's fixed phase within its interval (up to a tenth of it, at most a minute), from its
/// identity: jobs created together (a script creating a hundred instances) do not poll
/// together for ever after, and a job's own rhythm stays regular.
pub fn phase(instance: i64, resource: &str, interval: Duration) -> Duration {
    let spread = (interval / 10).min(Duration::from_secs(60));
    let spread_ms = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX);
    if spread_ms == 0 {
        return Duration::ZERO;
    }
    // FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in instance.to_be_bytes().iter().chain(resource.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Duration::from_millis(hash % spread_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn cursor_never_passes_the_window_start() {
        let began = Some(ts("2026-01-01T10:00:00Z"));
        let seen = Some(ts("2026-01-01T10:00:05Z"));
        let earlier = Some(ts("2026-01-01T09:59:00Z"));
        assert_eq!(next_cursor(None, seen, began), began);
        assert_eq!(next_cursor(None, earlier, began), earlier);
        assert_eq!(next_cursor(None, seen, None), seen);
        let old = Some(ts("2026-01-01T10:00:30Z"));
        assert_eq!(next_cursor(old, seen, began), old, "never backwards");
        assert_eq!(next_cursor(old, None, began), old);
    }

    #[test]
    fn without_a_date_header_the_cap_is_the_latest_change_minus_the_window_length() {
        let opened = ts("2026-01-01T10:00:00Z");
        let mut window = Window::open("/hubs/crm/contacts", opened, opened, false);
        assert_eq!(window.cursor_cap(opened), None);
        window.max_seen = Some(ts("2026-01-01T09:00:00Z"));
        // The window took 30 s of our time: the cap is 31 s before the latest change seen.
        assert_eq!(
            window.cursor_cap(ts("2026-01-01T10:00:30Z")),
            Some(ts("2026-01-01T08:59:29Z"))
        );
        window.server_start = Some(ts("2026-01-01T08:00:00Z"));
        assert_eq!(
            window.cursor_cap(ts("2026-01-01T10:00:30Z")),
            Some(ts("2026-01-01T08:00:00Z"))
        );
    }

    #[test]
    fn a_mass_updates_second_settles_two_polls_after_it_ended() {
        // A mass update dated 10:00:00, read at once (the page answered by 10:00:01.2).
        let updated = ts("2026-01-01T10:00:00Z");
        let lag = observed_lag(Some(ts("2026-01-01T10:00:01.2Z")), Some(updated)).unwrap();
        assert_eq!(lag, SignedDuration::from_millis(1200));
        let overlap = SignedDuration::from_secs(1);
        let zero = SignedDuration::ZERO;
        // The window that read it opened within that second: nothing settles.
        let first = settled_before(ts("2026-01-01T10:00:00.2Z"), lag, zero).unwrap();
        assert_eq!(
            window_start(updated, overlap, Some(first)),
            updated - overlap
        );
        // Three seconds later the second has not ended by the margin's reckoning yet.
        let second = settled_before(ts("2026-01-01T10:00:03Z"), lag, zero).unwrap();
        assert_eq!(second, ts("2026-01-01T09:59:59Z"));
        assert_eq!(
            window_start(updated, overlap, Some(second)),
            updated - overlap
        );
        // Six seconds later it has: the next window starts at the cursor (`> 10:00:00`).
        let third = settled_before(ts("2026-01-01T10:00:06Z"), lag, zero).unwrap();
        assert_eq!(third, ts("2026-01-01T10:00:02Z"));
        assert_eq!(window_start(updated, overlap, Some(third)), updated);
        // Never after the cursor, and a pollDelay keeps its seconds unsettled.
        let late = settled_before(
            ts("2026-01-01T10:00:06Z"),
            lag,
            SignedDuration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            window_start(updated, overlap, Some(late)),
            updated - overlap
        );
    }

    #[test]
    fn dates_running_behind_the_header_keep_their_second_unsettled() {
        // Dates written in a zone nine hours behind and read as GMT: a change just made is
        // dated 01:00:00 while the `Date` header says 10:00:00.
        let dated = ts("2026-01-01T01:00:00Z");
        let lag = observed_lag(Some(ts("2026-01-01T10:00:01Z")), Some(dated)).unwrap();
        let overlap = SignedDuration::from_secs(1);
        // Two seconds later the header alone would call 01:00:00 long past; the lag learnt
        // from the data says that second may still be running.
        let soon = ts("2026-01-01T10:00:03Z");
        let naive = settled_before(soon, SignedDuration::ZERO, SignedDuration::ZERO).unwrap();
        assert_eq!(window_start(dated, overlap, Some(naive)), dated);
        let settled = settled_before(soon, lag, SignedDuration::ZERO).unwrap();
        assert_eq!(window_start(dated, overlap, Some(settled)), dated - overlap);
        // Half a minute later it has ended on the records' own clock too.
        let later = settled_before(ts("2026-01-01T10:00:30Z"), lag, SignedDuration::ZERO).unwrap();
        assert_eq!(window_start(dated, overlap, Some(later)), dated);
        // Dates ahead of the header bound the lag at zero, never below.
        assert_eq!(
            observed_lag(Some(dated), Some(ts("2026-01-01T10:00:00Z"))),
            Some(SignedDuration::ZERO)
        );
        assert_eq!(observed_lag(None, Some(dated)), None);
        assert_eq!(
            tighter(Some(lag), Some(SignedDuration::ZERO)),
            Some(SignedDuration::ZERO)
        );
        assert_eq!(tighter(None, Some(lag)), Some(lag));
    }

    #[test]
    fn baseline_uses_connectwise_time() {
        let created = ts("2026-01-01T10:00:00.400Z");
        let asked = ts("2026-01-01T10:00:10Z");
        // ConnectWise is 30 s behind us: the baseline starts 30 s earlier on its clock.
        assert_eq!(
            baseline_since(created, asked, Some(ts("2026-01-01T09:59:40Z"))),
            ts("2026-01-01T09:59:29Z")
        );
        assert_eq!(
            baseline_since(created, asked, None),
            ts("2026-01-01T09:59:59Z")
        );
    }

    #[test]
    fn a_checkpoint_resumes_only_its_own_template() {
        let opened = ts("2026-01-01T10:00:00Z");
        let mut window = Window::open("/hubs/crm/contacts?where=a", opened, opened, true);
        assert_eq!(window.next_request(), Some(PageRequest::First));
        window.advance(Some(PageRequest::After(1000)), Some(1000));
        let text = window.checkpoint();
        let resumed = Window::resume(&text, "/hubs/crm/contacts?where=a").expect("resumed");
        assert_eq!(resumed, window);
        assert_eq!(resumed.next_request(), Some(PageRequest::After(1000)));
        assert!(Window::resume(&text, "/hubs/crm/contacts?where=b").is_none());
        assert!(Window::resume("not json", "/hubs/crm/contacts?where=a").is_none());
        window.advance(None, None);
        assert_eq!(window.next_request(), None);
        assert_eq!(window.last_id, Some(1000));
    }

    #[test]
    fn phases_spread_jobs_within_a_tenth_of_the_interval() {
        let interval = Duration::from_secs(60);
        let phases: std::collections::BTreeSet<Duration> = (0..100)
            .map(|instance| phase(instance, "contacts", interval))
            .collect();
        assert!(phases.len() > 50, "jobs created together spread out");
        assert!(phases.iter().all(|p| *p < Duration::from_secs(6)));
        assert_eq!(
            phase(7, "contacts", interval),
            phase(7, "contacts", interval)
        );
        assert!(phase(7, "contacts", Duration::from_secs(3600)) < Duration::from_secs(60));
        assert_eq!(phase(7, "contacts", Duration::ZERO), Duration::ZERO);
    }
}
