//! Inline SVG bar charts of an instance's events and deliveries over time, drawn on the server
//! from the analytics route's function: no chart service, no script. Each bucket is three bars
//! (events stored, deliveries made, deliveries failed), scaled to the busiest bucket; the chart
//! has a text summary for screen readers and a `<title>` per bucket.

use maud::{Markup, html};

use super::page::when_text;
use crate::routes::analytics::BucketOut;

pub fn bars(caption: &str, buckets: &[BucketOut]) -> Markup {
    let max = buckets
        .iter()
        .map(|b| b.events.max(b.delivered).max(b.failed))
        .max()
        .unwrap_or(0)
        .max(1);
    let total = |f: fn(&BucketOut) -> u64| buckets.iter().map(f).sum::<u64>();
    let (events, delivered, failed) = (
        total(|b| b.events),
        total(|b| b.delivered),
        total(|b| b.failed),
    );
    let width = buckets.len().max(1) * 4;
    let height = 60u64;
    let bar = |x: usize, value: u64, class: &str| {
        let h = value * height / max;
        html! {
            @if value > 0 {
                rect class=(class) x=(x) y=(height - h) width="1" height=(h) {}
            }
        }
    };
    let summary =
        format!("{caption}: {events} events stored, {delivered} deliveries made, {failed} failed");
    html! {
        figure.chart {
            figcaption { (caption) }
            svg viewBox=(format!("0 0 {width} {height}")) preserveAspectRatio="none" role="img"
                aria-label=(summary) {
                @for (n, b) in buckets.iter().enumerate() {
                    g {
                        title { (when_text(&b.start)) ": " (b.events) " events, " (b.delivered) " delivered, " (b.failed) " failed" }
                        (bar(n * 4, b.events, "events"))
                        (bar(n * 4 + 1, b.delivered, "delivered"))
                        (bar(n * 4 + 2, b.failed, "failed"))
                    }
                }
            }
            p.legend {
                span.key.events {} " " (events) " events stored "
                span.key.delivered {} " " (delivered) " delivered "
                span.key.failed {} " " (failed) " failed"
            }
        }
    }
}
